#include "cloq/quantize_pipeline.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "cloq/atomic_file.h"
#include "cloq/calibration.h"
#include "cloq/content_hash.h"
#include "cloq/error.h"
#include "cloq/metrics.h"
#include "cloq/metrics_json.h"
#include "cloq/exported_model.h"
#include "cloq/gptq_checkpoint.h"
#include "cloq/gptq_pack.h"
#include "cloq/hessian_factor.h"
#include "cloq/layer_solver.h"
#include "cloq/llama_model.h"
#include "cloq/lowrank.h"
#include "cloq/model_files.h"
#include "cloq/model_layout.h"
#include "cloq/peft_export.h"
#include "cloq/perplexity.h"
#include "cloq/safetensors.h"
#include "cloq/safetensors_stream.h"

namespace fs = std::filesystem;

namespace cloq {

std::string to_string(BaseFormat f) {
    switch (f) {
        case BaseFormat::Gptq: return "gptq";
        case BaseFormat::GptqV2: return "gptq_v2";
        case BaseFormat::Fp16: return "fp16";
    }
    return "?";
}

BaseFormat parse_base_format(const std::string& s) {
    if (s == "gptq") return BaseFormat::Gptq;
    if (s == "gptq_v2") return BaseFormat::GptqV2;
    if (s == "fp16") return BaseFormat::Fp16;
    throw Error("unknown base format '" + s + "' (use gptq, gptq_v2 or fp16)");
}

std::string resume_dir_for(const std::string& out_dir) {
    std::string d = out_dir;
    while (d.size() > 1 && d.back() == '/') d.pop_back();
    return d + ".cloq-resume";
}

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

constexpr int kResumeVersion = 1;
const char* kAdapterPrefix = "base_model.model.";

bool is_adapter_tensor(const std::string& n) { return n.rfind(kAdapterPrefix, 0) == 0; }

std::string block_stem(const std::string& resume, int layer) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "block_%04d", layer);
    return (fs::path(resume) / buf).string();
}

nlohmann::ordered_json to_ordered(const nlohmann::json& j) { return nlohmann::ordered_json::parse(j.dump()); }

nlohmann::ordered_json record_json(const ModuleRecord& r) {
    nlohmann::ordered_json j;
    j["module"] = r.module;
    j["layer"] = r.layer;
    j["in"] = r.in;
    j["out"] = r.out;
    j["quantized"] = r.quantized;
    if (!r.note.empty()) j["note"] = r.note;
    j["settings"] = to_ordered(to_json(r.settings));
    nlohmann::ordered_json m;
    m[to_string(r.settings.init)] = discrepancy_json(r.init);
    if (r.has_zero) m["zero"] = discrepancy_json(r.zero);
    if (r.has_loftq) m["loftq"] = discrepancy_json(r.loftq);
    j["metrics"] = m;
    j["export_fro_rel"] = r.export_fro_rel;
    j["seconds"] = r.seconds;
    return j;
}

ModuleRecord record_from_json(const nlohmann::json& j, const std::string& where) {
    ModuleRecord r;
    r.module = j.at("module").get<std::string>();
    r.layer = j.at("layer").get<int>();
    r.in = j.at("in").get<int64_t>();
    r.out = j.at("out").get<int64_t>();
    r.quantized = j.at("quantized").get<bool>();
    if (j.contains("note")) r.note = j["note"].get<std::string>();
    r.settings = layer_settings_from_json(j.at("settings"), LayerSettings{}, where);
    const auto& m = j.at("metrics");
    r.init = discrepancy_from_json(m.at(to_string(r.settings.init)));
    if (m.contains("zero")) { r.zero = discrepancy_from_json(m["zero"]); r.has_zero = true; }
    if (m.contains("loftq")) { r.loftq = discrepancy_from_json(m["loftq"]); r.has_loftq = true; }
    r.export_fro_rel = j.at("export_fro_rel").get<double>();
    r.seconds = j.at("seconds").get<double>();
    return r;
}

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

