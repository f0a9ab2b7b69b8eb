// Reference (scalar) dequantization of the ggml block formats. Layouts from llama.cpp's ggml-common.h; the
// formulas are those of ggml-quants.c's dequantize_row_* functions, so results are bit-identical to llama.cpp's
// CPU reference path. Speed is not critical: a tensor is dequantized once when a block of the model is loaded.
#include "io/gguf_dequant.h"

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cstring>

#include "cloq/base/error.h"

namespace cloq {

namespace {

constexpr int64_t QK = 32;     // values per block of the legacy formats (Q4_0 ... Q8_0)
constexpr int64_t QK_K = 256;  // values per super-block of the k-quants

const GgmlTypeTraits kTraits[] = {
    {GgmlType::F32, "F32", 1, 4},
    {GgmlType::F16, "F16", 1, 2},
    {GgmlType::Q4_0, "Q4_0", QK, 2 + QK / 2},
    {GgmlType::Q4_1, "Q4_1", QK, 4 + QK / 2},
    {GgmlType::Q5_0, "Q5_0", QK, 2 + 4 + QK / 2},
    {GgmlType::Q5_1, "Q5_1", QK, 4 + 4 + QK / 2},
    {GgmlType::Q8_0, "Q8_0", QK, 2 + QK},
    {GgmlType::Q4_K, "Q4_K", QK_K, 4 + 12 + QK_K / 2},
    {GgmlType::Q6_K, "Q6_K", QK_K, QK_K / 2 + QK_K / 4 + QK_K / 16 + 2},
    {GgmlType::BF16, "BF16", 1, 2},
};

// Names of ggml types that exist but are not dequantized here, so the error can say which type it was.
const char* known_unsupported_name(uint32_t id) {
    switch (id) {
    case 9:
        return "Q8_1";
    case 10:
        return "Q2_K";
    case 11:
        return "Q3_K";
    case 13:
        return "Q5_K";
    case 15:
        return "Q8_K";
    case 16:
        return "IQ2_XXS";
    case 17:
        return "IQ2_XS";
    case 18:
        return "IQ3_XXS";
    case 19:
        return "IQ1_S";
    case 20:
        return "IQ4_NL";
    case 21:
        return "IQ3_S";
    case 22:
        return "IQ2_S";
    case 23:
        return "IQ4_XS";
    case 24:
        return "I8";
    case 25:
        return "I16";
    case 26:
        return "I32";
    case 27:
        return "I64";
    case 28:
        return "F64";
    case 29:
        return "IQ1_M";
    case 34:
        return "TQ1_0";
    case 35:
        return "TQ2_0";
    default:
        return nullptr;
    }
}

uint16_t rd16(const uint8_t* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);  // GGUF is little-endian, like every host we build for
    return v;
}

// Q4_K packs 8 six-bit scales and 8 six-bit mins into 12 bytes (ggml-quants.c get_scale_min_k4).
void scale_min_k4(int j, const uint8_t* q, int& sc, int& m) {
    if (j < 4) {
        sc = q[j] & 63;
        m = q[j + 4] & 63;
    } else {
        sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

void dequant_q4_0(const uint8_t* b, float* y) {
    const float d = half_to_float(rd16(b));
    const uint8_t* qs = b + 2;
    for (int j = 0; j < QK / 2; ++j) {
        y[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
        y[j + QK / 2] = static_cast<float>((qs[j] >> 4) - 8) * d;
    }
}

void dequant_q4_1(const uint8_t* b, float* y) {
    const float d = half_to_float(rd16(b));
    const float m = half_to_float(rd16(b + 2));
    const uint8_t* qs = b + 4;
    for (int j = 0; j < QK / 2; ++j) {
        y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
        y[j + QK / 2] = static_cast<float>(qs[j] >> 4) * d + m;
    }
}

// Q5_0/Q5_1: the fifth bit of value j is bit j of the 32-bit qh word.
void dequant_q5(const uint8_t* b, float* y, bool with_min) {
    const float d = half_to_float(rd16(b));
    const float m = with_min ? half_to_float(rd16(b + 2)) : 0.0f;
    const uint8_t* p = b + (with_min ? 4 : 2);
    uint32_t qh;
    std::memcpy(&qh, p, 4);
    const uint8_t* qs = p + 4;
    const int offset = with_min ? 0 : 16;
    for (int j = 0; j < QK / 2; ++j) {
        const int h0 = ((qh >> j) << 4) & 0x10;
        const int h1 = (qh >> (j + 12)) & 0x10;
        const int x0 = ((qs[j] & 0x0F) | h0) - offset;
        const int x1 = ((qs[j] >> 4) | h1) - offset;
        y[j] = static_cast<float>(x0) * d + m;
        y[j + QK / 2] = static_cast<float>(x1) * d + m;
    }
}

void dequant_q8_0(const uint8_t* b, float* y) {
    const float d = half_to_float(rd16(b));
    for (int j = 0; j < QK; ++j) y[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
}

void dequant_q4_k(const uint8_t* b, float* y) {
    const float d = half_to_float(rd16(b));
    const float dmin = half_to_float(rd16(b + 2));
    const uint8_t* scales = b + 4;
    const uint8_t* q = b + 16;
    int is = 0;
    for (int j = 0; j < QK_K; j += 64) {
        int sc, m;
        scale_min_k4(is, scales, sc, m);
        const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
        scale_min_k4(is + 1, scales, sc, m);
        const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
        for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
        for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
        q += 32;
        is += 2;
    }
}

void dequant_q6_k(const uint8_t* b, float* y) {
    const uint8_t* ql = b;
    const uint8_t* qh = b + QK_K / 2;
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + QK_K / 2 + QK_K / 4);
    const float d = half_to_float(rd16(b + QK_K / 2 + QK_K / 4 + QK_K / 16));
    for (int n = 0; n < QK_K; n += 128) {
        for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
            y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
            y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
            y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

}  // namespace

float half_to_float(uint16_t h) { return c10::detail::fp16_ieee_to_fp32_value(h); }

float bf16_to_float(uint16_t b) {
    const uint32_t bits = static_cast<uint32_t>(b) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

const GgmlTypeTraits* ggml_type_traits(uint32_t type_id) {
    for (const auto& t : kTraits) {
        if (static_cast<uint32_t>(t.type) == type_id) return &t;
    }
    return nullptr;
}

std::string ggml_type_name(uint32_t type_id) {
    if (const auto* t = ggml_type_traits(type_id)) return t->name;
    if (const char* n = known_unsupported_name(type_id)) return n;
    return "type " + std::to_string(type_id);
}

void dequantize_ggml(GgmlType type, const uint8_t* src, float* dst, int64_t n) {
    const GgmlTypeTraits* t = ggml_type_traits(static_cast<uint32_t>(type));
    if (!t || n < 0 || n % t->block_size != 0) {
        throw Error("dequantize_ggml: " + ggml_type_name(static_cast<uint32_t>(type)) + " cannot dequantize " +
                    std::to_string(n) + " values");
    }
    const int64_t blocks = n / t->block_size;
    switch (type) {
    case GgmlType::F32:
        std::memcpy(dst, src, static_cast<size_t>(n) * 4);
        return;
    case GgmlType::F16:
        for (int64_t i = 0; i < n; ++i) dst[i] = half_to_float(rd16(src + 2 * i));
        return;
    case GgmlType::BF16:
        for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_float(rd16(src + 2 * i));
        return;
    default:
        break;
    }
    for (int64_t i = 0; i < blocks; ++i) {
        const uint8_t* b = src + i * t->type_size;
        float* y = dst + i * t->block_size;
        switch (type) {
        case GgmlType::Q4_0:
            dequant_q4_0(b, y);
            break;
        case GgmlType::Q4_1:
            dequant_q4_1(b, y);
            break;
        case GgmlType::Q5_0:
            dequant_q5(b, y, false);
            break;
        case GgmlType::Q5_1:
            dequant_q5(b, y, true);
            break;
        case GgmlType::Q8_0:
            dequant_q8_0(b, y);
            break;
        case GgmlType::Q4_K:
            dequant_q4_k(b, y);
            break;
        case GgmlType::Q6_K:
            dequant_q6_k(b, y);
            break;
        default:
            break;  // F32/F16/BF16 handled above
        }
    }
}

}  // namespace cloq
