// Internal: the quantizers the low-rank solver calls: INT = quantize_weight (MagR + RTN/GPTQ per LayerSettings),
// NF = quantize_nf (LoftQ's inner quantizer). One place, so LoftQ and the solver can never disagree.
#pragma once
#include <torch/types.h>

#include "cloq/progress.h"
#include "cloq/quant_int.h"
#include "cloq/settings.h"

namespace cloq::detail {

// W [out, in] (any float dtype) quantized per s (bits/group/sym, quantizer, MagR, GPTQ options); H for GPTQ/MagR.
QuantizedWeight quantize_int(const torch::Tensor& W, const torch::Tensor& H, const LayerSettings& s,
                             const Progress& progress);
// NF (QLoRA/LoftQ normal-float table, blocks of 64 of the flattened weight): the dequantized weight, float32.
torch::Tensor quantize_nf_dequantized(const torch::Tensor& W, int bits);

}  // namespace cloq::detail