// The weights a model built from the export sees for non-linear tensors (fp16 rounds them).
class RoundedWeights : public WeightSource {
public:
    explicit RoundedWeights(std::shared_ptr<const WeightSource> b) : b_(std::move(b)) {}
    std::vector<std::string> names() const override { return b_->names(); }
    bool contains(const std::string& n) const override { return b_->contains(n); }
    std::vector<int64_t> shape(const std::string& n) const override { return b_->shape(n); }
    std::string dtype(const std::string&) const override { return "F16"; }
    torch::Tensor load(const std::string& n) const override { return b_->load(n).to(torch::kFloat16).to(torch::kFloat32); }
    std::string describe() const override { return b_->describe() + " rounded to float16"; }

private:
    std::shared_ptr<const WeightSource> b_;
};

struct Block {
    std::vector<ModuleRecord> records;
    std::map<std::string, torch::Tensor> eff;     // module -> what the files hold (Q_store + s·B·A), float32
    std::map<std::string, torch::Tensor> solved;  // module -> unrounded Q + B·A (only computed this run)
};

class Pipeline {
public:
    Pipeline(const QuantizeExportOptions& opt, const Progress& progress) : opt_(opt), progress_(progress) {}
    QuantizeExportResult run();

private:
    const QuantizeExportOptions& opt_;
    const Progress& progress_;
    QuantizeExportResult res_;
    ModelFiles mf_;
    std::vector<LinearLayer> layers_;
    std::map<std::string, LayerSettings> settings_;
    std::set<std::string> skipped_;
    std::string resume_, run_key_;
    bool keep_eval_ = false;
    torch::Device device_ = torch::kCPU;
    std::map<std::string, torch::Tensor> eff_, solved_;
    bool solved_complete_ = true;
    std::vector<std::string> finished_blocks_;
    // Notices about this run only (resumed blocks): printed, but kept out of report.json so that an interrupted and
    // resumed export writes the same files as an uninterrupted one (timings aside, which live under "timings").
    std::vector<std::string> run_notices_;
    int blocks_done_ = 0;
    Clock::time_point t_layers_;
    double layer_seconds_ = 0;

    GptqFormat gptq_format() const { return opt_.format == BaseFormat::GptqV2 ? GptqFormat::V2 : GptqFormat::V1; }
    void progress(double f, const std::string& s) const { progress_(f, s); }
    Progress layer_progress(int layer) const {
        const double lo = 0.25 + 0.6 * layer / std::max<int64_t>(1, mf_.config.num_layers);
        return progress_.slice(lo, lo + 0.6 / std::max<int64_t>(1, mf_.config.num_layers));
    }

    void prepare_resume();
    bool load_finished_block(int layer, Block& b);
    Block process_block(int layer, const std::function<torch::Tensor(InputGroup)>& hessian, const Progress& p);
    void finish_block(int layer, Block&& b);
    void assemble(const std::string& dir, const Calibration& calib);
    nlohmann::ordered_json report_json(const Calibration& calib) const;
    std::string report_csv() const;
    void evaluate(const std::string& temp_out);
};

void Pipeline::prepare_resume() {
    resume_ = resume_dir_for(opt_.out_dir);
    const std::string run_path = (fs::path(resume_) / "run.json").string();
    if (fs::exists(resume_)) {
        if (!opt_.resume)
            throw Error(resume_ + " holds the finished blocks of an interrupted run: pass --resume to continue it, "
                        "or delete that folder to start over");
        if (!fs::exists(run_path))
            throw Error(resume_ + " is not a cloq resume folder (no run.json); delete it to start over");
        const auto run = read_json_file(run_path);
        if (!run.contains("key") || run["key"] != run_key_)
            throw Error(resume_ + " was made with another model, calibration or settings; run with the same options "
                        "or delete that folder to start over");
        return;
    }
    if (opt_.resume) run_notices_.push_back("nothing to resume in " + resume_ + ": starting from the first block");
    // Built under a temporary name and renamed into place with its run.json, so a kill here never leaves a
    // resume folder that a rerun with --resume would have to refuse.
    nlohmann::ordered_json run;
    run["format"] = "cloq-resume";
    run["version"] = kResumeVersion;
    run["key"] = run_key_;
    run["out"] = opt_.out_dir;
    AtomicDir folder(resume_);
    write_json_file_atomic(folder.file("run.json"), run);
    folder.commit();
}

