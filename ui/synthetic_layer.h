// The teaching playground's layer: a random weight and calibration activations whose anisotropy (condition
// number of X) and outlier channels the user sets — the two properties of real LLM inputs that make
// calibration matter. Only inputs are made here; every number shown is computed by the engine's LayerSolver.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>

#include "layer_worker.h"

namespace cloq::ui {

struct SyntheticSpec {
    int out = 256, in = 256;
    double cond = 100.0;  // max/min channel scale of X (H = XᵀX then has about cond² )
    int outliers = 4;     // input channels with outlier_scale× larger activations
    double outlier_scale = 20.0;
    uint64_t seed = 1;

    int tokens() const { return std::max(2 * in, 512); }
    std::string key() const;        // identifies W (out, in, seed)
    std::string group_key() const;  // identifies H (in, cond, outliers, seed)
};

torch::Tensor synthetic_weight(const SyntheticSpec& s);       // [out, in] float32, N(0, 1/in)
torch::Tensor synthetic_activations(const SyntheticSpec& s);  // [tokens, in] float64
torch::Tensor synthetic_hessian(const SyntheticSpec& s);      // XᵀX, float64
LayerSource synthetic_source(const SyntheticSpec& s);

}  // namespace cloq::ui
