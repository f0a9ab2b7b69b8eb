// Low-rank adapter initializations for one linear layer (docs/design.md: CLoQ, Initializations), nn.Linear layout:
// W, Q [out, in]; lora_A [r, in]; lora_B [out, r]; the effective weight is Q + lora_B·lora_A (no LoRA scaling here;
// exporters divide lora_A by s = lora_alpha / r).
//
// These free functions are one-shot solves. LayerSolver (layer_solver.h) does the same with caching for
// interactive use and is what the GUI, the pipeline and `cloq layer` call. All decompositions run in float64.
#pragma once
#include <torch/types.h>

#include <optional>

#include "cloq/base/progress.h"
#include "cloq/quant/quant_int.h"
#include "cloq/settings/settings.h"

namespace cloq {

class HessianFactor;

struct LowRank {
    torch::Tensor A;  // lora_A [r, in]
    torch::Tensor B;  // lora_B [out, r]

    int64_t rank() const { return A.defined() ? A.size(0) : 0; }
    torch::Tensor product() const;  // B·A [out, in] (float64)
    LowRank to(torch::ScalarType dtype) const;
};

// QLoRA: lora_A = 0 [r, in] and lora_B = 0 [out, r] (PEFT uses a random A; the product, all that matters here, is 0).
LowRank zero_init(int64_t out, int64_t in, int64_t r, torch::ScalarType dtype = torch::kFloat32);

// Plain rank-r SVD of ΔW = W − Q (no calibration): ΔW ≈ U_r S_r V_rᵀ; `split` places S_r like CLoQ's splits do
// (default: lora_B = U_r, lora_A = S_r V_rᵀ; sqrt: S_r^½ on both; u-vs: lora_B = U_r S_r, lora_A = V_rᵀ).
LowRank svd_init(const torch::Tensor& W, const torch::Tensor& Q, int64_t r, Split split = Split::Default,
                 torch::ScalarType dtype = torch::kFloat32);

// CLoQ (Algorithm 1): the rank-r minimizer of ‖R(ΔWᵀ − A_p B_pᵀ)‖_F with RᵀR = H_λ = H + λI, λ = 0.01·tr(H)/in.
// Splits (paper Table 6), all with the same product (R⁻¹ U_r S_r V_rᵀ)ᵀ:
//   default: lora_B = V_r, lora_A = S_r U_rᵀ R⁻ᵀ;  sqrt: S_r^½ on both sides;  u-vs: lora_B = V_r S_r.
LowRank cloq_init(const torch::Tensor& W, const torch::Tensor& Q, const torch::Tensor& H, int64_t r,
                  Split split = Split::Default, torch::ScalarType dtype = torch::kFloat32);

// LoftQ: T alternating steps  Q = quant(W − L·R);  L·R = rank-r SVD of W − Q with √S on both sides (PEFT's
// loftq_init; T = 1 is PEFT's default, T = 5 the papers'). The quantizer is settings.loftq_quant: INT = CLoQ's grid
// (settings.quant: bits, group, sym) with round-to-nearest — LoftQ is data-free, so never GPTQ/MagR and H is unused —,
// NF = normal float (QLoRA table, blocks of 64 of the flattened weight, NF4 for 4 bits, NF2 for 2 bits…). LoftQ returns
// its own Q.
struct LoftqResult {
    torch::Tensor Q;                            // [out, in] float32, the dequantized base LoftQ ends with
    std::optional<QuantizedWeight> int_weight;  // the INT quantization of the last step (codes/scales), if INT
    LowRank adapter;                            // float32
};
LoftqResult loftq_init(const torch::Tensor& W, const torch::Tensor& H, const LayerSettings& s,
                       const Progress& progress = {});
// loftq_init on its own for the named layer `layer` (whole-model evaluation and export, where nothing else of a
// LayerSolver is needed): errors are prefixed with the layer's name as the solver's are; cancellation passes through.
LoftqResult loftq_init_layer(const std::string& layer, const torch::Tensor& W, const torch::Tensor& H,
                             const LayerSettings& s, const Progress& progress = {});

// EoRA (GPTQModel): eigh of the UNregularized H, eigenvalues ≤ λ_max·in·eps₃₂ dropped (pseudo-inverse), the
// non-symmetric root R = Λ^½Uᵀ, rank-r SVD of R·ΔWᵀ, √S on both sides; exported with lora_alpha = r.
LowRank eora_init(const torch::Tensor& W, const torch::Tensor& Q, const torch::Tensor& H, int64_t r,
                  torch::ScalarType dtype = torch::kFloat32);

// QERA (Zhang et al., ICLR 2025): the rank-r minimizer of the UNregularized ‖R(ΔWᵀ − A_p B_pᵀ)‖_F with
// exact = true: the symmetric root R = H^½ and its pseudo-inverse (eigenvalues ≤ λ_max·in·eps₆₄ dropped);
// exact = false (QERA-approx): the diagonal root diag(H)^½. `split` places the singular values as for CLoQ.
LowRank qera_init(const torch::Tensor& W, const torch::Tensor& Q, const torch::Tensor& H, int64_t r, bool exact,
                  Split split = Split::Default, torch::ScalarType dtype = torch::kFloat32);

}  // namespace cloq
