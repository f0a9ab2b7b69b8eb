#include "cloq/lowrank/lowrank.h"

#include <torch/torch.h>

#include "cloq/base/error.h"
#include "cloq/lowrank/hessian_factor.h"
#include "lowrank/residual_spectrum.h"
#include "quant/nf_quant.h"
#include "quant/quantize.h"

namespace cloq {

namespace {
torch::Tensor f64(const torch::Tensor& t) { return t.to(torch::kFloat64).contiguous(); }

void check_weight(const torch::Tensor& W, const char* what) {
    if (!W.defined() || W.dim() != 2) throw Error(std::string(what) + " must be a 2-D [out, in] matrix");
    if (!W.is_floating_point()) throw Error(std::string(what) + " must hold floating-point values");
    if (!torch::isfinite(W).all().item<bool>()) throw Error(std::string(what) + " contains NaN or Inf values");
}

void check_pair(const torch::Tensor& W, const torch::Tensor& Q, int64_t r) {
    check_weight(W, "the weight W");
    check_weight(Q, "the quantized weight Q");
    if (Q.sizes() != W.sizes())
        throw Error("Q has shape " + c10::str(Q.sizes()) + " but W has shape " + c10::str(W.sizes()));
    const int64_t p = std::min(W.size(0), W.size(1));
    if (r < 0 || r > p) throw Error("rank " + std::to_string(r) + " is outside 0..min(out, in) = " + std::to_string(p));
}

void check_h(const torch::Tensor& H, int64_t in) {
    if (!H.defined() || H.dim() != 2 || H.size(0) != in || H.size(1) != in)
        throw Error("H must be [in, in] = [" + std::to_string(in) + ", " + std::to_string(in) + "], got " +
                    (H.defined() ? c10::str(H.sizes()) : std::string("nothing")));
}

LowRank solve(const torch::Tensor& dW, detail::Root root, int64_t r, Split split, torch::ScalarType dtype) {
    detail::ResidualSpectrum spec(dW, std::move(root));
    spec.reserve(r);
    return spec.adapter(r, split).to(dtype);
}
}  // namespace

torch::Tensor LowRank::product() const {
    if (!A.defined() || !B.defined()) throw Error("empty LoRA adapter");
    return f64(B).mm(f64(A));
}

LowRank LowRank::to(torch::ScalarType dtype) const { return {A.to(dtype).contiguous(), B.to(dtype).contiguous()}; }

LowRank zero_init(int64_t out, int64_t in, int64_t r, torch::ScalarType dtype) {
    if (r < 0 || r > std::min(out, in))
        throw Error("rank " + std::to_string(r) + " is outside 0..min(out, in) = " + std::to_string(std::min(out, in)));
    const auto o = torch::TensorOptions().dtype(dtype);
    return {torch::zeros({r, in}, o), torch::zeros({out, r}, o)};
}

LowRank svd_init(const torch::Tensor& W, const torch::Tensor& Q, int64_t r, Split split, torch::ScalarType dtype) {
    check_pair(W, Q, r);
    return solve(f64(W) - f64(Q), detail::Root::identity(), r, split, dtype);
}

LowRank cloq_init(const torch::Tensor& W, const torch::Tensor& Q, const torch::Tensor& H, int64_t r, Split split,
                  torch::ScalarType dtype) {
    check_pair(W, Q, r);
    check_h(H, W.size(1));
    const HessianFactor hf(H.to(W.device()));
    return solve(f64(W) - f64(Q), detail::Root::of(hf), r, split, dtype);
}

LowRank eora_init(const torch::Tensor& W, const torch::Tensor& Q, const torch::Tensor& H, int64_t r,
                  torch::ScalarType dtype) {
    check_pair(W, Q, r);
    check_h(H, W.size(1));
    const HessianFactor hf(H.to(W.device()));
    auto root = detail::Root::eora(hf);
    return solve(f64(W) - f64(Q), std::move(root), r, Split::Sqrt, dtype);
}

LowRank qera_init(const torch::Tensor& W, const torch::Tensor& Q, const torch::Tensor& H, int64_t r, bool exact,
                  Split split, torch::ScalarType dtype) {
    check_pair(W, Q, r);
    check_h(H, W.size(1));
    const HessianFactor hf(H.to(W.device()));
    auto root = exact ? detail::Root::qera_exact(hf) : detail::Root::qera_approx(hf);
    return solve(f64(W) - f64(Q), std::move(root), r, split, dtype);
}

LoftqResult loftq_init(const torch::Tensor& W, const torch::Tensor& H, const LayerSettings& s,
                       const Progress& progress) {
    validate(s);
    check_weight(W, "the weight W");
    const int64_t r = s.rank;
    check_pair(W, W, r);
    (void)H;
    // LoftQ is data-free (LoftQ paper; CLoQ paper Sec. 5 "without requiring calibration data"): its INT quantizer is
    // CLoQ's grid (bits, group, sym) with round-to-nearest, never GPTQ/MagR, which would feed it the calibration
    // data CLoQ is being compared against.
    LayerSettings rtn = s;
    rtn.method = QuantMethod::Rtn;
    rtn.magr = false;
    // PEFT's loftq_init: res = W; repeat T times { Q = quant(res); L, R = SVD_r(W − Q) with √S on both sides;
    // res = W − L·R }. The quantizer sees float32 like PEFT's; the SVD runs in float64.
    const auto W64 = f64(W);
    auto res = W.to(torch::kFloat32).contiguous();
    LoftqResult out;
    const int T = s.loftq_iters;
    for (int t = 0; t < T; ++t) {
        const Progress step = progress.slice(static_cast<double>(t) / T, static_cast<double>(t + 1) / T);
        step(0.0, "LoftQ step " + std::to_string(t + 1) + "/" + std::to_string(T));
        if (s.loftq_quant == LoftqQuant::Nf) {
            out.Q = quantize_nf(res, s.quant.bits, 64).Q.to(torch::kFloat32);  // QLoRA/LoftQ blocks of 64
        } else {
            out.int_weight = quantize_weight(res, torch::Tensor(), rtn, step.slice(0.0, 0.6));
            out.Q = out.int_weight->Q.to(torch::kFloat32);
        }
        step(0.6, "LoftQ SVD");
        detail::ResidualSpectrum spec(W64 - f64(out.Q), detail::Root::identity());
        spec.reserve(r);
        out.adapter = spec.adapter(r, Split::Sqrt);
        res = (W64 - out.adapter.product()).to(torch::kFloat32).contiguous();
    }
    out.adapter = out.adapter.to(torch::kFloat32);
    progress(1.0, "LoftQ done");
    return out;
}

LoftqResult loftq_init_layer(const std::string& layer, const torch::Tensor& W, const torch::Tensor& H,
                             const LayerSettings& s, const Progress& progress) {
    try {
        return loftq_init(W, H, s, progress);
    } catch (const Cancelled&) {
        throw;
    } catch (const Error& e) {
        throw Error(layer + ": " + e.what());
    }
}

}  // namespace cloq
