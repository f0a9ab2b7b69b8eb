#include "cloq/quant/quant_int.h"

#include <torch/torch.h>

#include "cloq/base/error.h"

namespace cloq {

GroupParams find_group_params(const torch::Tensor& w_in, const IntQuantSpec& spec) {
    const auto w = w_in.to(torch::kFloat32);
    const float maxq = static_cast<float>(spec.maxq());
    auto zeros = torch::zeros({w.size(0)}, w.options());
    auto xmin = torch::minimum(std::get<0>(w.min(1)), zeros);
    auto xmax = torch::maximum(std::get<0>(w.max(1)), zeros);
    if (spec.sym) {
        xmax = torch::maximum(xmin.abs(), xmax);
        xmin = torch::where(xmin < 0, -xmax, xmin);
    }
    const auto both_zero = (xmin == 0) & (xmax == 0);
    xmin = torch::where(both_zero, torch::full_like(xmin, -1.0f), xmin);
    xmax = torch::where(both_zero, torch::full_like(xmax, 1.0f), xmax);
    GroupParams p;
    p.scale = (xmax - xmin) / maxq;
    if (spec.sym)
        p.zero = torch::full_like(p.scale, (maxq + 1.0f) / 2.0f);
    else
        p.zero = torch::round(-xmin / p.scale);  // torch::round is half-to-even, like the reference
    if (spec.zero_from_one && !spec.sym) {
        // zero 0 means -xmin < scale/2. With zero 1 the grid is s·(c − 1), c = 0..maxq: s = xmax/(maxq − 1) puts
        // the top code on xmax, and s ≥ the old scale (xmax > −xmin·(2·maxq − 1)), so −s < xmin: nothing clips.
        const auto at_zero = p.zero < 0.5f;
        p.scale = torch::where(at_zero, xmax / (maxq - 1.0f), p.scale);
        p.zero = torch::where(at_zero, torch::ones_like(p.zero), p.zero);
    }
    return p;
}

torch::Tensor quantize_codes(const torch::Tensor& w, const torch::Tensor& scale, const torch::Tensor& zero, int maxq) {
    return torch::clamp(torch::round(w / scale) + zero, 0, maxq);
}

torch::Tensor dequantize_codes(const torch::Tensor& codes, const torch::Tensor& scale, const torch::Tensor& zero) {
    return scale * (codes - zero);
}

QuantizedWeight quantize_rtn(const torch::Tensor& W_in, const IntQuantSpec& spec) {
    validate(spec);
    if (W_in.dim() != 2) throw Error("weight must be a 2-D [out, in] matrix");
    const auto W = W_in.to(torch::kFloat32).contiguous();
    const int64_t out = W.size(0), in = W.size(1);
    const int64_t g = spec.group_size(in), G = spec.num_groups(in);
    QuantizedWeight qw;
    qw.spec = spec;
    qw.Q = torch::empty_like(W);
    auto codes = torch::empty_like(W);
    qw.scales = torch::empty({out, G}, W.options());
    auto zeros = torch::empty({out, G}, W.options());
    for (int64_t gi = 0; gi < G; ++gi) {
        const int64_t c0 = gi * g, c1 = std::min(in, c0 + g);
        const auto w = W.slice(1, c0, c1);
        const auto p = find_group_params(w, spec);
        const auto s = p.scale.unsqueeze(1), z = p.zero.unsqueeze(1);
        const auto c = quantize_codes(w, s, z, spec.maxq());
        codes.slice(1, c0, c1).copy_(c);
        qw.Q.slice(1, c0, c1).copy_(dequantize_codes(c, s, z));
        qw.scales.select(1, gi).copy_(p.scale);
        zeros.select(1, gi).copy_(p.zero);
    }
    qw.codes = codes.to(torch::kUInt8);
    qw.zeros = zeros.to(torch::kInt32);
    qw.g_idx =
        (torch::arange(in, torch::TensorOptions().dtype(torch::kInt64).device(W.device())) / g).to(torch::kInt32);
    return qw;
}

torch::Tensor dequantize(const QuantizedWeight& qw) {
    const auto gi = qw.g_idx.to(torch::kLong);
    const auto s = qw.scales.index_select(1, gi);
    const auto z = qw.zeros.to(torch::kFloat32).index_select(1, gi);
    return dequantize_codes(qw.codes.to(torch::kFloat32), s, z);
}

}  // namespace cloq
