// One block of the pipeline: each linear module quantized and its adapter initialized under its settings, measured
// on the calibration H, and the block's tensors (base + adapter) written to the resume folder.
#include "pipeline/pipeline.h"

namespace cloq::pipeline {

// PEFT's default LoRA init (lora_A Kaiming-uniform with a = √5, i.e. U(−1/√in, 1/√in); lora_B = 0) for modules
// whose adapter must not change the weight: a trainable adapter with product 0. Seeded by the module name (FNV-1a)
// so exports are reproducible.
LowRank product_zero_adapter(int64_t out, int64_t in, int64_t r, const std::string& module) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : module) h = (h ^ c) * 0x100000001b3ull;
    auto gen = at::detail::createCPUGenerator(h);
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    LowRank lr;
    lr.A = (torch::rand({r, in}, gen, torch::kFloat64) * 2 - 1).mul_(bound).to(torch::kFloat32);
    lr.B = torch::zeros({out, r}, torch::kFloat32);
    return lr;
}

QuantizedWeight to_cpu(const QuantizedWeight& q) {
    QuantizedWeight c = q;
    for (auto* t : {&c.Q, &c.codes, &c.scales, &c.zeros, &c.g_idx})
        if (t->defined()) *t = t->to(torch::kCPU);
    return c;
}

// ‖X Dᵀ‖_F / ‖X Wᵀ‖_F from H, for what the files hold.
double export_rel(const torch::Tensor& eff, const torch::Tensor& W, const torch::Tensor& H) {
    const double base = fro_discrepancy(W, H);
    return base > 0 ? fro_discrepancy(eff - W, H) / base : 0.0;
}

// Non-linear tensors as the export stores them: copied in their stored dtype (gptq), or float16 (fp16).
torch::Tensor stored_other(const WeightSource& src, const std::string& name, BaseFormat f) {
    if (f == BaseFormat::Fp16) return src.load(name).to(torch::kFloat16);
    if (const auto* st = dynamic_cast<const SafetensorsWeights*>(&src)) return st->tensor(name);
    return src.load(name);  // e.g. a GGUF source: the dequantized float32 values
}