bool Pipeline::load_finished_block(int layer, Block& b) {
    const std::string stem = block_stem(resume_, layer);
    if (!fs::exists(stem + ".json") || !fs::exists(stem + ".safetensors")) return false;
    const auto j = read_json_file(stem + ".json");
    if (j.value("key", std::string()) != run_key_) return false;
    for (const auto& r : j.at("records")) b.records.push_back(record_from_json(r, stem + ".json"));
    for (const auto& r : b.records)  // the notices process_block gave when it made this block
        if (!r.quantized && r.note != "skipped by the profile") res_.notices.push_back(r.module + ": " + r.note);
    // The effective weights (for sequential calibration and the in-memory perplexity) from what the block stored.
    const SafetensorsFile f(stem + ".safetensors");
    for (const auto& r : b.records) {
        torch::Tensor Q;
        if (f.contains(r.module + ".qweight")) {
            GptqTensors t{f.tensor(r.module + ".qweight"), f.tensor(r.module + ".qzeros"), f.tensor(r.module + ".scales"),
                          f.tensor(r.module + ".g_idx")};
            Q = unpack_gptq(t, r.settings.quant.bits, r.settings.quant.group, r.settings.quant.sym, gptq_format(),
                            f.path() + ": " + r.module).Q;
        } else {
            Q = f.load_float(r.module + ".weight");
        }
        const std::string na = peft_tensor_name(r.module, 'A'), nb = peft_tensor_name(r.module, 'B');
        if (f.contains(na)) {
            const auto A = f.load_float(na), B = f.load_float(nb);
            const double alpha = r.settings.init == InitMethod::Eora && r.quantized ? static_cast<double>(A.size(0))
                                                                                  : r.settings.lora_alpha;
            Q = merge_lora(Q, lora_delta(A, B, alpha / static_cast<double>(A.size(0))));
        }
        b.eff[r.module] = Q;
    }
    return true;
}

