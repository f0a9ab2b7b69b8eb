#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <optional>

#include "cloq/base/error.h"
#include "cloq/finetune/finetune.h"
#include "cloq/lowrank/factor_cache.h"
#include "cloq/lowrank/layer_solver.h"
#include "export/peft_export.h"
#include "finetune/mixed_precision.h"

namespace cloq {

// What the tuner holds: the frozen base and the trainable paths, one BlockAdapters per decoder block, and the
// optimizer over every path's factors.
struct LoraFineTuner::State {
    ModelFiles files;
    torch::Device device = torch::kCPU;
    FineTuneOptions opt;
    std::map<std::string, torch::Tensor> base;  // module -> Q (or W for skipped modules), float32 CPU
    std::vector<BlockAdapters> adapters;        // [layer]: module -> LoraPath (A, B require grad)
    std::map<std::string, double> alpha;        // module -> lora_alpha (for the export)
    std::unique_ptr<LlamaModel> model;          // weights = base
    std::vector<BlockWeights> blocks;           // the base's blocks, loaded once (a big model would reload them)
    std::unique_ptr<torch::optim::AdamW> optimizer;
    std::vector<std::function<torch::Tensor(const torch::Tensor&)>> runs;  // [layer]: the block with its adapters
    std::optional<LossScaler> scaler;                                      // float16 autocast only
};

namespace {
// PEFT's reset_lora_parameters for init_lora_weights=True: kaiming_uniform_(lora_A, a=√5), i.e. U(−1/√in, 1/√in),
// and lora_B = 0.
LowRank peft_default_init(int64_t out, int64_t in, int64_t r, torch::Generator& gen) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    LowRank f;
    f.A = torch::empty({r, in}, torch::kFloat32).uniform_(-bound, bound, gen);
    f.B = torch::zeros({out, r}, torch::kFloat32);
    return f;
}
// Gradient checkpointing of one decoder block (FineTuneOptions::grad_checkpoint). The forward runs the block without
// recording it (a custom autograd function's forward runs with grad mode off) and keeps only its input; the backward
// runs it again with grad mode on, under the forward's autocast setting (the backward itself runs outside autocast),
// and differentiates that recomputation with respect to the input and the block's LoRA factors. The factors are inputs
// of the function so that autograd routes their gradients to them.
struct CheckpointedBlock : torch::autograd::Function<CheckpointedBlock> {
    using Run = std::function<torch::Tensor(const torch::Tensor&)>;

    // `run` must outlive the backward: the tuner keeps one per block.
    static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& h, at::TensorList factors,
                                 const Run* run, Autocast autocast) {
        std::vector<torch::Tensor> saved{h};
        saved.insert(saved.end(), factors.begin(), factors.end());
        ctx->save_for_backward(saved);
        ctx->saved_data["run"] = reinterpret_cast<int64_t>(run);
        ctx->saved_data["autocast"] = static_cast<int64_t>(autocast);
        return (*run)(h);
    }

    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grad_out) {
        const auto saved = ctx->get_saved_variables();
        const Run& run = *reinterpret_cast<const Run*>(ctx->saved_data["run"].toInt());
        std::vector<torch::Tensor> inputs{saved[0].detach().requires_grad_(true)};
        inputs.insert(inputs.end(), saved.begin() + 1, saved.end());
        torch::Tensor out;
        {
            torch::AutoGradMode on(true);
            const AutocastGuard autocast(saved[0].device(), static_cast<Autocast>(ctx->saved_data["autocast"].toInt()));
            out = run(inputs[0]);
        }
        auto grads = torch::autograd::grad({out}, inputs, {grad_out[0]}, /*retain_graph=*/false,
                                           /*create_graph=*/false, /*allow_unused=*/true);
        grads.emplace_back();  // no gradient for `run`
        grads.emplace_back();  // nor for `autocast`
        return grads;
    }
};
}  // namespace

