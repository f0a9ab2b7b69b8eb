// MagR weight-magnitude reduction (Zhang et al., NeurIPS 2024; CLoQ paper Sec. 4.1), in nn.Linear layout.
// Proximal gradient on  ½‖X(W'−W)ᵀ‖²/λ_max(H) + α Σ ‖row or group of W'‖_∞ :
//   W' ← prox_{α‖·‖∞}( W' − (W' − W)·H/λ_max(H) ),  step 1 (the Lipschitz constant of the normalized H), from W' = W.
// The ℓ∞ prox is computed through the ℓ1-ball projection (Moreau): prox_{α‖·‖∞}(v) = v − Π_{‖·‖₁≤α}(v),
// with Duchi et al.'s sort-based projection. It pulls outliers in, so a later INT quantizer has a smaller range.
#pragma once
#include <torch/types.h>

#include "cloq/base/progress.h"

namespace cloq {

struct MagrOptions {
    int iters = 200;
    double alpha = -1;  // < 0: 1e-3 per channel (group -1), 1e-4 per group (MagR's defaults)
};

// W [out, in], H [in, in] (unregularized XᵀX). group: the quantizer's group size along in (-1 = whole row);
// a ragged last group gets its own ℓ∞ term. Returns W' [out, in] in W's dtype. Runs on W's device.
// Throws cloq::Error on shape mismatch, NaN/Inf, iters < 1, group 0 or < -1.
torch::Tensor magr_preprocess(const torch::Tensor& W, const torch::Tensor& H, int group, const MagrOptions& opt,
                              const Progress& progress = {});

// Euclidean projection of every row of x [n, d] onto the ℓ1 ball of the given radius (Duchi et al. 2008).
torch::Tensor project_l1_ball(const torch::Tensor& x, double radius);

// prox of t·‖·‖∞ applied to every row of x [n, d]: x − project_l1_ball(x, t) = sign(x)·min(|x|, θ).
// On the CPU θ comes from Michelot's O(d) fixed-point iteration; elsewhere via project_l1_ball (sort-based).
torch::Tensor prox_linf(const torch::Tensor& x, double t);

}  // namespace cloq
