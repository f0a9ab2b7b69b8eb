#include "cloq/analysis/quantized_eval.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "cloq/base/timing.h"
#include "cloq/lowrank/factor_cache.h"
#include "cloq/lowrank/layer_solver.h"
#include "cloq/lowrank/lowrank.h"

namespace cloq {

LayerSettings settings_for_layer(const LayerSettings& s, const LinearLayer& l) {
    LayerSettings r = s;
    r.rank = static_cast<int>(std::min<int64_t>(s.rank, std::min(l.in, l.out)));
    return r;
}

QuantizedWeights::QuantizedWeights(ResolvedProfile p, InitMethod init) : profile_(std::move(p)), init_(init) {
    profile_.defaults.init = init;
    for (auto& [name, s] : profile_.overrides) s.init = init;
    validate(profile_.defaults);
}

std::string QuantizedWeights::key() const {
    // One setting for all keeps the key it always had (calibration caches of sequential runs stay valid).
    return profile_.uniform() ? to_json(profile_.defaults).dump() : to_json(make_profile(profile_)).dump();
}

torch::Tensor QuantizedWeights::effective_weight(const LinearLayer& l, const torch::Tensor& W,
                                                 std::shared_ptr<const HessianFactor> h) const {
    if (profile_.is_skipped(l.name())) return W.to(torch::kCPU, torch::kFloat32);
    const LayerSettings s = settings_for_layer(profile_.settings_for(l.name()), l);
    if (init_ == InitMethod::Loftq) {
        // LoftQ is data-free and quantizes inside its own loop: the solver's base (GPTQ, MagR) and CLoQ's
        // eigensolve would be computed and never used. Same device as the solver would use, same numbers.
        const LoftqResult lq = loftq_init_layer(l.name(), W.to(h->H().device()), h->H(), s);
        return (lq.Q.to(torch::kFloat64) + lq.adapter.product().to(torch::kFloat64)).to(torch::kCPU, torch::kFloat32);
    }
    LayerSolver solver(W, std::move(h), l.name());
    solver.update(s);
    solver.ensure(init_);
    // base(init) is the Q the init sits on; the adapter has no scaling here.
    auto eff = solver.base(init_).to(torch::kFloat64) + solver.init(init_).product().to(torch::kFloat64);
    return eff.to(torch::kCPU, torch::kFloat32);
}

WeightTransform QuantizedWeights::transform(const Calibration& cal) const {
    auto factors = std::make_shared<FactorCache>();
    const QuantizedWeights* self = this;
    const Calibration* calp = &cal;
    return [self, calp, factors](const LinearLayer& l, const torch::Tensor& W) {
        // A skipped module needs no H (its block may not even be calibrated: a profile quantizing the first blocks
        // only can be calibrated on the model cut after them).
        if (self->profile_.is_skipped(l.name())) return W.to(torch::kCPU, torch::kFloat32);
        return self->effective_weight(l, W, factors->get(l, [&] { return calp->hessian(l); }));
    };
}

BlockQuantizer QuantizedWeights::block_quantizer(const ModelConfig& c) const {
    const QuantizedWeights* self = this;
    return [self, c](int layer, const BlockHessians& H, BlockWeights& w) {
        FactorCache factors;
        for (const auto& l : block_linear_layers(c, layer)) {
            if (self->profile_.is_skipped(l.name())) continue;  // stays float
            const auto f = factors.get(l, [&] { return H[static_cast<size_t>(l.group)]; });
            torch::Tensor& W = w.linear(l.module);
            const auto device = W.device();
            const auto dtype = W.scalar_type();
            W = self->effective_weight(l, W.to(torch::kCPU, torch::kFloat32), f).to(device, dtype);
        }
    };
}

PerplexityResult quantized_perplexity(const ModelFiles& files, const ResolvedProfile& p, InitMethod init,
                                      const Calibration& cal, const std::vector<int32_t>& tokens,
                                      const PerplexityOptions& opt, const Progress& progress) {
    LlamaModel model(files);
    const QuantizedWeights qw(p, init);
    model.set_weight_transform(qw.transform(cal));
    return perplexity(model, tokens, opt, progress);
}

InitPerplexities init_perplexities(const ModelFiles& files, const ResolvedProfile& p, const Calibration& cal,
                                   const std::vector<int32_t>& tokens, const PerplexityOptions& opt,
                                   const Progress& progress) {
    const Stopwatch t0;
    InitPerplexities out;
    {
        LlamaModel model(files);
        const PerplexityResult r = perplexity(model, tokens, opt, progress.slice(0.0, 0.1));
        out.fp = r.ppl;
        out.windows = r.windows;
    }
    out.seqlen = opt.seqlen;
    const InitMethod inits[3] = {InitMethod::Zero, InitMethod::Loftq, InitMethod::Cloq};
    double* targets[3] = {&out.zero, &out.loftq, &out.cloq};
    for (int k = 0; k < 3; ++k)
        *targets[k] = quantized_perplexity(files, p, inits[k], cal, tokens, opt,
                                           progress.slice(0.1 + 0.3 * k, 0.1 + 0.3 * (k + 1)))
                          .ppl;
    out.seconds = t0.seconds();
    progress(1.0, "done");
    return out;
}

}  // namespace cloq
