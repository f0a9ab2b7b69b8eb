// Internal: the weighted rank-r problem  min ‖R(ΔWᵀ − A_p B_pᵀ)‖_F  over rank-r products, for a root R of the
// weighting (RᵀR = H_λ for CLoQ, = H truncated for EoRA and QERA-exact, = diag(H) for QERA-approx, = I for the plain
// SVD init), solved through the smaller
// Gram matrix of R·ΔWᵀ (see layer_solver.h for why that is exact enough) with all singular values and the leading
// singular vectors grown on demand. Everything float64.
#pragma once
#include <torch/types.h>

#include <memory>

#include "cloq/lowrank/hessian_factor.h"
#include "cloq/lowrank/lowrank.h"
#include "lowrank/dense_kernels.h"

namespace cloq::detail {

struct Root {
    enum Kind { Identity, Lower, Explicit, Diagonal } kind = Identity;
    torch::Tensor L;       // Lower: R = Lᵀ, L [in, in] lower triangular
    torch::Tensor R;       // Explicit: R [k, in];  Diagonal: R = diag(R), R [in]
    torch::Tensor R_pinv;  // Explicit: R⁺ [in, k]; Diagonal: R⁺ = diag(R_pinv), R_pinv [in] (0 where R is 0)

    static Root identity() { return {}; }
    static Root lower(torch::Tensor L) {
        Root r;
        r.kind = Lower;
        r.L = std::move(L);
        return r;
    }
    static Root explicit_root(torch::Tensor R, torch::Tensor R_pinv) {
        Root r;
        r.kind = Explicit;
        r.R = std::move(R);
        r.R_pinv = std::move(R_pinv);
        return r;
    }
    // The root HessianFactor uses for H_λ: its Cholesky factor, or the eigen root with pseudo-inverse.
    static Root of(const HessianFactor& hf);
    // EoRA's root of the UNregularized H: R = Λ^½Uᵀ over eigenvalues > λ_max·in·eps₃₂ (the rest dropped).
    static Root eora(const HessianFactor& hf);
    // QERA-exact: the symmetric root of the UNregularized H, R = UΛ^½Uᵀ over eigenvalues > λ_max·in·eps₆₄, with
    // its pseudo-inverse UΛ^-½Uᵀ. Any two roots differ by an orthogonal factor on the left, so the adapter's
    // product equals EoRA's up to the eigenvalue cut: what QERA-exact changes against CLoQ is the missing ridge.
    static Root qera_exact(const HessianFactor& hf);
    // QERA-approx: the diagonal root diag(H)^½ (a feature's scale, none of the correlations between features).
    static Root qera_approx(const HessianFactor& hf);
};

class ResidualSpectrum {
public:
    // dW [out, in] float64. Computes the Gram matrix and its eigenvalues; vectors come with reserve().
    ResidualSpectrum(torch::Tensor dW, Root root);

    int64_t out() const { return dW_.size(0); }
    int64_t in() const { return dW_.size(1); }
    int64_t max_rank() const { return S_.size(0); }  // min(out, k)
    const torch::Tensor& S() const { return S_; }    // singular values of R·ΔWᵀ, descending
    double total_sq() const { return total_sq_; }    // ‖R·ΔWᵀ‖_F² (from the Gram's trace)
    double tail_sq(int64_t r) const;                 // Σ_{i>r} S_i²
    const torch::Tensor& dW() const { return dW_; }

    // Makes singular vectors 0..min(r, max_rank)-1 available (grows geometrically; not thread safe).
    void reserve(int64_t r);
    int64_t reserved() const { return V_.size(1); }
    // Out-space singular vectors V_r [out, r] (lora_B of the default split) and the default split's lora_A rows
    // S_r U_rᵀ R⁺ᵀ [r, in]; r ≤ reserved().
    torch::Tensor V(int64_t r) const { return V_.narrow(1, 0, r); }
    torch::Tensor rows(int64_t r) const { return rows_.narrow(0, 0, r); }
    // The adapter for rank r and split (float64), zero-padded beyond max_rank(); reserve(r) first.
    LowRank adapter(int64_t r, Split split) const;

    // Seconds spent forming R·ΔWᵀ and its Gram matrix, in the eigenvalue pass, and computing vectors so far.
    double gram_seconds() const { return gram_s_; }
    double eig_seconds() const { return eig_s_; }
    double vector_seconds() const { return vec_s_; }
    bool lower_root() const { return root_.kind == Root::Lower; }

private:
    torch::Tensor dW_;
    Root root_;
    bool out_side_ = true;  // Gram over the out space (ΔW·H·ΔWᵀ) or over the root's space (R·ΔWᵀΔW·Rᵀ)
    torch::Tensor T_;       // ΔW·Rᵀ [out, k]
    std::unique_ptr<SymEigen> eig_;
    torch::Tensor S_, tail_;  // tail_[r] = Σ_{i≥r} S_i² (from the eigenvalues, clamped at 0)
    double total_sq_ = 0;
    torch::Tensor V_, rows_;
    double gram_s_ = 0, eig_s_ = 0, vec_s_ = 0;
};

}  // namespace cloq::detail
