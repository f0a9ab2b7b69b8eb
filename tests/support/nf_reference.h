// Independent reference of the NF (normal float) quantizer of QLoRA/LoftQ/PEFT, shared by the NF quantizer's tests
// and the LoftQ tests: LoftQ's NFQuantizer.create_normal_map(offset=0.9677083, symmetric=False) transcribed
// (torch.linspace in float32, the normal quantile in float64, the table as float32 sorted and divided by its max)
// and plain loops for quantization (absmax per block of the row-major flattened weight, first nearest value).
#pragma once
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace cloq::test {

// Φ⁻¹(p) by bisection on Φ(x) = ½·erfc(−x/√2), to float64 precision (independent of any library ppf).
inline double norm_ppf(double p) {
    double lo = -40, hi = 40;
    for (int i = 0; i < 200; ++i) {
        const double mid = 0.5 * (lo + hi);
        (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
    }
    return 0.5 * (lo + hi);
}

inline std::vector<float> create_normal_map(int bits, double offset = 0.9677083) {
    const int64_t variations = int64_t(1) << bits;
    auto lin = [&](int64_t steps) { return torch::linspace(offset, 0.5, steps, torch::kFloat32); };
    std::vector<float> v;
    const auto l1 = lin(variations / 2 + 1);
    for (int64_t i = 0; i + 1 < l1.numel(); ++i) v.push_back(static_cast<float>(norm_ppf(l1[i].item<float>())));
    v.push_back(0.0f);
    const auto l3 = lin(variations / 2);
    for (int64_t i = 0; i + 1 < l3.numel(); ++i) v.push_back(static_cast<float>(-norm_ppf(l3[i].item<float>())));
    std::sort(v.begin(), v.end());
    const float mx = v.back();
    for (auto& x : v) x /= mx;
    return v;
}

struct NfReference {
    std::vector<int> codes;
    std::vector<float> Q, absmax;  // Q: dequantized, row-major like W
};
inline NfReference reference_nf(const torch::Tensor& W, const std::vector<float>& table, int64_t block) {
    const auto flat = W.to(torch::kFloat32).contiguous().view({-1});
    const float* w = flat.data_ptr<float>();
    const int64_t n = flat.numel();
    NfReference r;
    for (int64_t b0 = 0; b0 < n; b0 += block) {
        const int64_t b1 = std::min(n, b0 + block);
        float amax = 0;
        for (int64_t i = b0; i < b1; ++i) amax = std::max(amax, std::abs(w[i]));
        r.absmax.push_back(amax);
        for (int64_t i = b0; i < b1; ++i) {
            const float x = amax == 0 ? 0.0f : w[i] / amax;
            int best = 0;  // torch.argmin returns the first minimum
            for (int k = 1; k < static_cast<int>(table.size()); ++k)
                if (std::abs(x - table[k]) < std::abs(x - table[best])) best = k;
            r.codes.push_back(best);
            r.Q.push_back(table[best] * amax);
        }
    }
    return r;
}

}  // namespace cloq::test
