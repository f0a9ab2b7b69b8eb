#include "cloq/lowrank/metrics.h"

#include <torch/torch.h>

#include "cloq/base/error.h"

namespace cloq {

namespace {
torch::Tensor f64(const torch::Tensor& t) { return t.to(torch::kFloat64).contiguous(); }

void check_dh(const torch::Tensor& D, const torch::Tensor& H) {
    if (!D.defined() || D.dim() != 2) throw Error("the discrepancy D must be a 2-D [out, in] matrix");
    if (!H.defined() || H.dim() != 2 || H.size(0) != D.size(1) || H.size(1) != D.size(1))
        throw Error("H must be [in, in] with in = " + std::to_string(D.size(1)) + ", got " +
                    (H.defined() ? c10::str(H.sizes()) : std::string("nothing")));
}

// sqrt(tr(M H Mᵀ)) and sqrt(λ_max(M H Mᵀ)) given MH = M·H.
double fro_from(const torch::Tensor& M, const torch::Tensor& MH) {
    return std::sqrt(std::max(0.0, (MH * M).sum().item<double>()));
}
double spec_from(const torch::Tensor& M, const torch::Tensor& MH) {
    const auto op = [&](const torch::Tensor& X) { return MH.mm(M.t().mm(X)); };
    return std::sqrt(std::max(0.0, lambda_max_psd(op, M.size(0), M.options())));
}
}  // namespace

double lambda_max_psd(const std::function<torch::Tensor(const torch::Tensor&)>& op, int64_t n,
                      const torch::TensorOptions& opts_in, double rel_tol) {
    const auto opts = opts_in.dtype(torch::kFloat64);
    if (n <= 0) return 0.0;
    if (n <= 256) {  // small: the exact dense answer
        auto M = op(torch::eye(n, opts));
        M = 0.5 * (M + M.t());
        return torch::linalg::eigvalsh(M, "L").max().item<double>();
    }
    // Lanczos with full reorthogonalization from a fixed pseudo-random start (deterministic results).
    const int64_t max_it = std::min<int64_t>(n, 300);
    auto gen = at::detail::createCPUGenerator(0x5eed);
    auto q = torch::randn({n, 1}, gen, torch::kFloat64).to(opts.device());
    q = q / q.norm();
    auto Qb = torch::zeros({n, max_it + 1}, opts);
    Qb.narrow(1, 0, 1).copy_(q);
    std::vector<double> alpha, beta;
    double theta = 0.0;
    for (int64_t j = 0; j < max_it; ++j) {
        const auto qj = Qb.narrow(1, j, 1);
        auto w = op(qj);
        alpha.push_back((qj * w).sum().item<double>());
        const auto basis = Qb.narrow(1, 0, j + 1);
        for (int pass = 0; pass < 2; ++pass) w = w - basis.mm(basis.t().mm(w));  // twice is enough (Kahan)
        const double b = w.norm().item<double>();
        const int64_t m = j + 1;
        // Ritz values of the tridiagonal T_j: every step while it is small, then every 4th (an m×m eigh each).
        const bool last = m == max_it || b <= 1e-14 * std::max(std::abs(theta), 1e-300);
        if (m > 32 && m % 4 != 0 && !last) {
            beta.push_back(b);
            Qb.narrow(1, j + 1, 1).copy_(w / b);
            continue;
        }
        auto T = torch::zeros({m, m}, torch::kFloat64);
        auto Ta = T.accessor<double, 2>();
        for (int64_t i = 0; i < m; ++i) {
            Ta[i][i] = alpha[static_cast<size_t>(i)];
            if (i + 1 < m) Ta[i][i + 1] = Ta[i + 1][i] = beta[static_cast<size_t>(i)];
        }
        auto [vals, vecs] = torch::linalg::eigh(T, "L");
        theta = vals[m - 1].item<double>();
        const double residual = b * std::abs(vecs[m - 1][m - 1].item<double>());
        // |θ − λ| ≤ residual²/gap: a residual of √tol·θ gives ~tol relative accuracy unless the top is clustered.
        if (b <= 1e-14 * std::max(std::abs(theta), 1e-300) || residual <= std::sqrt(rel_tol) * std::abs(theta)) break;
        beta.push_back(b);
        Qb.narrow(1, j + 1, 1).copy_(w / b);
    }
    return theta;
}

double fro_discrepancy(const torch::Tensor& D_in, const torch::Tensor& H_in) {
    check_dh(D_in, H_in);
    const auto D = f64(D_in), H = f64(H_in).to(D.device());
    return fro_from(D, D.mm(H));
}

double spec_discrepancy(const torch::Tensor& D_in, const torch::Tensor& H_in) {
    check_dh(D_in, H_in);
    const auto D = f64(D_in), H = f64(H_in).to(D.device());
    return spec_from(D, D.mm(H));
}

Discrepancy discrepancy(const torch::Tensor& D_in, const torch::Tensor& H_in, const torch::Tensor& W_in,
                        bool spectral) {
    check_dh(D_in, H_in);
    const auto D = f64(D_in), H = f64(H_in).to(D.device());
    const auto DH = D.mm(H);
    Discrepancy d;
    d.fro = fro_from(D, DH);
    d.spec = spectral ? spec_from(D, DH) : -1;
    if (!spectral) d.spec_rel = -1;
    if (W_in.defined()) {
        if (W_in.sizes() != D_in.sizes())
            throw Error("W has shape " + c10::str(W_in.sizes()) + " but D has shape " + c10::str(D_in.sizes()));
        const auto W = f64(W_in).to(D.device());
        const auto WH = W.mm(H);
        const double wf = fro_from(W, WH);
        d.fro_rel = wf > 0 ? d.fro / wf : 0.0;
        if (spectral) {
            const double ws = spec_from(W, WH);
            d.spec_rel = ws > 0 ? d.spec / ws : 0.0;
        }
    }
    return d;
}

Discrepancy discrepancy(const torch::Tensor& W, const torch::Tensor& Q, const LowRank& adapter, const torch::Tensor& H,
                        bool spectral) {
    if (!W.defined() || !Q.defined() || W.sizes() != Q.sizes())
        throw Error("W and Q must have the same [out, in] shape");
    auto D = f64(Q) - f64(W);
    if (adapter.rank() > 0) {
        if (adapter.A.size(1) != W.size(1) || adapter.B.size(0) != W.size(0) || adapter.B.size(1) != adapter.A.size(0))
            throw Error("adapter shapes lora_A " + c10::str(adapter.A.sizes()) + " and lora_B " +
                        c10::str(adapter.B.sizes()) + " do not fit W " + c10::str(W.sizes()));
        D = D + adapter.product().to(D.device());
    }
    return discrepancy(D, H, W, spectral);
}

}  // namespace cloq
