#include "cloq/export/gptq_pack.h"

#include <torch/torch.h>

#include "cloq/base/error.h"

namespace cloq {

std::string to_string(GptqFormat f) { return f == GptqFormat::V1 ? "gptq" : "gptq_v2"; }

GptqFormat parse_gptq_format(const std::string& s) {
    if (s == "gptq") return GptqFormat::V1;
    if (s == "gptq_v2") return GptqFormat::V2;
    throw Error("unknown GPTQ checkpoint format '" + s + "' (use gptq or gptq_v2)");
}

bool gptq_packable(int64_t out_features, int64_t in_features, std::string* why) {
    std::string reason;
    if (in_features % 32 != 0)
        reason = "in-features " + std::to_string(in_features) + " is not a multiple of 32";
    else if (out_features % 32 != 0)
        reason = "out-features " + std::to_string(out_features) + " is not a multiple of 32";
    if (why) *why = reason;
    return reason.empty();
}

namespace {
void check_bits(int bits) {
    if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
        throw Error("GPTQ packing supports 2, 3, 4 and 8 bits, not " + std::to_string(bits));
}
}  // namespace

// Every run of 32 codes is one little-endian bit stream of `bits` 32-bit words, code j at bit offset bits·j. For
// 2/4/8 bits no code crosses a word; for 3 bits codes 10 and 21 straddle words exactly as AutoGPTQ's loop places
// them, so one formulation serves every width.
torch::Tensor pack_codes_rows(const torch::Tensor& codes_in, int bits, const std::string& what) {
    check_bits(bits);
    if (codes_in.dim() != 2) throw Error(what + ": codes must be a 2-D matrix");
    const int64_t n = codes_in.size(0), m = codes_in.size(1);
    if (n % 32 != 0) throw Error(what + ": " + std::to_string(n) + " rows is not a multiple of 32, cannot pack");
    const auto codes = codes_in.to(torch::kCPU, torch::kInt64).contiguous();
    const int64_t maxq = (int64_t{1} << bits) - 1;
    const auto* c = codes.data_ptr<int64_t>();
    auto packed = torch::zeros({n / 32 * bits, m}, torch::kInt32);
    auto* p = reinterpret_cast<uint32_t*>(packed.data_ptr<int32_t>());
    for (int64_t run = 0; run < n / 32; ++run) {
        for (int64_t j = 0; j < 32; ++j) {
            const int64_t bit = bits * j, word = run * bits + bit / 32, shift = bit % 32;
            const int64_t* row = c + (run * 32 + j) * m;
            uint32_t* lo = p + word * m;
            for (int64_t col = 0; col < m; ++col) {
                const int64_t v = row[col];
                if (v < 0 || v > maxq)
                    throw Error(what + ": code " + std::to_string(v) + " at [" + std::to_string(run * 32 + j) + ", " +
                                std::to_string(col) + "] does not fit in " + std::to_string(bits) + " bits");
                const uint64_t wide = static_cast<uint64_t>(v) << shift;
                lo[col] |= static_cast<uint32_t>(wide);
                if (shift + bits > 32) lo[col + m] |= static_cast<uint32_t>(wide >> 32);  // 3-bit straddle
            }
        }
    }
    return packed;
}

torch::Tensor unpack_codes_rows(const torch::Tensor& packed_in, int bits) {
    check_bits(bits);
    if (packed_in.dim() != 2 || packed_in.size(0) % bits != 0)
        throw Error("packed codes must be a 2-D matrix whose row count is a multiple of " + std::to_string(bits));
    const auto packed = packed_in.to(torch::kCPU, torch::kInt32).contiguous();
    const int64_t runs = packed.size(0) / bits, m = packed.size(1);
    const auto* p = reinterpret_cast<const uint32_t*>(packed.data_ptr<int32_t>());
    auto codes = torch::empty({runs * 32, m}, torch::kUInt8);
    auto* c = codes.data_ptr<uint8_t>();
    const uint64_t mask = (uint64_t{1} << bits) - 1;
    for (int64_t run = 0; run < runs; ++run) {
        for (int64_t j = 0; j < 32; ++j) {
            const int64_t bit = bits * j, word = run * bits + bit / 32, shift = bit % 32;
            const uint32_t* lo = p + word * m;
            uint8_t* row = c + (run * 32 + j) * m;
            const bool straddles = shift + bits > 32;
            for (int64_t col = 0; col < m; ++col) {
                uint64_t wide = lo[col];
                if (straddles) wide |= static_cast<uint64_t>(lo[col + m]) << 32;
                row[col] = static_cast<uint8_t>((wide >> shift) & mask);
            }
        }
    }
    return codes;
}

GptqTensors pack_gptq(const QuantizedWeight& qw, GptqFormat format, const std::string& name) {
    validate(qw.spec);
    const int bits = qw.spec.bits;
    if (!qw.codes.defined() || qw.codes.dim() != 2) throw Error(name + ": no integer codes to pack");
    const int64_t out = qw.codes.size(0), in = qw.codes.size(1);
    std::string why;
    if (!gptq_packable(out, in, &why)) throw Error(name + ": cannot be stored as a GPTQ layer: " + why);
    if (!qw.scales.defined() || !qw.zeros.defined() || !qw.g_idx.defined() || qw.scales.dim() != 2)
        throw Error(name + ": scales/zeros/g_idx missing");
    const int64_t G = qw.scales.size(1);
    if (qw.scales.size(0) != out || qw.zeros.dim() != 2 || qw.zeros.size(0) != out || qw.zeros.size(1) != G ||
        qw.g_idx.dim() != 1 || qw.g_idx.size(0) != in)
        throw Error(name + ": scales/zeros/g_idx shapes do not match codes [" + std::to_string(out) + ", " +
                    std::to_string(in) + "]");
    const auto gi = qw.g_idx.to(torch::kInt64);
    if (in > 0 && (gi.min().item<int64_t>() < 0 || gi.max().item<int64_t>() >= G))
        throw Error(name + ": g_idx refers to a group outside 0.." + std::to_string(G - 1));

    GptqTensors t;
    t.qweight = pack_codes_rows(qw.codes.t(), bits, name + " (qweight)");
    auto zeros = qw.zeros.to(torch::kInt64).t().contiguous();  // [G, out]
    if (format == GptqFormat::V1) {
        if ((zeros == 0).any().item<bool>())
            throw Error(name +
                        ": a group has zero point 0, which checkpoint format gptq cannot store "
                        "(it stores zero - 1); use format gptq_v2");
        zeros = zeros - 1;
    }
    t.qzeros = pack_codes_rows(zeros.t(), bits, name + " (qzeros)").t().contiguous();
    t.scales = qw.scales.t().to(torch::kFloat16).contiguous();
    t.g_idx = qw.g_idx.to(torch::kInt32).contiguous();
    return t;
}

QuantizedWeight unpack_gptq(const GptqTensors& t, int bits, int group_size, bool sym, GptqFormat format,
                            const std::string& where) {
    check_bits(bits);
    auto need = [&](const torch::Tensor& x, const char* what, torch::ScalarType dt) {
        if (!x.defined()) throw Error(where + ": missing " + what);
        if (x.scalar_type() != dt)
            throw Error(where + ": " + what + " has type " + std::string(c10::toString(x.scalar_type())) +
                        ", expected " + c10::toString(dt));
    };
    need(t.qweight, "qweight", torch::kInt32);
    need(t.qzeros, "qzeros", torch::kInt32);
    need(t.scales, "scales", torch::kFloat16);
    need(t.g_idx, "g_idx", torch::kInt32);
    if (t.scales.dim() != 2 || t.qweight.dim() != 2 || t.qzeros.dim() != 2 || t.g_idx.dim() != 1)
        throw Error(where + ": qweight/qzeros/scales must be 2-D and g_idx 1-D");
    const int64_t G = t.scales.size(0), out = t.scales.size(1), in = t.g_idx.size(0);
    auto shape = [](const torch::Tensor& x) {
        std::string s = "[";
        for (int64_t i = 0; i < x.dim(); ++i) s += (i ? ", " : "") + std::to_string(x.size(i));
        return s + "]";
    };
    if (in % 32 != 0 || out % 32 != 0)
        throw Error(where + ": g_idx/scales imply [out " + std::to_string(out) + ", in " + std::to_string(in) +
                    "], not multiples of 32");
    if (t.qweight.size(0) != in / 32 * bits || t.qweight.size(1) != out)
        throw Error(where + ": qweight is " + shape(t.qweight) + " but " + std::to_string(bits) + "-bit [out " +
                    std::to_string(out) + ", in " + std::to_string(in) + "] needs [" + std::to_string(in / 32 * bits) +
                    ", " + std::to_string(out) + "]");
    if (t.qzeros.size(0) != G || t.qzeros.size(1) != out / 32 * bits)
        throw Error(where + ": qzeros is " + shape(t.qzeros) + ", expected [" + std::to_string(G) + ", " +
                    std::to_string(out / 32 * bits) + "]");
    const auto gi = t.g_idx.to(torch::kInt64);
    if (in > 0 && (gi.min().item<int64_t>() < 0 || gi.max().item<int64_t>() >= G))
        throw Error(where + ": g_idx refers to a group outside 0.." + std::to_string(G - 1));

    QuantizedWeight qw;
    qw.spec.bits = bits;
    qw.spec.sym = sym;
    qw.spec.group = group_size;
    qw.codes = unpack_codes_rows(t.qweight, bits).t().contiguous();        // [out, in]
    auto zeros = unpack_codes_rows(t.qzeros.t(), bits).to(torch::kInt32);  // [out, G]
    if (format == GptqFormat::V1) zeros = (zeros + 1);                     // v1 stores zero − 1 (masked to b bits)
    qw.zeros = zeros.contiguous();
    qw.scales = t.scales.to(torch::kFloat32).t().contiguous();
    qw.g_idx = t.g_idx.clone();
    qw.Q = dequantize(qw);
    return qw;
}

QuantizedWeight round_scales_to_fp16(const QuantizedWeight& qw_in) {
    QuantizedWeight qw = qw_in;
    qw.scales = qw_in.scales.to(torch::kFloat16).to(torch::kFloat32);
    qw.Q = dequantize(qw);
    return qw;
}

}  // namespace cloq