LoraFineTuner::LoraFineTuner(const ModelFiles& files, const ResolvedProfile& p, FineTuneInit init,
                             const Calibration& cal, const FineTuneOptions& opt, torch::Device device,
                             const Progress& progress)
    : st_(std::make_unique<State>()) {
    validate(opt);
    check_autocast_device(opt.autocast, device);
    if (opt.autocast == Autocast::Float16) st_->scaler.emplace();
    st_->files = files;
    st_->device = device;
    st_->opt = opt;
    const ModelConfig& c = files.config;
    st_->adapters.resize(static_cast<size_t>(c.num_layers));
    torch::Generator gen = at::detail::createCPUGenerator(opt.seed);
    FactorCache factors;
    const auto layers = linear_layers(c);
    for (size_t i = 0; i < layers.size(); ++i) {
        const LinearLayer& l = layers[i];
        progress(static_cast<double>(i) / static_cast<double>(layers.size()), "initializing " + l.name());
        const torch::Tensor W = files.weights->load(l.weight_name()).to(torch::kCPU, torch::kFloat32);
        if (p.is_skipped(l.name())) {  // stays float, no adapter (as the export keeps it)
            st_->base[l.name()] = W;
            continue;
        }
        LayerSettings s = p.settings_for(l.name());
        s.rank = static_cast<int>(std::min<int64_t>(s.rank, std::min(l.in, l.out)));
        s.init = init.init;
        s.split = init.split;
        const auto hf = factors.get(l, [&] { return cal.hessian(l); });
        torch::Tensor Q;
        LowRank f;
        if (init.init == InitMethod::Loftq) {
            // Data-free, with its own Q: the solver's base and CLoQ eigensolve would go unused (as in the export).
            LoftqResult lq = loftq_init_layer(l.name(), W.to(hf->H().device()), hf->H(), s);
            Q = lq.Q;
            f = lq.adapter;
        } else {
            LayerSolver solver(W, hf, l.name());
            solver.update(s);
            solver.ensure(init.init);
            Q = solver.base(init.init);
            if (init.init != InitMethod::Zero && s.rank > 0) f = solver.init(init.init);
        }
        st_->base[l.name()] = Q.to(torch::kCPU, torch::kFloat32).contiguous();
        if (s.rank == 0) continue;
        const double alpha = init.init == InitMethod::Eora ? static_cast<double>(s.rank) : s.lora_alpha;
        const double scaling = alpha / static_cast<double>(s.rank);
        LowRank saved = init.init == InitMethod::Zero ? peft_default_init(l.out, l.in, s.rank, gen)
                                                      : peft_saved_factors(f, alpha, torch::kFloat32);
        LoraPath path;
        path.A = saved.A.to(torch::kCPU, torch::kFloat32).contiguous().to(device).set_requires_grad(true);
        path.B = saved.B.to(torch::kCPU, torch::kFloat32).contiguous().to(device).set_requires_grad(true);
        path.scaling = scaling;
        st_->adapters[static_cast<size_t>(l.layer)][l.module] = path;
        st_->alpha[l.name()] = alpha;
    }
    // The training forward's weights are the bases; its blocks are loaded once and kept.
    st_->model = std::make_unique<LlamaModel>(files, device);
    const State* st = st_.get();
    st_->model->set_weight_transform(
        [st](const LinearLayer& l, const torch::Tensor&) { return st->base.at(l.name()); });
    for (int b = 0; b < c.num_layers; ++b) st_->blocks.push_back(st_->model->load_block(b));
    for (int b = 0; b < c.num_layers; ++b)
        st_->runs.emplace_back([st, b](const torch::Tensor& h) {
            const auto i = static_cast<size_t>(b);
            return st->model->run_block(b, st->blocks[i], h, {}, &st->adapters[i]);
        });
    st_->optimizer = std::make_unique<torch::optim::AdamW>(
        parameters(), torch::optim::AdamWOptions(opt.lr).weight_decay(opt.weight_decay).betas({0.9, 0.999}).eps(1e-8));
    progress(1.0, "initialized");
}

LoraFineTuner::~LoraFineTuner() = default;
LoraFineTuner::LoraFineTuner(LoraFineTuner&&) noexcept = default;

const ModelConfig& LoraFineTuner::config() const { return st_->files.config; }

std::vector<torch::Tensor> LoraFineTuner::parameters() const {
    std::vector<torch::Tensor> out;
    for (const auto& block : st_->adapters)
        for (const auto& [module, path] : block) {
            out.push_back(path.A);
            out.push_back(path.B);
        }
    return out;
}

const torch::Tensor& LoraFineTuner::base_weight(const std::string& module) const {
    const auto it = st_->base.find(module);
    if (it == st_->base.end()) throw Error("no linear layer '" + module + "' in " + st_->files.path);
    return it->second;
}

const LoraPath& LoraFineTuner::path(const std::string& module) const {
    for (const auto& l : linear_layers(config()))
        if (l.name() == module) {
            const auto& block = st_->adapters[static_cast<size_t>(l.layer)];
            const auto it = block.find(l.module);
            if (it != block.end()) return it->second;
            break;
        }
    throw Error(module + " has no adapter (skipped by the profile, rank 0, or not a linear layer)");
}

int64_t LoraFineTuner::trainable_parameters() const {
    int64_t n = 0;
    for (const auto& t : parameters()) n += t.numel();
    return n;
}

