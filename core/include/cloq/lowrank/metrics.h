// Discrepancy of a quantized layer plus adapter from the original on calibration inputs (docs/design.md, Notation):
// D = Q + B·A − W [out, in],  ‖X Dᵀ‖_F = sqrt(tr(D H Dᵀ)),  ‖X Dᵀ‖_2 = sqrt(λ_max(D H Dᵀ)), from H = XᵀX alone,
// the UNregularized H. Relative values divide by ‖X Wᵀ‖_F and ‖X Wᵀ‖_2.
#pragma once
#include <torch/types.h>

#include <functional>

#include "cloq/lowrank/lowrank.h"

namespace cloq {

struct Discrepancy {
    double fro = 0, spec = 0;          // ‖X Dᵀ‖_F, ‖X Dᵀ‖_2
    double fro_rel = 0, spec_rel = 0;  // divided by ‖X Wᵀ‖_F, ‖X Wᵀ‖_2 (0 when not known)
};

// sqrt(tr(D H Dᵀ)) and sqrt(λ_max(D H Dᵀ)) for any D [out, in], H [in, in] (float64 inside).
double fro_discrepancy(const torch::Tensor& D, const torch::Tensor& H);
double spec_discrepancy(const torch::Tensor& D, const torch::Tensor& H);

// Absolute values; relative ones too when W is given. spectral = false skips the Lanczos runs (spec = spec_rel = -1,
// as LayerSolver::metrics reports them then).
Discrepancy discrepancy(const torch::Tensor& D, const torch::Tensor& H, const torch::Tensor& W = {},
                        bool spectral = true);

// D = Q + B·A − W without forming D·H densely more than once (what `cloq layer` reports).
Discrepancy discrepancy(const torch::Tensor& W, const torch::Tensor& Q, const LowRank& adapter, const torch::Tensor& H,
                        bool spectral = true);

// Largest eigenvalue of a symmetric positive semi-definite operator y = op(x) on R^n (float64 vectors), by Lanczos
// with full reorthogonalization; exact (dense eigvalsh) when n is small. Used for the spectral norms.
double lambda_max_psd(const std::function<torch::Tensor(const torch::Tensor&)>& op, int64_t n,
                      const torch::TensorOptions& opts, double rel_tol = 1e-12);

}  // namespace cloq
