#include "quant/magr.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cloq/base/error.h"

namespace cloq {

torch::Tensor project_l1_ball(const torch::Tensor& x, double radius) {
    if (x.dim() != 2) throw Error("project_l1_ball: expects a 2-D [rows, d] tensor");
    if (!(radius > 0) || !std::isfinite(radius)) throw Error("project_l1_ball: radius must be positive");
    if (x.size(1) == 0) return x.clone();
    // Duchi et al. 2008, Fig. 1: sort |x| descending, rho = the largest j with mu_j > (sum_{i<=j} mu_i - z) / j,
    // theta = (sum_{i<=rho} mu_i - z) / rho, result sign(x)·max(|x| - theta, 0). Rows already inside stay as they are.
    const auto ax = x.abs();
    const auto mu = std::get<0>(ax.sort(/*dim=*/1, /*descending=*/true));
    const auto cs = mu.cumsum(1);
    const auto j = torch::arange(1, x.size(1) + 1, x.options());
    const auto ok = (mu * j) > (cs - radius);
    // ok holds on a prefix in exact arithmetic; taking the last true index is robust to ties and rounding
    const auto rho = std::get<0>((ok.to(x.scalar_type()) * j).max(1, /*keepdim=*/true));  // >= 1 outside the ball
    const auto cs_rho = cs.gather(1, (rho.clamp_min(1) - 1).to(torch::kLong));
    const auto theta = (cs_rho - radius) / rho.clamp_min(1);
    const auto proj = torch::sign(x) * (ax - theta).clamp_min(0);
    const auto inside = ax.sum(1, /*keepdim=*/true) <= radius;
    return torch::where(inside, x, proj);
}

namespace {

// prox_{t‖·‖∞} of one segment, CPU: the result is sign(x)·min(|x|, θ) where θ solves Σ max(|x_i| − θ, 0) = t
// (0 if ‖x‖₁ ≤ t) — the threshold of Duchi's ℓ1-ball projection. θ comes from Michelot's fixed-point iteration
// θ ← (Σ_{|x_i|>θ} |x_i| − t) / #{|x_i| > θ}, started at the lower bound max|x| − t: it increases monotonically and
// stops at the exact θ after a few O(d) passes (MagR's t is small, so only the top entries are involved); a sort
// per segment cost more than MagR's GEMMs.
template <typename T>
void prox_segment(const T* x, T* y, int64_t d, double t) {
    double l1 = 0, mx = 0;
    for (int64_t i = 0; i < d; ++i) {
        const double a = std::abs(static_cast<double>(x[i]));
        l1 += a;
        mx = std::max(mx, a);
    }
    if (l1 <= t) {
        std::fill(y, y + d, T(0));
        return;
    }
    double theta = mx - t;
    for (int pass = 0; pass < 1000; ++pass) {  // finite in theory; the cap only guards against rounding cycles
        double s = 0;
        int64_t n = 0;
        for (int64_t i = 0; i < d; ++i) {
            const double a = std::abs(static_cast<double>(x[i]));
            if (a > theta) {
                s += a;
                ++n;
            }
        }
        const double next = (s - t) / static_cast<double>(n);  // n >= 1: theta < max|x| throughout
        if (!(next > theta)) break;
        theta = next;
    }
    for (int64_t i = 0; i < d; ++i)
        y[i] = static_cast<T>(
            std::copysign(std::min(std::abs(static_cast<double>(x[i])), theta), static_cast<double>(x[i])));
}

template <typename T>
torch::Tensor prox_groups_cpu(const torch::Tensor& Y_in, int64_t g, double t) {
    const auto Y = Y_in.contiguous();
    auto out = torch::empty_like(Y);
    const int64_t rows = Y.size(0), d = Y.size(1);
    const T* x = Y.data_ptr<T>();
    T* y = out.data_ptr<T>();
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c0 = 0; c0 < d; c0 += g) prox_segment(x + r * d + c0, y + r * d + c0, std::min(g, d - c0), t);
    return out;
}

// prox of alpha·Σ‖row group‖_∞ over W [out, in] with groups of g along in (ragged last group on its own).
torch::Tensor group_prox(const torch::Tensor& Y, int64_t g, double alpha) {
    const int64_t out = Y.size(0), in = Y.size(1);
    if (Y.is_cpu() && Y.scalar_type() == torch::kFloat32) return prox_groups_cpu<float>(Y, std::min(g, in), alpha);
    if (Y.is_cpu() && Y.scalar_type() == torch::kFloat64) return prox_groups_cpu<double>(Y, std::min(g, in), alpha);
    // other devices: the vectorized sort-based projection
    if (g >= in) return Y - project_l1_ball(Y, alpha);
    const int64_t full = (in / g) * g;
    auto result = torch::empty_like(Y);
    const auto Yf = Y.slice(1, 0, full).reshape({out * (full / g), g});
    result.slice(1, 0, full).copy_((Yf - project_l1_ball(Yf, alpha)).view({out, full}));
    if (full < in) {
        const auto Yr = Y.slice(1, full, in);
        result.slice(1, full, in).copy_(Yr - project_l1_ball(Yr, alpha));
    }
    return result;
}

}  // namespace

