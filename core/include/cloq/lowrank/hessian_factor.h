// What CLoQ needs from one input group's Gram matrix H = XᵀX [in, in], computed once and shared (read-only, thread
// safe) by every linear layer that reads the same inputs: q/k/v share one, gate/up share one (docs/design.md, CLoQ).
//
// Numerics: λ = 0.01·tr(H)/in and H_λ = H + λI. Any R with RᵀR = H_λ gives the same CLoQ factors, because two such
// roots differ by an orthogonal matrix on the left (R' = O·R) and Algorithm 1's A = R⁻¹U_rS_r, B = V_r are invariant
// under it. The paper's R = Σ^½Uᵀ needs a full float64 eigh (about 9 s at in = 4096 on 2 cores); the Cholesky root
// R = Lᵀ (H_λ = L·Lᵀ) costs 0.5 s and is backward stable (cond(H_λ) ≤ 100·in by construction of λ), so it is what
// the solver uses. The eigendecomposition (of H_λ, and of the unregularized H for EoRA) is computed on first use.
// When H_λ is not positive definite (H = 0, or a matrix that is not a Gram matrix within rounding), the eigen root
// with the pseudo-inverse (eigenvalues ≤ eps·max zeroed) replaces Cholesky.
#pragma once
#include <torch/types.h>

#include <memory>
#include <mutex>
#include <string>

#include "cloq/base/progress.h"

namespace cloq {

class HessianFactor {
public:
    // H: [in, in], any float dtype, on the device to compute on. `name` (e.g. the .npy path or the input group)
    // prefixes error messages. Throws cloq::Error for a non-square, non-finite or non-symmetric H, or a negative
    // diagonal (not a Gram matrix). Stores H symmetrized in float64.
    explicit HessianFactor(const torch::Tensor& H, std::string name = "H", const Progress& progress = {});

    int64_t in_features() const { return H_.size(0); }
    const std::string& name() const { return name_; }
    const torch::Tensor& H() const { return H_; }  // float64, symmetric, unregularized
    double trace() const { return trace_; }
    double lambda() const { return lambda_; }  // 0.01·tr(H)/in
    torch::Tensor H_lambda() const;            // H + λI (float64)

    // The root used by the solver. Cholesky: R = Lᵀ with L lower triangular (`lower` = L). Eigen (fallback):
    // R = Σ^½Uᵀ over the kept eigenvalues. apply_R(M) = R·M, apply_R_pinv(M) = R⁺·M for M [in, k]; both float64.
    bool is_cholesky() const { return cholesky_ok_; }
    const torch::Tensor& lower() const { return L_; }
    torch::Tensor apply_R(const torch::Tensor& M) const;
    torch::Tensor apply_R_pinv(const torch::Tensor& M) const;

    // eigh(H_λ) = U·diag(values)·Uᵀ, ascending (the paper's root; computed on first call, then cached).
    struct Eigen {
        torch::Tensor values;   // [in] float64 ascending
        torch::Tensor vectors;  // [in, in] float64, columns
    };
    const Eigen& eigh_regularized() const;
    // eigh of the unregularized H (EoRA), computed on first call.
    const Eigen& eigh_unregularized() const;

private:
    std::string name_;
    torch::Tensor H_, L_;
    double trace_ = 0, lambda_ = 0;
    bool cholesky_ok_ = false;
    mutable std::once_flag reg_once_, unreg_once_;
    mutable Eigen reg_, unreg_;
};

}  // namespace cloq
