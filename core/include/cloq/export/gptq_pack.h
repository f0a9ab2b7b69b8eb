// GPTQ checkpoint tensors, bit-exact with AutoGPTQ / GPTQModel / transformers (docs/design.md, File formats):
//
//   qweight int32 [in·b/32, out]   codes of 32 consecutive input rows form a little-endian bit stream of b words;
//                                  input j of a 32-run sits at bit offset b·j (LSB first). For b = 3 this is GPTQ's
//                                  "straddling" layout (10 values | 2+1 bits | 10 values | 1+2 bits | 10 values).
//   qzeros  int32 [G, out·b/32]    zero points packed the same way along the output dimension; checkpoint format
//                                  `gptq` (v1) stores zero − 1, `gptq_v2` stores zero.
//   scales  fp16  [G, out]
//   g_idx   int32 [in]             group of each input column (act-order makes it non-monotonic)
//
// Loaders allocate these buffers as [in // 32 · b, out] and [ceil(in / g), out // 32 · b] (GPTQModel's
// GPTQQuantLinear, AutoGPTQ's QuantLinear), so a layer is packable only when in and out are multiples of 32;
// anything else is left unquantized and listed as "-:<regex>" in the config's `dynamic` map.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>

#include "cloq/quant/quant_int.h"

namespace cloq {

enum class GptqFormat { V1, V2 };  // checkpoint_format "gptq" (zero − 1 stored) or "gptq_v2" (zero stored)
std::string to_string(GptqFormat f);
GptqFormat parse_gptq_format(const std::string& s);  // "gptq" | "gptq_v2"; throws cloq::Error otherwise

// Whether loaders can hold a [out, in] layer packed (both multiples of 32); `why` gets the reason when not.
bool gptq_packable(int64_t out_features, int64_t in_features, std::string* why = nullptr);

struct GptqTensors {
    torch::Tensor qweight;  // int32 [in·b/32, out]
    torch::Tensor qzeros;   // int32 [G, out·b/32]
    torch::Tensor scales;   // float16 [G, out]
    torch::Tensor g_idx;    // int32 [in]
};

// Packs integer codes [n, m] (values 0..2^b−1, any integer dtype) along dimension 0: int32 [n·b/32, m].
// n must be a multiple of 32. Throws cloq::Error for a code out of range (naming `what`).
torch::Tensor pack_codes_rows(const torch::Tensor& codes, int bits, const std::string& what);
// The inverse: int32 [n·b/32, m] -> uint8 [n, m].
torch::Tensor unpack_codes_rows(const torch::Tensor& packed, int bits);

// Packs a quantized layer (codes [out, in], scales [out, G], zeros [out, G], g_idx [in]). `name` (the module) goes
// into error messages: unpackable shape, a zero point 0 in format gptq (v1 cannot store it: zero − 1 = −1 would
// spill into the neighbouring fields, a known flaw of v1 that gptq_v2 fixes), codes out of range.
GptqTensors pack_gptq(const QuantizedWeight& qw, GptqFormat format, const std::string& name);

// Reads the tensors back: codes, zeros, float32 scales (the fp16 values), g_idx and Q = dequantize(...); spec gets
// bits/group_size/sym as passed (the checkpoint's config holds them).
// Shapes/dtypes are validated against each other; errors name `where` (file and module).
QuantizedWeight unpack_gptq(const GptqTensors& t, int bits, int group_size, bool sym, GptqFormat format,
                            const std::string& where);

// The scales as the checkpoint holds them (rounded to float16), with Q recomputed: what a loader will see.
// Exporters apply this BEFORE solving the adapter so that the adapter compensates the stored Q exactly.
QuantizedWeight round_scales_to_fp16(const QuantizedWeight& qw);

}  // namespace cloq