Block Pipeline::process_block(int layer, const std::function<torch::Tensor(InputGroup)>& hessian, const Progress& p) {
    Block b;
    const auto& src = *mf_.weights;
    const auto block_layers = block_linear_layers(mf_.config, layer);
    FactorCache factors;
    std::map<InputGroup, torch::Tensor> Hs;
    std::vector<std::pair<std::string, torch::Tensor>> tensors;  // the block file: base tensors, then adapter tensors
    std::vector<std::pair<std::string, torch::Tensor>> adapter_tensors;
    const bool gptq = opt_.format != BaseFormat::Fp16;

    for (size_t i = 0; i < block_layers.size(); ++i) {
        const auto& L = block_layers[i];
        const Stopwatch t0;
        const std::string name = L.name();
        const Progress mp =
            p.slice(static_cast<double>(i) / block_layers.size(), static_cast<double>(i + 1) / block_layers.size());
        mp(0.0, name);
        ModuleRecord rec;
        rec.module = name;
        rec.layer = layer;
        rec.in = L.in;
        rec.out = L.out;
        rec.settings = settings_.at(name);
        LayerSettings s = rec.settings;
        s.quant.zero_from_one = opt_.format == BaseFormat::Gptq;  // every zero point storable as zero − 1
        const torch::Tensor W = src.load(L.weight_name());
        if (!Hs.count(L.group)) Hs[L.group] = hessian(L.group).to(torch::kCPU, torch::kFloat64);
        const torch::Tensor& H = Hs[L.group];

        std::string why;
        const bool skip = skipped_.count(name) > 0;
        const bool packable = !gptq || gptq_packable(L.out, L.in, &why);
        torch::Tensor Q_store, Q_solved;
        LowRank lr;
        double alpha = s.lora_alpha;
        if (skip || !packable) {
            rec.quantized = false;
            rec.note =
                skip ? "skipped by the profile" : "left unquantized: " + why + " (GPTQ loaders need 32 | in, out)";
            Q_store = gptq ? W : W.to(torch::kFloat16).to(torch::kFloat32);
            Q_solved = W;
            const int64_t r = std::min<int64_t>(s.rank, std::min(L.in, L.out));
            if (!skip && r > 0) lr = product_zero_adapter(L.out, L.in, r, name);
            if (gptq)
                tensors.emplace_back(L.weight_name(), stored_other(src, L.weight_name(), opt_.format));
            else
                tensors.emplace_back(L.weight_name(), Q_store.to(torch::kFloat16));
            rec.init = Discrepancy{};  // the effective weight is W itself
            if (!skip) res_.notices.push_back(name + ": " + rec.note);
        } else {
            const InitMethod m = s.init;
            // LoftQ without the comparison runs alone: it is data-free and quantizes inside its own loop, so a
            // solver's base (GPTQ, MagR) and CLoQ eigensolve would be computed and never used. Same numbers.
            const bool loftq_alone = m == InitMethod::Loftq && !opt_.compare;
            std::optional<LayerSolver> solver;
            std::optional<LoftqResult> own_loftq;
            if (loftq_alone) {
                own_loftq =
                    loftq_init_layer(name, W.to(device_, torch::kFloat32), H.to(device_), s, mp.slice(0.0, 0.8));
            } else {
                solver.emplace(W.to(device_), factors.get(L, [&] { return H.to(device_); }), name);
                solver->update(s, mp.slice(0.0, 0.6));
                if (m != InitMethod::Cloq && m != InitMethod::Zero) solver->ensure(m, mp.slice(0.6, 0.8));
            }
            QuantizedWeight qw;
            if (m == InitMethod::Loftq) {
                const LoftqResult& lq = loftq_alone ? *own_loftq : solver->loftq();
                if (!lq.int_weight) {
                    if (gptq)
                        throw Error(name +
                                    ": LoftQ with the NF quantizer has no integer codes a GPTQ checkpoint can "
                                    "hold; use --format fp16 or --loftq-quant int");
                } else {
                    qw = to_cpu(*lq.int_weight);
                }
                Q_solved = lq.Q.to(torch::kCPU, torch::kFloat32);
            } else {
                qw = to_cpu(solver->quantized());
                Q_solved = qw.Q;
            }
            if (s.rank > 0) {
                lr = m == InitMethod::Zero ? product_zero_adapter(L.out, L.in, s.rank, name)
                     : loftq_alone         ? own_loftq->adapter
                                           : solver->init(m);
                lr.A = lr.A.to(torch::kCPU, torch::kFloat32);
                lr.B = lr.B.to(torch::kCPU, torch::kFloat32);
            }
            if (m == InitMethod::Eora)
                alpha = static_cast<double>(s.rank);  // docs/design.md: EoRA exports lora_alpha = r
            rec.init = loftq_alone ? discrepancy(W, own_loftq->Q.to(torch::kCPU), lr, H, opt_.spectral)
                                   : solver->metrics(m, opt_.spectral);
            if (opt_.compare) {
                rec.zero = solver->metrics(InitMethod::Zero, opt_.spectral);
                rec.has_zero = true;
                if (m != InitMethod::Loftq) solver->ensure(InitMethod::Loftq, mp.slice(0.8, 0.95));
                rec.loftq = solver->metrics(InitMethod::Loftq, opt_.spectral);
                rec.has_loftq = true;
            }
            if (gptq) {
                const auto qw16 = round_scales_to_fp16(qw);
                Q_store = qw16.Q;
                const auto packed = pack_gptq(qw16, gptq_format(), name);
                tensors.emplace_back(name + ".qweight", packed.qweight);
                tensors.emplace_back(name + ".qzeros", packed.qzeros);
                tensors.emplace_back(name + ".scales", packed.scales);
                tensors.emplace_back(name + ".g_idx", packed.g_idx);
            } else {
                const auto q16 = Q_solved.to(torch::kFloat16);
                Q_store = q16.to(torch::kFloat32);
                tensors.emplace_back(L.weight_name(), q16);
            }
        }
        torch::Tensor eff = Q_store.contiguous();
        if (lr.rank() > 0) {
            const auto saved = peft_saved_factors(lr, alpha, opt_.adapter_dtype);
            adapter_tensors.emplace_back(peft_tensor_name(name, 'A'), saved.A);
            adapter_tensors.emplace_back(peft_tensor_name(name, 'B'), saved.B);
            eff = merge_lora(Q_store, lora_delta(saved.A, saved.B, alpha / static_cast<double>(lr.rank())));
        }
        rec.export_fro_rel = export_rel(eff, W, H);
        if (keep_eval_) {
            b.solved[name] = lr.rank() > 0 ? merge_lora(Q_solved, lora_delta(lr.A, lr.B, 1.0)) : Q_solved;
        }
        b.eff[name] = eff;
        rec.seconds = t0.seconds();
        b.records.push_back(std::move(rec));
        mp(1.0, name);
    }
    // The block's other tensors (RMSNorm weights, Qwen2 biases): copied or rounded like every non-linear tensor.
    std::set<std::string> linear_names;
    for (const auto& L : block_layers) linear_names.insert(L.weight_name());
    const std::string prefix = "model.layers." + std::to_string(layer) + ".";
    for (const auto& n : src.names())
        if (n.rfind(prefix, 0) == 0 && !linear_names.count(n))
            tensors.emplace_back(n, stored_other(src, n, opt_.format));
    for (auto& t : adapter_tensors) tensors.push_back(std::move(t));

    const std::string stem = block_stem(resume_, layer);
    write_safetensors(stem + ".safetensors", tensors, {{"format", "pt"}});
    nlohmann::ordered_json j;
    j["key"] = run_key_;
    j["layer"] = layer;
    j["records"] = nlohmann::ordered_json::array();
    for (const auto& r : b.records) j["records"].push_back(record_json(r));
    write_json_file_atomic(stem + ".json", j);  // written last: its presence marks the block finished
    return b;
}

}  // namespace cloq::pipeline
