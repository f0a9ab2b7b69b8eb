#include "cloq/lowrank/hessian_factor.h"

#include <torch/torch.h>

#include "cloq/base/error.h"
#include "lowrank/dense_kernels.h"

namespace cloq {

namespace {
// Eigenvalues at or below eps·max count as zero (pseudo-inverse), eps = in·eps₆₄ as numpy's matrix_rank uses.
constexpr double kEps64 = 2.220446049250313e-16;
torch::Tensor kept_mask(const torch::Tensor& values, double rel) {
    const double vmax = values.numel() ? values.max().item<double>() : 0.0;
    return values > rel * std::max(vmax, 0.0);
}
}  // namespace

HessianFactor::HessianFactor(const torch::Tensor& H_in, std::string name, const Progress& progress)
    : name_(std::move(name)) {
    if (!H_in.defined() || H_in.dim() != 2 || H_in.size(0) != H_in.size(1))
        throw Error(name_ + ": the Gram matrix H must be square [in, in], got " +
                    (H_in.defined() ? c10::str(H_in.sizes()) : std::string("nothing")));
    if (!H_in.is_floating_point()) throw Error(name_ + ": the Gram matrix H must hold floating-point values");
    if (H_in.size(0) == 0) throw Error(name_ + ": the Gram matrix H is empty");
    progress(0.0, "preparing H");
    auto H = H_in.to(torch::kFloat64);
    if (!torch::isfinite(H).all().item<bool>()) throw Error(name_ + ": H contains NaN or Inf values");
    const double scale = H.abs().max().item<double>();
    // A Gram matrix XᵀX is symmetric; float32 accumulation leaves ~1e-6 relative asymmetry, more means a wrong file.
    if ((H - H.t()).abs().max().item<double>() > 1e-4 * scale) throw Error(name_ + ": H is not symmetric (is it XᵀX?)");
    if ((H.diagonal() < 0).any().item<bool>())
        throw Error(name_ + ": H has negative diagonal entries, so it is not a Gram matrix XᵀX");
    H_ = (0.5 * (H + H.t())).contiguous();
    const int64_t in = H_.size(0);
    trace_ = H_.diagonal().sum().item<double>();
    lambda_ = 0.01 * trace_ / static_cast<double>(in);
    progress(0.2, "Cholesky of H + λI");
    if (lambda_ > 0) {
        auto [L, info] = at::linalg_cholesky_ex(H_lambda(), false, false);
        if (info.item<int>() == 0 && torch::isfinite(L).all().item<bool>()) {
            L_ = L.contiguous();
            cholesky_ok_ = true;
        }
    }
    progress(1.0, "H ready");
}

torch::Tensor HessianFactor::H_lambda() const {
    auto Hl = H_.clone();
    Hl.diagonal().add_(lambda_);
    return Hl;
}

const HessianFactor::Eigen& HessianFactor::eigh_regularized() const {
    std::call_once(reg_once_, [this] {
        auto [w, V] = torch::linalg::eigh(H_lambda(), "L");
        reg_.values = w;
        reg_.vectors = V;
    });
    return reg_;
}

const HessianFactor::Eigen& HessianFactor::eigh_unregularized() const {
    std::call_once(unreg_once_, [this] {
        auto [w, V] = torch::linalg::eigh(H_, "L");
        unreg_.values = w;
        unreg_.vectors = V;
    });
    return unreg_;
}

torch::Tensor HessianFactor::apply_R(const torch::Tensor& M) const {
    if (cholesky_ok_) return torch::tril(L_).t().mm(M);  // R = Lᵀ
    const auto& e = eigh_regularized();
    const auto keep = kept_mask(e.values, kEps64 * static_cast<double>(in_features()));
    const auto s = torch::where(keep, e.values.clamp_min(0).sqrt(), torch::zeros_like(e.values));
    return s.unsqueeze(1) * e.vectors.t().mm(M);  // R = Σ^½Uᵀ
}

torch::Tensor HessianFactor::apply_R_pinv(const torch::Tensor& M) const {
    if (cholesky_ok_)  // R⁻¹ = L⁻ᵀ: solve Lᵀ·X = M
        return torch::linalg::solve_triangular(torch::tril(L_).t(), M, /*upper=*/true, /*left=*/true, false);
    const auto& e = eigh_regularized();
    const auto keep = kept_mask(e.values, kEps64 * static_cast<double>(in_features()));
    const auto inv = torch::where(keep, e.values.clamp_min(1e-300).rsqrt(), torch::zeros_like(e.values));
    return e.vectors.mm(inv.unsqueeze(1) * M);  // R⁺ = UΣ^-½ over the kept eigenvalues
}

}  // namespace cloq
