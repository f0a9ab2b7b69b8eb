#include "lowrank/residual_spectrum.h"

#include <torch/torch.h>

#include "cloq/base/error.h"
#include "cloq/base/timing.h"

namespace cloq::detail {

namespace {
constexpr double kEps64 = 2.220446049250313e-16, kEps32 = 1.1920928955078125e-07;

// The eigenpairs a pseudo-inverse keeps: eigenvalues above rel·λ_max (the rest are rounding or dead directions).
std::pair<torch::Tensor, torch::Tensor> kept_eigenpairs(const HessianFactor::Eigen& e, double rel) {
    const double vmax = std::max(e.values.max().item<double>(), 0.0);
    const auto keep = (e.values > rel * vmax).nonzero().squeeze(1);
    return {e.values.index_select(0, keep), e.vectors.index_select(1, keep)};
}
}  // namespace

Root Root::of(const HessianFactor& hf) {
    if (hf.is_cholesky()) return lower(hf.lower());
    // H_λ is not positive definite (H = 0, or not a Gram matrix within rounding): the paper's root R = Σ^½Uᵀ over
    // the eigenvalues above in·eps·max, with the pseudo-inverse R⁺ = UΣ^-½ (dead directions get no adapter).
    const auto [w, U] = kept_eigenpairs(hf.eigh_regularized(), kEps64 * static_cast<double>(hf.in_features()));
    return explicit_root((w.sqrt().unsqueeze(1) * U.t()).contiguous(), (U * w.rsqrt().unsqueeze(0)).contiguous());
}

Root Root::eora(const HessianFactor& hf) {
    const auto [w, U] = kept_eigenpairs(hf.eigh_unregularized(), kEps32 * static_cast<double>(hf.in_features()));
    return explicit_root((w.sqrt().unsqueeze(1) * U.t()).contiguous(), (U * w.rsqrt().unsqueeze(0)).contiguous());
}

Root Root::qera_exact(const HessianFactor& hf) {
    const auto [w, U] = kept_eigenpairs(hf.eigh_unregularized(), kEps64 * static_cast<double>(hf.in_features()));
    return explicit_root(((U * w.sqrt().unsqueeze(0)).mm(U.t())).contiguous(),
                         ((U * w.rsqrt().unsqueeze(0)).mm(U.t())).contiguous());
}

Root Root::qera_approx(const HessianFactor& hf) {
    const auto d = hf.H().diagonal().clamp_min(0);
    const double dmax = d.numel() ? d.max().item<double>() : 0.0;
    // A feature the calibration never excites (diag 0) gets no adapter, as a pseudo-inverse gives it.
    const auto live = d > kEps64 * dmax;
    Root r;
    r.kind = Diagonal;
    r.R = d.sqrt().contiguous();
    r.R_pinv = torch::where(live, d.rsqrt(), torch::zeros_like(d)).contiguous();
    return r;
}

ResidualSpectrum::ResidualSpectrum(torch::Tensor dW, Root root) : dW_(std::move(dW)), root_(std::move(root)) {
    TORCH_CHECK(dW_.dim() == 2 && dW_.scalar_type() == torch::kFloat64);
    Stopwatch t0;
    const int64_t k = root_.kind == Root::Explicit ? root_.R.size(0) : in();
    switch (root_.kind) {
    case Root::Identity:
        T_ = dW_;
        break;
    case Root::Lower:
        T_ = times_lower(dW_, root_.L);
        break;
    case Root::Explicit:
        T_ = dW_.mm(root_.R.t());
        break;
    case Root::Diagonal:
        T_ = dW_ * root_.R.unsqueeze(0);
        break;
    }
    out_side_ = out() <= k;
    auto G = out_side_ ? gram_rows(T_) : gram_cols(T_);
    total_sq_ = G.diagonal().sum().item<double>();
    gram_s_ = t0.seconds();
    t0.restart();
    eig_ = std::make_unique<SymEigen>(G);
    G = torch::Tensor();
    // Rounding can leave tiny negative eigenvalues where the exact ones are 0.
    const auto ev = eig_->values().clamp_min(0);
    S_ = ev.sqrt();
    // tail_[r] = Σ_{i≥r} S_i², r = 0..p (suffix sums, so the small terms are added first).
    tail_ = torch::cat({ev.flip(0).cumsum(0).flip(0), torch::zeros({1}, ev.options())});
    // T is needed later only to map root-space vectors back (in-side Gram) or through R⁺ (explicit root).
    if (out_side_ && root_.kind != Root::Explicit) T_ = torch::Tensor();
    V_ = torch::empty({out(), 0}, dW_.options());
    rows_ = torch::empty({0, in()}, dW_.options());
    eig_s_ = t0.seconds();
}

double ResidualSpectrum::tail_sq(int64_t r) const {
    if (r < 0) throw Error("negative rank " + std::to_string(r));
    return tail_[std::min(r, max_rank())].item<double>();
}

void ResidualSpectrum::reserve(int64_t r) {
    const int64_t have = reserved();
    r = std::min(r, max_rank());  // beyond the rank of R·ΔWᵀ the components are zero (adapter() pads)
    if (r <= have) return;
    const Stopwatch t0;
    // Grow geometrically so that dragging a rank slider upwards costs amortized O(n²) per step.
    const int64_t want = std::min(max_rank(), std::max({r, 2 * have, int64_t(16)}));
    const auto vecs = eig_->vectors(want).narrow(1, have, want - have);
    const auto s = S_.narrow(0, have, want - have);
    torch::Tensor Vn, rows_n;
    if (out_side_) {
        Vn = vecs;
        if (root_.kind == Root::Explicit)
            rows_n = root_.R_pinv.mm(T_.t().mm(Vn)).t();  // (R⁺·R·ΔWᵀ·V)ᵀ
        else if (root_.kind == Root::Diagonal)            // R⁺·R = the mask of live features
            rows_n = Vn.t().mm(dW_) * (root_.R_pinv > 0).to(dW_.scalar_type()).unsqueeze(0);
        else
            rows_n = Vn.t().mm(dW_);  // R invertible: R⁻¹·U·S = R⁻¹·R·ΔWᵀ·V = ΔWᵀ·V
    } else {
        const auto US = vecs * s.unsqueeze(0);
        // V = T·U/S; a numerically zero singular value has no direction: its column stays 0 (product unaffected).
        const double s0 = S_.numel() ? S_[0].item<double>() : 0.0;
        const auto inv = torch::where(s > kEps64 * s0, 1.0 / s, torch::zeros_like(s));
        Vn = T_.mm(vecs) * inv.unsqueeze(0);
        switch (root_.kind) {
        case Root::Identity:
            rows_n = US.t();
            break;
        case Root::Lower:
            rows_n = torch::linalg::solve_triangular(torch::tril(root_.L).t(), US, true, true, false).t();
            break;
        case Root::Explicit:
            rows_n = root_.R_pinv.mm(US).t();
            break;
        case Root::Diagonal:
            rows_n = (US * root_.R_pinv.unsqueeze(1)).t();
            break;
        }
    }
    V_ = torch::cat({V_, Vn}, 1).contiguous();
    rows_ = torch::cat({rows_, rows_n}, 0).contiguous();
    vec_s_ += t0.seconds();
}

LowRank ResidualSpectrum::adapter(int64_t r_in, Split split) const {
    const int64_t r = std::min(r_in, max_rank());
    if (r > reserved()) throw Error("internal: rank " + std::to_string(r) + " not reserved");
    LowRank lr{rows(r), V(r)};
    const auto s = S_.narrow(0, 0, r);
    const auto pos = s > 0;
    switch (split) {
    case Split::Default:
        break;
    case Split::Sqrt: {
        const auto sq = s.sqrt();
        lr.B = lr.B * sq.unsqueeze(0);
        lr.A = lr.A * torch::where(pos, 1.0 / sq, torch::zeros_like(s)).unsqueeze(1);
        break;
    }
    case Split::UVs:
        lr.B = lr.B * s.unsqueeze(0);
        lr.A = lr.A * torch::where(pos, 1.0 / s, torch::zeros_like(s)).unsqueeze(1);
        break;
    }
    if (r < r_in) {  // R·ΔWᵀ has rank < r (e.g. H = 0, or EoRA's truncated H): zero components
        lr.A = torch::cat({lr.A, torch::zeros({r_in - r, in()}, lr.A.options())}, 0);
        lr.B = torch::cat({lr.B, torch::zeros({out(), r_in - r}, lr.B.options())}, 1);
    }
    lr.A = lr.A.contiguous();
    lr.B = lr.B.contiguous();
    return lr;
}

}  // namespace cloq::detail
