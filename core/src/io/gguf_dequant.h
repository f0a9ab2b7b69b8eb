// ggml tensor types (the `type` field of a GGUF tensor info) and their dequantization to float32.
// Block layouts follow ggml-common.h / ggml-quants.c of llama.cpp: a row of `ne0` values is stored as ne0/B blocks
// of B values, each block `type_size` bytes; blocks never straddle rows because ne0 must be a multiple of B.
#pragma once
#include <cstdint>
#include <string>

namespace cloq {

enum class GgmlType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q4_K = 12,
    Q6_K = 14,
    BF16 = 30,
};

// The layout of one ggml type: values per block and bytes per block.
struct GgmlTypeTraits {
    GgmlType type;
    const char* name;  // "Q4_1", as llama.cpp spells it
    int64_t block_size;
    int64_t type_size;
};

// Traits of a supported type, or nullptr for a type id this reader cannot dequantize (unknown or unsupported).
const GgmlTypeTraits* ggml_type_traits(uint32_t type_id);
// "Q4_1", or "type 99" for an unknown id (for messages).
std::string ggml_type_name(uint32_t type_id);

// Dequantizes `n` values (a multiple of the block size) from `src` (n / block_size * type_size bytes, any
// alignment) into `dst`. The caller has checked the byte span; this never reads more than that.
void dequantize_ggml(GgmlType type, const uint8_t* src, float* dst, int64_t n);

// IEEE half and bfloat16 bit patterns to float (exact, including subnormals, inf and NaN).
float half_to_float(uint16_t h);
float bf16_to_float(uint16_t b);

}  // namespace cloq
