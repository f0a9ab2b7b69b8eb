// Fine-tuning in miniature, for teaching (the playground): gradient steps on one layer's LoRA factors from an init,
// minimizing the calibrated output error f = ‖X(Q + B·A − W)ᵀ‖²_F = tr(D·H·Dᵀ), D = Q + B·A − W. CLoQ starts at
// this objective's optimum for its rank (the λ-ridge aside), so its curve is flat; the others show how many steps
// gradient descent needs to get where the closed form starts. The steps alternate between B and A with each block's
// exact Lipschitz step (f is quadratic in B for fixed A: L_B = 2·λ_max(H)·σ_max(A)², and likewise in A), so every
// step decreases f: no learning rate to tune, and an optimum stays put (Adam's normalized steps would walk away from
// it by about lr per coordinate).
#pragma once
#include <torch/types.h>

#include <vector>

#include "cloq/base/progress.h"
#include "cloq/lowrank/lowrank.h"

namespace cloq {

struct LayerFitOptions {
    int steps = 200;    // one step = a B update and an A update
    double step = 1.0;  // fraction of the exact 1/L step, in (0, 1]
    uint64_t seed = 0;  // zero init's random lora_A (PEFT's U(±1/√in))
};

// The relative error sqrt(tr(D H Dᵀ) / tr(W H Wᵀ)) at steps 0..steps. `init` = B·A's factors (no scaling); a rank-0
// or all-zero init starts as PEFT does (lora_B = 0, random lora_A of init's rank `rank`).
std::vector<double> fit_layer_adapter(const torch::Tensor& W, const torch::Tensor& Q, const torch::Tensor& H,
                                      const LowRank& init, int64_t rank, const LayerFitOptions& opt,
                                      const Progress& progress = {});

}  // namespace cloq
