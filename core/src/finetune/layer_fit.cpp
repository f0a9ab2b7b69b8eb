#include "cloq/finetune/layer_fit.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>

#include "cloq/base/error.h"

namespace cloq {

std::vector<double> fit_layer_adapter(const torch::Tensor& W, const torch::Tensor& Q, const torch::Tensor& H,
                                      const LowRank& init, int64_t rank, const LayerFitOptions& opt,
                                      const Progress& progress) {
    if (opt.steps < 0) throw Error("the number of gradient steps must not be negative");
    if (!(opt.step > 0 && opt.step <= 1)) throw Error("the step fraction must be in (0, 1]");
    if (rank < 1) throw Error("a gradient fit needs an adapter of rank 1 or more");
    torch::NoGradGuard no_grad;  // the gradients are explicit: ∇_B f = 2·D·H·Aᵀ, ∇_A f = 2·Bᵀ·D·H
    const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
    const torch::Tensor Wd = W.to(torch::kCPU, torch::kFloat64), Qd = Q.to(torch::kCPU, torch::kFloat64);
    const torch::Tensor Hd = H.to(torch::kCPU, torch::kFloat64);
    const double ref = (Wd.mm(Hd) * Wd).sum().item<double>();  // ‖X Wᵀ‖²
    if (!(ref > 0)) throw Error("the layer's output ‖X Wᵀ‖ is zero: nothing to fit");
    const double lmax = torch::linalg_eigvalsh(Hd).max().item<double>();
    torch::Tensor A, B;
    const bool zero = init.rank() == 0 || init.B.abs().max().item<double>() == 0;
    if (zero) {
        torch::Generator gen = at::detail::createCPUGenerator(opt.seed);
        const double bound = 1.0 / std::sqrt(static_cast<double>(W.size(1)));
        A = torch::empty({rank, W.size(1)}, f64).uniform_(-bound, bound, gen);
        B = torch::zeros({W.size(0), rank}, f64);
    } else {
        A = init.A.to(torch::kCPU, torch::kFloat64).clone();
        B = init.B.to(torch::kCPU, torch::kFloat64).clone();
    }
    const torch::Tensor base = Qd - Wd;
    auto objective = [&] {
        const torch::Tensor D = base + B.mm(A);
        return std::sqrt(std::max(0.0, (D.mm(Hd) * D).sum().item<double>() / ref));
    };
    auto sigma2 = [](const torch::Tensor& M) { return std::pow(torch::linalg_matrix_norm(M, 2).item<double>(), 2); };
    std::vector<double> rel{objective()};
    for (int t = 0; t < opt.steps; ++t) {
        progress(static_cast<double>(t) / opt.steps, "step " + std::to_string(t + 1));
        // B step (A fixed): f(B) = tr((base + BA) H (base + BA)ᵀ), Hessian 2·(A H Aᵀ) ⪯ 2·λ_max(H)·σ_max(A)².
        if (const double LB = 2 * lmax * sigma2(A); LB > 0) {
            const torch::Tensor G = (base + B.mm(A)).mm(Hd);
            B = B - (opt.step / LB) * 2 * G.mm(A.t());
        }
        if (const double LA = 2 * lmax * sigma2(B); LA > 0) {
            const torch::Tensor G = (base + B.mm(A)).mm(Hd);
            A = A - (opt.step / LA) * 2 * B.t().mm(G);
        }
        rel.push_back(objective());
    }
    progress(1.0, "done");
    return rel;
}

}  // namespace cloq
