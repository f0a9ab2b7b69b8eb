#include "quant/nf_quant.h"

#include <torch/torch.h>

#include <string>

#include "cloq/base/error.h"

namespace cloq {

const std::vector<float>& nf_table(int bits) {
    // bitsandbytes' NF4 (= LoftQ/bitsandbytes create_normal_map(offset=0.9677083) for 4 bits, float32).
    static const std::vector<float> nf4 = {
        -1.0f,
        -0.6961928009986877f,
        -0.5250730514526367f,
        -0.39491748809814453f,
        -0.28444138169288635f,
        -0.18477343022823334f,
        -0.09105003625154495f,
        0.0f,
        0.07958029955625534f,
        0.16093020141124725f,
        0.24611230194568634f,
        0.33791524171829224f,
        0.44070982933044434f,
        0.5626170039176941f,
        0.7229568362236023f,
        1.0f,
    };
    // LoftQ's create_normal_map(offset=0.9677083) for 2 bits: ppf of linspace(offset, 0.5, 3)[:-1], 0, and
    // -ppf(offset), normalized by the largest value. The 0.3379… is NF4's entry 11 (same probability level).
    static const std::vector<float> nf2 = {-1.0f, 0.0f, 0.33791524171829224f, 1.0f};
    if (bits == 4) return nf4;
    if (bits == 2) return nf2;
    throw Error("NF quantization supports 2 or 4 bits, not " + std::to_string(bits));
}

NfQuantized quantize_nf(const torch::Tensor& W, int bits, int block) {
    const auto& table_v = nf_table(bits);
    if (block < 1) throw Error("NF quantization: block size must be positive, not " + std::to_string(block));
    if (!W.defined() || W.dim() != 2 || W.numel() == 0)
        throw Error("NF quantization: the weight must be a non-empty 2-D [out, in] matrix");
    if (!W.is_floating_point() || !torch::isfinite(W).all().item<bool>())
        throw Error("NF quantization: the weight contains NaN or Inf");
    const auto f32 = W.options().dtype(torch::kFloat32);
    const auto flat = W.to(torch::kFloat32).contiguous().view({-1});
    const int64_t n = flat.numel(), nb = (n + block - 1) / block;
    // Pad the ragged last block with zeros: they change neither its absmax nor the other values' codes.
    auto padded = torch::zeros({nb * block}, f32);
    padded.slice(0, 0, n).copy_(flat);
    const auto blocks = padded.view({nb, block});
    const auto absmax = std::get<0>(blocks.abs().max(1));
    // An all-zero block would divide 0 by 0; dividing by 1 instead maps it to 0.0's code.
    const auto divisor = torch::where(absmax == 0, torch::ones_like(absmax), absmax).unsqueeze(1);
    const auto table = torch::tensor(table_v, f32);
    const auto normalized = (blocks / divisor).view({-1});
    // Nearest table value exactly as LoftQ: argmin |x - table| in float32 (first index on ties), in chunks so the
    // [chunk, 2^bits] temporary stays small.
    auto codes = torch::empty({nb * block}, W.options().dtype(torch::kLong));
    constexpr int64_t kChunk = 1 << 20;
    for (int64_t c0 = 0; c0 < nb * block; c0 += kChunk) {
        const int64_t c1 = std::min(nb * block, c0 + kChunk);
        codes.slice(0, c0, c1).copy_((normalized.slice(0, c0, c1).unsqueeze(1) - table).abs().argmin(1));
    }
    NfQuantized nf;
    nf.bits = bits;
    nf.block = block;
    nf.absmax = absmax;
    nf.codes = codes.slice(0, 0, n).to(torch::kUInt8).view(W.sizes());
    nf.Q = dequantize_nf(nf);
    return nf;
}

torch::Tensor dequantize_nf(const NfQuantized& nf) {
    const auto& table_v = nf_table(nf.bits);
    if (!nf.codes.defined() || !nf.absmax.defined() || nf.block < 1)
        throw Error("NF dequantization: codes, absmax and block size are required");
    const int64_t n = nf.codes.numel();
    if (nf.absmax.numel() != (n + nf.block - 1) / nf.block)
        throw Error("NF dequantization: " + std::to_string(nf.absmax.numel()) + " absmax values do not match " +
                    std::to_string(n) + " codes in blocks of " + std::to_string(nf.block));
    if (n > 0 && nf.codes.max().item<int64_t>() >= static_cast<int64_t>(table_v.size()))
        throw Error("NF dequantization: a code exceeds the " + std::to_string(table_v.size()) + "-entry NF" +
                    std::to_string(nf.bits) + " table");
    const auto f32 = nf.absmax.options().dtype(torch::kFloat32);
    const auto table = torch::tensor(table_v, f32);
    const auto values = table.index_select(0, nf.codes.reshape({-1}).to(torch::kLong));
    const auto block_of = torch::arange(n, nf.codes.options().dtype(torch::kLong)).div(nf.block, "floor");
    return (values * nf.absmax.to(torch::kFloat32).index_select(0, block_of)).view(nf.codes.sizes());
}

}  // namespace cloq