torch::Tensor LoraFineTuner::loss(const torch::Tensor& ids) const {
    const LlamaModel& m = *st_->model;
    const AutocastGuard autocast(st_->device, st_->opt.autocast);
    torch::Tensor h = m.embed(ids);
    for (int b = 0; b < config().num_layers; ++b) {
        const auto i = static_cast<size_t>(b);
        if (!st_->opt.grad_checkpoint) {
            h = st_->runs[i](h);
            continue;
        }
        std::vector<torch::Tensor> factors;
        for (const auto& [module, path] : st_->adapters[i]) {
            factors.push_back(path.A);
            factors.push_back(path.B);
        }
        h = CheckpointedBlock::apply(h, at::TensorList(factors), &st_->runs[i], st_->opt.autocast);
    }
    const int64_t T = ids.size(1);
    // The same positions perplexity() scores: every window predicts its tokens 2..T from the ones before. Only those
    // positions go through the LM head (the last one predicts nothing), which also saves copying the sliced logits.
    // Cross-entropy takes float32 logits whatever precision autocast ran the head in (the PyTorch peer's `.float()`);
    // without autocast the cast is a no-op.
    const torch::Tensor logits = m.logits(h.slice(1, 0, T - 1)).to(torch::kFloat32);
    const torch::Tensor target = ids.slice(1, 1, T).to(logits.device(), torch::kLong);
    return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), target.reshape({-1}));
}

double LoraFineTuner::train_step(const torch::Tensor& ids, int t) {
    for (auto& group : st_->optimizer->param_groups())
        static_cast<torch::optim::AdamWOptions&>(group.options()).lr(cosine_lr(st_->opt, t));
    st_->optimizer->zero_grad();
    const torch::Tensor l = loss(ids);
    LossScaler* scaler = st_->scaler ? &*st_->scaler : nullptr;
    (scaler ? scaler->scale(l) : l).backward();
    // Clipping and the step see the true gradients: unscaled first, and skipped when float16 overflowed.
    const bool finite = !scaler || scaler->unscale(parameters());
    if (finite) {
        if (st_->opt.max_grad_norm > 0) torch::nn::utils::clip_grad_norm_(parameters(), st_->opt.max_grad_norm);
        st_->optimizer->step();
    }
    if (scaler) scaler->update(finite);
    return l.item<double>();
}

PerplexityResult LoraFineTuner::evaluate(const std::vector<int32_t>& tokens, const PerplexityOptions& opt,
                                         const Progress& progress) const {
    // A fresh model with the adapters merged the way a reader of the exported files merges them (lora_delta,
    // merge_lora), so the number is the one `cloq eval --adapter` gives for the written adapter.
    std::map<std::string, torch::Tensor> merged;
    {
        torch::NoGradGuard no_grad;
        for (const auto& a : adapters())
            merged[a.module] = merge_lora(st_->base.at(a.module),
                                          lora_delta(a.lora_A, a.lora_B, a.lora_alpha / double(a.lora_A.size(0))));
    }
    LlamaModel model(st_->files, st_->device);
    const State* st = st_.get();
    model.set_weight_transform([st, &merged](const LinearLayer& l, const torch::Tensor&) {
        const auto it = merged.find(l.name());
        return it != merged.end() ? it->second : st->base.at(l.name());
    });
    return perplexity(model, tokens, opt, progress);
}

std::vector<LoraFineTuner::SavedAdapter> LoraFineTuner::adapters() const {
    std::vector<SavedAdapter> out;
    for (const auto& l : linear_layers(config())) {
        const auto& block = st_->adapters[static_cast<size_t>(l.layer)];
        const auto it = block.find(l.module);
        if (it == block.end()) continue;
        SavedAdapter a;
        a.module = l.name();
        a.lora_A = it->second.A.detach().to(torch::kCPU, torch::kFloat32).clone();
        a.lora_B = it->second.B.detach().to(torch::kCPU, torch::kFloat32).clone();
        a.lora_alpha = st_->alpha.at(l.name());
        out.push_back(a);
    }
    return out;
}

void LoraFineTuner::write_peft_adapter(const std::string& dir, const std::string& base_model_name_or_path) const {
    std::vector<PeftModuleAdapter> modules;
    for (const auto& a : adapters()) {
        PeftModuleAdapter m;
        m.module = a.module;
        m.lora_alpha = a.lora_alpha;
        // write_peft_adapter saves solved.A / s: hand it s·lora_A (float64) so that the file holds lora_A.
        const double s = a.lora_alpha / static_cast<double>(a.lora_A.size(0));
        m.solved.A = a.lora_A.to(torch::kFloat64) * s;
        m.solved.B = a.lora_B;
        modules.push_back(m);
    }
    std::vector<std::string> names;
    for (const auto& l : linear_layers(config())) names.push_back(l.name());
    cloq::write_peft_adapter(dir, modules, names, base_model_name_or_path);
}

}  // namespace cloq
