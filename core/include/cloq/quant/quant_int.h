// Integer, group-wise, round-to-nearest quantization (docs/design.md, Quantizers), in nn.Linear layout W [out, in].
// Groups run along the input dimension; the last group may be ragged (G = ceil(in / g)); group -1 = per channel.
// The parameter rule is GPTQ's (range widened to contain 0, zero = round(-xmin/scale), all-zero group -> [-1, 1],
// symmetric zero = (2^b)/2), computed in float32 exactly as the reference does so codes match bit for bit
// (IntQuantSpec::zero_from_one changes only the groups whose zero would be 0).
#pragma once
#include <torch/types.h>

#include <cstdint>

#include "cloq/settings/settings.h"

namespace cloq {

// Per-row parameters for a slice of columns w [out, k] (float32): scale [out] float32, zero [out] float32
// (integral values). GPTQ calls this on the current block's columns.
struct GroupParams {
    torch::Tensor scale;
    torch::Tensor zero;
};
GroupParams find_group_params(const torch::Tensor& w, const IntQuantSpec& spec);

// Integer codes clamp(round(w/scale) + zero, 0, maxq) (as float32) and their dequantized values.
// scale and zero broadcast against w (shape [out] for a column slice or [out, 1]).
torch::Tensor quantize_codes(const torch::Tensor& w, const torch::Tensor& scale, const torch::Tensor& zero, int maxq);
torch::Tensor dequantize_codes(const torch::Tensor& codes, const torch::Tensor& scale, const torch::Tensor& zero);

// A quantized linear weight with everything an exporter needs.
struct QuantizedWeight {
    torch::Tensor Q;       // [out, in] float32, the dequantized weight
    torch::Tensor codes;   // [out, in] uint8, integer codes 0..maxq
    torch::Tensor scales;  // [out, G] float32
    torch::Tensor zeros;   // [out, G] int32 zero points (sym: 2^(b-1))
    torch::Tensor g_idx;   // [in] int32, group index of each input column (act-order makes it non-monotonic)
    IntQuantSpec spec;
};

// Plain round-to-nearest on every group.
QuantizedWeight quantize_rtn(const torch::Tensor& W, const IntQuantSpec& spec);

// Rebuilds Q from codes/scales/zeros/g_idx (used by exporters and the GPTQ-checkpoint reader).
torch::Tensor dequantize(const QuantizedWeight& qw);

}  // namespace cloq
