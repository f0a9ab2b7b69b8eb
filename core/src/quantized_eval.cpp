#include "cloq/quantized_eval.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "cloq/layer_solver.h"
#include "cloq/lowrank.h"

namespace cloq {

LayerSettings settings_for_layer(const LayerSettings& s, const LinearLayer& l) {
    LayerSettings r = s;
    r.rank = static_cast<int>(std::min<int64_t>(s.rank, std::min(l.in, l.out)));
    return r;
}

QuantizedWeights::QuantizedWeights(LayerSettings s, InitMethod init) : settings_(std::move(s)), init_(init) {
    settings_.init = init;
    validate(settings_);
}

std::string QuantizedWeights::key() const { return to_json(settings_).dump(); }

torch::Tensor QuantizedWeights::effective_weight(const LinearLayer& l, const torch::Tensor& W,
                                                 std::shared_ptr<const HessianFactor> h) const {
    const LayerSettings s = settings_for_layer(settings_, l);
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
    // Factors are shared by the layers of one input group (q/k/v, gate/up); only the current block's are kept.
    struct Factors {
        std::mutex mutex;
        int layer = -1;
        std::map<InputGroup, std::shared_ptr<const HessianFactor>> by_group;
    };
    auto factors = std::make_shared<Factors>();
    const QuantizedWeights* self = this;
    const Calibration* calp = &cal;
    return [self, calp, factors](const LinearLayer& l, const torch::Tensor& W) {
        std::shared_ptr<const HessianFactor> f;
        {
            std::lock_guard<std::mutex> lock(factors->mutex);
            if (factors->layer != l.layer) {
                factors->by_group.clear();
                factors->layer = l.layer;
            }
            auto& slot = factors->by_group[l.group];
            if (!slot)
                slot = std::make_shared<HessianFactor>(calp->hessian(l),
                                                       "layer " + std::to_string(l.layer) + " " + to_string(l.group));
            f = slot;
        }
        return self->effective_weight(l, W, f);
    };
}

BlockQuantizer QuantizedWeights::block_quantizer(const ModelConfig& c) const {
    const QuantizedWeights* self = this;
    return [self, c](int layer, const BlockHessians& H, BlockWeights& w) {
        std::map<InputGroup, std::shared_ptr<const HessianFactor>> f;
        for (const auto& l : block_linear_layers(c, layer)) {
            auto& slot = f[l.group];
            if (!slot)
                slot = std::make_shared<HessianFactor>(H[static_cast<size_t>(l.group)],
                                                       "layer " + std::to_string(layer) + " " + to_string(l.group));
            torch::Tensor& W = w.linear(l.module);
            const auto device = W.device();
            const auto dtype = W.scalar_type();
            W = self->effective_weight(l, W.to(torch::kCPU, torch::kFloat32), slot).to(device, dtype);
        }
    };
}

PerplexityResult quantized_perplexity(const ModelFiles& files, const LayerSettings& s, InitMethod init,
                                      const Calibration& cal, const std::vector<int32_t>& tokens,
                                      const PerplexityOptions& opt) {
    LlamaModel model(files);
    const QuantizedWeights qw(s, init);
    model.set_weight_transform(qw.transform(cal));
    return perplexity(model, tokens, opt);
}

}  // namespace cloq
