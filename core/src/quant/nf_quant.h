// NormalFloat quantization (QLoRA's NF4; LoftQ's NF2/NF4 from `create_normal_map`), used by LoftQ's inner loop.
// The weight is FLATTENED (row-major [out, in]) and cut into blocks of `block` values (64 by default); each block
// is divided by its absmax and every value gets the index of the nearest table value (ties: the lower index,
// like torch.argmin). A ragged last block is allowed (LoftQ refuses it; here it simply has fewer values).
// An all-zero block (absmax 0) gets the code of 0.0 and dequantizes to 0 (LoftQ would divide by zero).
#pragma once
#include <torch/types.h>

#include <vector>

namespace cloq {

struct NfQuantized {
    torch::Tensor Q;       // [out, in] float32, dequantized: table[code] · absmax of its block
    torch::Tensor codes;   // [out, in] uint8, index into the table
    torch::Tensor absmax;  // [ceil(out·in / block)] float32
    int bits = 4;
    int block = 64;
};

// The normal-float table for 2 or 4 bits, ascending, from −1 to 1 (2^bits values, one exact 0).
// NF4 is bitsandbytes' table; NF2 is LoftQ's create_normal_map(offset 0.9677083) for 2 bits.
const std::vector<float>& nf_table(int bits);

// bits 2 or 4, block ≥ 1. Throws cloq::Error on other values, a non-2-D or empty W, NaN/Inf.
NfQuantized quantize_nf(const torch::Tensor& W, int bits, int block = 64);

// Rebuilds Q from codes and absmax.
torch::Tensor dequantize_nf(const NfQuantized& nf);

}  // namespace cloq
