#include "synthetic_layer.h"

#include <torch/torch.h>

#include <cmath>
#include <sstream>

namespace cloq::ui {

std::string SyntheticSpec::key() const {
    std::ostringstream k;
    k << "synthetic " << out << "x" << in << " seed " << seed << " | " << group_key();
    return k.str();
}

std::string SyntheticSpec::group_key() const {
    std::ostringstream k;
    k << "synthetic-X in " << in << " cond " << cond << " outliers " << outliers << "x" << outlier_scale << " seed "
      << seed;
    return k.str();
}

torch::Tensor synthetic_weight(const SyntheticSpec& s) {
    auto gen = at::detail::createCPUGenerator(s.seed * 7919 + 17);
    return torch::randn({s.out, s.in}, gen, torch::kFloat32) / std::sqrt(static_cast<double>(s.in));
}

torch::Tensor synthetic_activations(const SyntheticSpec& s) {
    auto gen = at::detail::createCPUGenerator(s.seed);
    const int64_t n = s.tokens();
    auto x = torch::randn({n, s.in}, gen, torch::kFloat64);
    // Channel scales spread log-uniformly over [1, cond], in random order, then mixed a little so the principal
    // directions of H are not the coordinate axes (as in real activations).
    auto scales = torch::logspace(0, std::log10(std::max(1.0, s.cond)), s.in, 10.0, torch::kFloat64);
    scales = scales.index_select(0, torch::randperm(s.in, gen, torch::kLong));
    const int k = std::clamp(s.outliers, 0, s.in);
    if (k > 0) {
        auto idx = torch::randperm(s.in, gen, torch::kLong).narrow(0, 0, k);
        scales.index_put_({idx}, scales.index_select(0, idx) * s.outlier_scale);
    }
    auto mix = torch::eye(s.in, torch::kFloat64) +
               0.3 * torch::randn({s.in, s.in}, gen, torch::kFloat64) / std::sqrt(static_cast<double>(s.in));
    return (x * scales).mm(mix);
}

torch::Tensor synthetic_hessian(const SyntheticSpec& s) {
    auto X = synthetic_activations(s);
    return X.t().mm(X);
}

LayerSource synthetic_source(const SyntheticSpec& s) {
    LayerSource src;
    src.key = s.key();
    src.group_key = s.group_key();
    src.load_weight = [s](const Progress&) { return synthetic_weight(s); };
    src.load_hessian = [s](const Progress&) { return synthetic_hessian(s); };
    return src;
}

}  // namespace cloq::ui