Block Pipeline::process_block(int layer, const std::function<torch::Tensor(InputGroup)>& hessian, const Progress& p) {
    Block b;
    const auto& src = *mf_.weights;
    const auto block_layers = block_linear_layers(mf_.config, layer);
    std::map<InputGroup, std::shared_ptr<const HessianFactor>> factors;
    std::map<InputGroup, torch::Tensor> Hs;
    std::vector<std::pair<std::string, torch::Tensor>> tensors;  // the block file: base tensors, then adapter tensors
    std::vector<std::pair<std::string, torch::Tensor>> adapter_tensors;
    const bool gptq = opt_.format != BaseFormat::Fp16;

    for (size_t i = 0; i < block_layers.size(); ++i) {
        const auto& L = block_layers[i];
        const auto t0 = Clock::now();
        const std::string name = L.name();
        const Progress mp = p.slice(static_cast<double>(i) / block_layers.size(),
                                    static_cast<double>(i + 1) / block_layers.size());
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
            rec.note = skip ? "skipped by the profile" : "left unquantized: " + why + " (GPTQ loaders need 32 | in, out)";
            Q_store = gptq ? W : W.to(torch::kFloat16).to(torch::kFloat32);
            Q_solved = W;
            const int64_t r = std::min<int64_t>(s.rank, std::min(L.in, L.out));
            if (!skip && r > 0) lr = product_zero_adapter(L.out, L.in, r, name);
            if (gptq) tensors.emplace_back(L.weight_name(), stored_other(src, L.weight_name(), opt_.format));
            else tensors.emplace_back(L.weight_name(), Q_store.to(torch::kFloat16));
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
                own_loftq = loftq_init_layer(name, W.to(device_, torch::kFloat32), H.to(device_), s, mp.slice(0.0, 0.8));
            } else {
                if (!factors.count(L.group))
                    factors[L.group] = std::make_shared<HessianFactor>(
                        H.to(device_), "block " + std::to_string(layer) + " " + to_string(L.group));
                solver.emplace(W.to(device_), factors[L.group], name);
                solver->update(s, mp.slice(0.0, 0.6));
                if (m != InitMethod::Cloq && m != InitMethod::Zero) solver->ensure(m, mp.slice(0.6, 0.8));
            }
            QuantizedWeight qw;
            if (m == InitMethod::Loftq) {
                const LoftqResult& lq = loftq_alone ? *own_loftq : solver->loftq();
                if (!lq.int_weight) {
                    if (gptq)
                        throw Error(name + ": LoftQ with the NF quantizer has no integer codes a GPTQ checkpoint can "
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
            if (m == InitMethod::Eora) alpha = static_cast<double>(s.rank);  // DESIGN.md: EoRA exports lora_alpha = r
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
        rec.seconds = since(t0);
        b.records.push_back(std::move(rec));
        mp(1.0, name);
    }
    // The block's other tensors (RMSNorm weights, Qwen2 biases): copied or rounded like every non-linear tensor.
    std::set<std::string> linear_names;
    for (const auto& L : block_layers) linear_names.insert(L.weight_name());
    const std::string prefix = "model.layers." + std::to_string(layer) + ".";
    for (const auto& n : src.names())
        if (n.rfind(prefix, 0) == 0 && !linear_names.count(n)) tensors.emplace_back(n, stored_other(src, n, opt_.format));
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

void Pipeline::finish_block(int layer, Block&& b) {
    for (auto& r : b.records) res_.modules.push_back(std::move(r));
    if (keep_eval_) {
        for (auto& [k, v] : b.eff) eff_[k] = std::move(v);
        if (b.solved.empty()) solved_complete_ = false;
        for (auto& [k, v] : b.solved) solved_[k] = std::move(v);
    }
    ++blocks_done_;
    const double elapsed = since(t_layers_);
    const int left = static_cast<int>(mf_.config.num_layers) - blocks_done_;
    std::ostringstream s;
    s << "block " << layer + 1 << "/" << mf_.config.num_layers << " done";
    if (left > 0 && blocks_done_ > res_.resumed_blocks)
        s << ", about " << static_cast<int>(std::ceil(elapsed / (blocks_done_ - res_.resumed_blocks) * left))
          << " s left";
    progress(0.25 + 0.6 * blocks_done_ / std::max<int64_t>(1, mf_.config.num_layers), s.str());
}

void Pipeline::assemble(const std::string& dir, const Calibration& calib) {
    const auto& src = *mf_.weights;
    std::vector<SafetensorsFile> blocks;
    for (int l = 0; l < mf_.config.num_layers; ++l) blocks.emplace_back(block_stem(resume_, l) + ".safetensors");
    const Progress wp = progress_.slice(0.85, 0.92);

    // Module infos for the configs.
    std::vector<GptqModuleInfo> ginfos;
    std::vector<PeftModuleInfo> pinfos;
    std::vector<std::string> all_modules;
    for (const auto& r : res_.modules) {
        all_modules.push_back(r.module);
        ginfos.push_back({r.module, r.quantized, r.settings.quant.bits, r.settings.quant.group, r.settings.quant.sym,
                          r.settings.act_order});
        const auto& f = blocks.at(static_cast<size_t>(r.layer));
        const std::string na = peft_tensor_name(r.module, 'A');
        const int64_t rank = f.contains(na) ? f.info(na).shape.at(0) : 0;
        const double alpha = r.settings.init == InitMethod::Eora && r.quantized ? static_cast<double>(rank) : r.settings.lora_alpha;
        pinfos.push_back({r.module, rank, alpha});
    }

    if (opt_.write_base) {
        const std::string base = (fs::path(dir) / "base").string();
        fs::create_directory(base);
        std::vector<SafetensorsEntry> entries;
        auto from_block = [&](size_t l, const std::string& n) {
            const auto& f = blocks[l];
            const auto& info = f.info(n);
            SafetensorsEntry e{n, f.tensor(n).scalar_type(), info.shape, [&f, n] { return f.tensor(n); }};
            return e;
        };
        std::set<std::string> done;
        for (const auto& n : src.names()) {
            if (n.rfind("model.layers.", 0) == 0) continue;  // block tensors come from the block files, in order
            auto t = stored_other(src, n, opt_.format);
            entries.push_back({n, t.scalar_type(), t.sizes().vec(), [&src, n, this] { return stored_other(src, n, opt_.format); }});
            if (n == "model.embed_tokens.weight") {
                for (size_t l = 0; l < blocks.size(); ++l)
                    for (const auto& bn : blocks[l].names())
                        if (!is_adapter_tensor(bn)) entries.push_back(from_block(l, bn));
                done.insert("blocks");
            }
        }
        if (!done.count("blocks"))  // no embedding tensor first (unusual naming): blocks at the end
            for (size_t l = 0; l < blocks.size(); ++l)
                for (const auto& bn : blocks[l].names())
                    if (!is_adapter_tensor(bn)) entries.push_back(from_block(l, bn));
        nlohmann::ordered_json source_config;
        const auto cfg_path = fs::path(opt_.model_path) / "config.json";
        if (fs::is_regular_file(cfg_path)) source_config = read_json_file(cfg_path.string());
        else source_config = to_ordered(model_config_to_hf_json(mf_.config));
        if (opt_.format == BaseFormat::Fp16) {
            write_safetensors_streamed((fs::path(base) / "model.safetensors").string(), entries, {{"format", "pt"}},
                                       wp.slice(0, 0.7));
            auto c = source_config;
            c.erase("quantization_config");
            c["torch_dtype"] = "float16";
            write_json_file_atomic((fs::path(base) / "config.json").string(), c);
        } else {
            const LayerSettings& g = opt_.profile.global;
            GptqExportConfig gc;
            gc.bits = g.quant.bits;
            gc.group_size = g.quant.group;
            gc.desc_act = g.act_order;
            gc.sym = g.quant.sym;
            gc.damp_percent = g.damp;
            gc.static_groups = g.static_groups;
            gc.true_sequential = true;
            gc.format = gptq_format();
            write_gptq_checkpoint(base, source_config, gptq_quantization_config(gc, ginfos), entries, wp.slice(0, 0.7));
        }
        copy_tokenizer_files(fs::is_directory(opt_.model_path) ? opt_.model_path : std::string(), base);
    }
    if (opt_.write_adapter) {
        const std::string ad = (fs::path(dir) / "adapter").string();
        fs::create_directory(ad);
        std::vector<SafetensorsEntry> entries;
        for (size_t l = 0; l < blocks.size(); ++l)
            for (const auto& bn : blocks[l].names())
                if (is_adapter_tensor(bn)) {
                    const auto& f = blocks[l];
                    entries.push_back({bn, f.tensor(bn).scalar_type(), f.info(bn).shape, [&f, bn] { return f.tensor(bn); }});
                }
        if (entries.empty()) {
            res_.notices.push_back("no module has an adapter (rank 0 everywhere): OUT/adapter not written");
            fs::remove(ad);
        } else {
            write_safetensors_streamed((fs::path(ad) / "adapter_model.safetensors").string(), entries,
                                       {{"format", "pt"}}, wp.slice(0.7, 1.0));
            write_json_file_atomic((fs::path(ad) / "adapter_config.json").string(),
                                   peft_adapter_config(pinfos, all_modules, opt_.model_path));
        }
    }
    if (opt_.write_profile) {
        // The settings actually used: the profile as given (its overrides are what chose the per-module values).
        auto p = to_json(opt_.profile);
        p["calibration"] = to_ordered(to_json(opt_.calib));
        p["export"] = {{"format", to_string(opt_.format)}, {"adapter_dtype", std::string(c10::toString(opt_.adapter_dtype))}};
        write_json_file_atomic((fs::path(dir) / "profile.json").string(), p);
    }
    (void)calib;
}

nlohmann::ordered_json Pipeline::report_json(const Calibration& calib) const {
    nlohmann::ordered_json r;
    r["tool"] = std::string("cloq quantize ") + CLOQ_VERSION;
    r["model"] = opt_.model_path;
    r["format"] = to_string(opt_.format);
    r["adapter_dtype"] = std::string(c10::toString(opt_.adapter_dtype));
    nlohmann::ordered_json c = to_ordered(to_json(opt_.calib));
    c["key"] = calib.key;
    c["tokens"] = calib.tokens;
    c["seqlen_used"] = calib.seqlen;
    c["notices"] = calib.notices;
    r["calibration"] = c;
    r["profile"] = to_json(opt_.profile);
    r["modules"] = nlohmann::ordered_json::array();
    double sum_init = 0, sum_zero = 0, sum_loftq = 0;
    int n_init = 0, n_zero = 0, n_loftq = 0;
    for (const auto& m : res_.modules) {
        auto mj = record_json(m);
        mj.erase("seconds");  // under "timings"
        r["modules"].push_back(mj);
        if (!m.quantized) continue;
        sum_init += m.init.fro_rel, ++n_init;
        if (m.has_zero) sum_zero += m.zero.fro_rel, ++n_zero;
        if (m.has_loftq) sum_loftq += m.loftq.fro_rel, ++n_loftq;
    }
    nlohmann::ordered_json s;
    s["quantized_modules"] = n_init;
    s["unquantized_modules"] = static_cast<int>(res_.modules.size()) - n_init;
    if (n_init) s["mean_fro_rel_" + to_string(opt_.profile.global.init)] = sum_init / n_init;
    if (n_zero) s["mean_fro_rel_zero"] = sum_zero / n_zero;
    if (n_loftq) s["mean_fro_rel_loftq"] = sum_loftq / n_loftq;
    r["summary"] = s;
    r["notices"] = res_.notices;
    return r;
}

std::string Pipeline::report_csv() const {
    std::ostringstream o;
    o.precision(9);
    o << "module,layer,in,out,quantized,bits,group,rank,init,lora_alpha,fro,fro_rel,spec,spec_rel,"
         "zero_fro_rel,zero_spec_rel,loftq_fro_rel,loftq_spec_rel,export_fro_rel,note\n";
    for (const auto& m : res_.modules) {
        const auto& s = m.settings;
        o << m.module << ',' << m.layer << ',' << m.in << ',' << m.out << ',' << (m.quantized ? 1 : 0) << ','
          << s.quant.bits << ',' << s.quant.group << ',' << s.rank << ',' << to_string(s.init) << ',' << s.lora_alpha
          << ',' << m.init.fro << ',' << m.init.fro_rel << ',' << m.init.spec << ',' << m.init.spec_rel << ',';
        if (m.has_zero) o << m.zero.fro_rel << ',' << m.zero.spec_rel << ',';
        else o << ",,";
        if (m.has_loftq) o << m.loftq.fro_rel << ',' << m.loftq.spec_rel << ',';
        else o << ",,";
        std::string note = m.note;
        for (auto& ch : note)
            if (ch == '"') ch = '\'';
        o << m.export_fro_rel << ",\"" << note << "\"\n";  // seconds: report.json "timings"
    }
    return o.str();
}

void Pipeline::evaluate(const std::string& temp_out) {
    const Progress ep = progress_.slice(0.92, 0.99);
    if (!mf_.tokenizer) throw Error(opt_.model_path + ": the model has no tokenizer, so perplexity cannot be measured");
    const auto tokens = tokenize_file(*mf_.tokenizer, opt_.eval_text);
    PerplexityOptions po;
    po.seqlen = opt_.eval_seqlen;
    po.nsamples = opt_.eval_nsamples;
    const torch::Device dev = resolve_device(opt_.device);
    auto ppl_of = [&](ModelFiles files, WeightTransform t, const Progress& p) {
        LlamaModel m(std::move(files), dev, forward_dtype(dev, false));
        if (t) m.set_weight_transform(std::move(t));
        return perplexity(m, tokens, po, p).ppl;
    };
    res_.ppl_float = ppl_of(mf_, {}, ep.slice(0, 0.25));
    if (solved_complete_ && !solved_.empty())
        res_.ppl_solved = ppl_of(mf_, [this](const LinearLayer& l, const torch::Tensor&) { return solved_.at(l.name()); },
                                 ep.slice(0.25, 0.5));
    else
        res_.notices.push_back("perplexity of the unrounded solution not measured: some blocks were resumed");
    ModelFiles view = mf_;
    if (opt_.format == BaseFormat::Fp16) view.weights = std::make_shared<RoundedWeights>(mf_.weights);
    res_.ppl_export = ppl_of(view, [this](const LinearLayer& l, const torch::Tensor&) { return eff_.at(l.name()); },
                             ep.slice(0.5, 0.75));
    if (opt_.eval_files && opt_.write_base) {
        const std::string ad = (fs::path(temp_out) / "adapter").string();
        auto files = open_exported_model(opt_.model_path, (fs::path(temp_out) / "base").string(),
                                         opt_.write_adapter && fs::exists(ad) ? ad : std::string());
        res_.ppl_files = ppl_of(files, {}, ep.slice(0.75, 1.0));
    }
}

QuantizeExportResult Pipeline::run() {
    const auto t_start = Clock::now();
    if (opt_.out_dir.empty()) throw Error("no output folder given");
    if (fs::exists(opt_.out_dir))
        throw Error("output folder " + opt_.out_dir + " already exists; choose another name or delete it (nothing was written)");
    AtomicDir out(opt_.out_dir);  // the temporary sibling: an unwritable location fails here, before any work
    res_.out_dir = opt_.out_dir;
    progress(0.0, "opening " + opt_.model_path);

    mf_ = open_model(opt_.model_path);
    layers_ = linear_layers(mf_.config);
    for (const auto& L : layers_) {
        bool skip = false;
        settings_[L.name()] = opt_.profile.for_module(L.name(), &skip);
        if (skip) skipped_.insert(L.name());
    }
    keep_eval_ = !opt_.eval_text.empty();

    // What a finished block depends on: model, calibration, settings, format.
    ContentHash h;
    h.update("cloq-quantize-resume").update_u64(kResumeVersion);
    h.update(mf_.weights->fingerprint());
    h.update(to_json(opt_.calib).dump());
    h.update(to_json(opt_.profile).dump());
    h.update(to_string(opt_.format)).update(std::string(c10::toString(opt_.adapter_dtype)));
    h.update_u64(opt_.compare).update_u64(opt_.spectral);
    run_key_ = h.hex();

    const torch::Device dev = resolve_device(opt_.device);
    device_ = dev;
    LlamaModel model(mf_, dev, forward_dtype(dev, false));
    bool created_resume = !fs::exists(resume_dir_for(opt_.out_dir));
    prepare_resume();
    try {
        CalibrationRequest req;
        req.settings = opt_.calib;
        t_layers_ = Clock::now();
        if (opt_.calib.sequential) {
            // GPTQ-style: each block is quantized as soon as its inputs (from the quantized blocks before) are known,
            // and the model continues with what the files will hold.
            req.quantizer_key = to_json(opt_.profile).dump() + to_string(opt_.format);
            req.quantizer = [this](int layer, const BlockHessians& H, BlockWeights& w) {
                Block b;
                if (load_finished_block(layer, b)) ++res_.resumed_blocks;
                else b = process_block(layer, [&H](InputGroup g) { return H[static_cast<size_t>(g)]; }, layer_progress(layer));
                for (const auto& L : block_linear_layers(mf_.config, layer))
                    w.linear(L.module) = b.eff.at(L.name()).to(w.linear(L.module).device(), w.linear(L.module).scalar_type());
                finish_block(layer, std::move(b));
            };
        }
        const Calibration calib = calibrate(model, req, progress_.slice(0.0, opt_.calib.sequential ? 0.85 : 0.25));
        for (const auto& n : calib.notices) res_.notices.push_back(n);
        if (!opt_.calib.sequential) {
            t_layers_ = Clock::now();
            for (int l = 0; l < mf_.config.num_layers; ++l) {
                Block b;
                if (load_finished_block(l, b)) ++res_.resumed_blocks;
                else b = process_block(l, [&calib, l](InputGroup g) { return calib.hessian(l, g); }, layer_progress(l));
                finish_block(l, std::move(b));
            }
        }
        if (res_.resumed_blocks > 0)
            run_notices_.push_back("resumed " + std::to_string(res_.resumed_blocks) + " finished block(s) from " + resume_);
        layer_seconds_ = since(t_layers_);

        assemble(out.path(), calib);
        if (keep_eval_) evaluate(out.path());
        res_.seconds_total = since(t_start);
        res_.report = report_json(calib);
        if (keep_eval_) {
            nlohmann::ordered_json p;
            p["text"] = opt_.eval_text;
            p["seqlen"] = opt_.eval_seqlen;
            p["nsamples"] = opt_.eval_nsamples;
            p["float"] = res_.ppl_float;
            if (res_.ppl_solved > 0) p["solved_fp32"] = res_.ppl_solved;
            p["export_in_memory"] = res_.ppl_export;
            if (res_.ppl_files > 0) p["from_files"] = res_.ppl_files;
            res_.report["perplexity"] = p;
        }
        // Everything that differs between two runs of the same export: durations, the calibration cache, resuming.
        nlohmann::ordered_json per_module;
        for (const auto& m : res_.modules) per_module[m.module] = m.seconds;
        res_.report["timings"] = {{"calibration", calib.seconds}, {"calibration_from_cache", calib.from_cache},
                                  {"layers", layer_seconds_}, {"total", since(t_start)},
                                  {"resumed_blocks", res_.resumed_blocks}, {"modules", per_module}};
        if (opt_.write_report) {
            write_json_file_atomic((fs::path(out.path()) / "report.json").string(), res_.report);
            write_file_atomic((fs::path(out.path()) / "report.csv").string(), report_csv());
        }
        if (opt_.add_files) opt_.add_files(out.path());
        progress(0.995, "finishing " + opt_.out_dir);
        out.commit();
    } catch (...) {
        // Finished blocks stay for --resume; a resume folder with none (we just created it) is removed.
        if (created_resume && blocks_done_ == res_.resumed_blocks && blocks_done_ == 0) remove_folder_atomic(resume_);
        throw;
    }
    for (auto& n : run_notices_) res_.notices.push_back(std::move(n));
    remove_folder_atomic(resume_);  // OUT is complete: the checkpoints are no longer needed
    res_.seconds_total = since(t_start);
    progress(1.0, "wrote " + opt_.out_dir);
    return res_;
}

}  // namespace

QuantizeExportResult run_quantize_export(const QuantizeExportOptions& opt, const Progress& progress) {
    Pipeline p(opt, progress);
    return p.run();
}

}  // namespace cloq