torch::Tensor prox_linf(const torch::Tensor& x, double t) {
    if (x.dim() != 2) throw Error("prox_linf: expects a 2-D [rows, d] tensor");
    if (!(t > 0) || !std::isfinite(t)) throw Error("prox_linf: t must be positive");
    if (x.size(1) == 0) return x.clone();
    return group_prox(x, x.size(1), t);
}

torch::Tensor magr_preprocess(const torch::Tensor& W, const torch::Tensor& H, int group, const MagrOptions& opt,
                              const Progress& progress) {
    if (!W.defined() || W.dim() != 2 || W.size(0) == 0 || W.size(1) == 0)
        throw Error("MagR: the weight must be a non-empty 2-D [out, in] matrix");
    const int64_t in = W.size(1);
    if (!H.defined() || H.dim() != 2 || H.size(0) != in || H.size(1) != in)
        throw Error("MagR: H must be [" + std::to_string(in) + ", " + std::to_string(in) +
                    "] to match the weight's input features");
    if (group == 0 || group < -1)
        throw Error("MagR: group size " + std::to_string(group) + " is invalid (use a positive size or -1)");
    if (opt.iters < 1) throw Error("MagR: the number of iterations must be at least 1");
    if (!W.is_floating_point() || !torch::isfinite(W).all().item<bool>())
        throw Error("MagR: the weight contains NaN or Inf");
    if (!H.is_floating_point() || !torch::isfinite(H).all().item<bool>()) throw Error("MagR: H contains NaN or Inf");
    const double alpha = opt.alpha >= 0 ? opt.alpha : (group < 0 ? 1e-3 : 1e-4);
    if (!(alpha > 0) || !std::isfinite(alpha)) throw Error("MagR: alpha must be positive");
    progress(0.0, "MagR");

    // λ_max in float64 (an underestimate would make step 1 too long and the iteration diverge); the iteration
    // itself runs in W's precision, at least float32, like the reference.
    const auto H64 = H.to(torch::kFloat64);
    const double lmax = torch::linalg_eigvalsh(0.5 * (H64 + H64.t())).max().item<double>();
    if (!(lmax > 0)) throw Error("MagR: H has no positive eigenvalue (no calibration signal for this layer)");
    const auto dtype = W.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    const auto W0 = W.to(dtype);
    const auto Hn = (H64 / lmax).to(dtype);
    const auto W0Hn = W0.mm(Hn);
    const int64_t g = group < 0 ? in : group;
    auto Wp = W0.clone();
    for (int it = 0; it < opt.iters; ++it) {
        // gradient step on ½‖X(W'−W)ᵀ‖²/λmax: W' − (W' − W)·Hn = (W' + W·Hn) − W'·Hn
        const auto Y = torch::addmm(Wp + W0Hn, Wp, Hn, /*beta=*/1, /*alpha=*/-1);
        Wp = group_prox(Y, g, alpha);
        if ((it + 1) % 10 == 0 || it + 1 == opt.iters) progress(static_cast<double>(it + 1) / opt.iters, "MagR");
    }
    return Wp.to(W.scalar_type());
}

}  // namespace cloq
