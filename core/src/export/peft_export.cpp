#include "export/peft_export.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "base/regex.h"
#include "cloq/base/atomic_file.h"
#include "cloq/base/error.h"
#include "cloq/io/safetensors.h"

namespace fs = std::filesystem;

namespace cloq {

namespace {
const char* kPrefix = "base_model.model.";

std::string short_name(const std::string& module) {
    const auto dot = module.rfind('.');
    return dot == std::string::npos ? module : module.substr(dot + 1);
}

// "model.layers.3.mlp.down_proj" -> "layers.3.mlp.down_proj" (see the header: both PEFT matchers accept it).
std::string pattern_key(const std::string& module) {
    const auto dot = module.find('.');
    return dot == std::string::npos ? module : module.substr(dot + 1);
}

template <class T>
T most_common(const std::vector<T>& v) {
    std::map<T, int> count;
    for (const auto& x : v) ++count[x];
    T best = v.front();
    int n = 0;
    for (const auto& x : v)  // first-seen wins ties, so the choice is stable
        if (count[x] > n) {
            best = x;
            n = count[x];
        }
    return best;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("cannot open " + path + ": no such file or not readable");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// PEFT's get_pattern_key: the first key K with re.match(r"(.*\.)?(K)$", module).
const std::string* match_pattern(const nlohmann::ordered_json& patterns, const std::string& module,
                                 const std::string& where) {
    for (auto it = patterns.begin(); it != patterns.end(); ++it) {
        const std::regex re = compile_untrusted_regex("(.*\\.)?(" + it.key() + ")", where + ": key '" + it.key() + "'");
        if (std::regex_match(module, re)) return &it.key();
    }
    return nullptr;
}
}  // namespace

std::string peft_tensor_name(const std::string& module, char which) {
    return std::string(kPrefix) + module + (which == 'A' ? ".lora_A.weight" : ".lora_B.weight");
}

LowRank peft_saved_factors(const LowRank& solved, double lora_alpha, torch::ScalarType dtype) {
    const int64_t r = solved.rank();
    if (r <= 0) throw Error("an adapter of rank 0 cannot be saved for PEFT");
    if (!(lora_alpha > 0)) throw Error("lora_alpha must be positive, got " + std::to_string(lora_alpha));
    const double s = lora_alpha / static_cast<double>(r);
    LowRank out;
    // Divide in float64 so that a float32 save rounds once.
    out.A = (solved.A.to(torch::kFloat64) / s).to(dtype).contiguous();
    out.B = solved.B.to(dtype).contiguous();
    return out;
}

nlohmann::ordered_json peft_adapter_config(const std::vector<PeftModuleInfo>& modules,
                                           const std::vector<std::string>& all_linear_modules,
                                           const std::string& base_model_name_or_path) {
    std::vector<const PeftModuleInfo*> adapted;
    for (const auto& m : modules) {
        if (m.rank < 0) throw Error(m.module + ": negative rank " + std::to_string(m.rank));
        if (m.rank > 0) {
            if (!(m.lora_alpha > 0)) throw Error(m.module + ": lora_alpha must be positive");
            adapted.push_back(&m);
        }
    }
    if (adapted.empty()) throw Error("no module has an adapter (every rank is 0): nothing to export for PEFT");

    std::vector<int64_t> ranks;
    std::vector<double> alphas;
    for (const auto* m : adapted) {
        ranks.push_back(m->rank);
        alphas.push_back(m->lora_alpha);
    }
    const int64_t r = most_common(ranks);
    const double alpha = most_common(alphas);

    // target_modules: the short-name list when it selects exactly the adapted modules, else an exact regex.
    std::set<std::string> names, shorts;
    for (const auto* m : adapted) {
        names.insert(m->module);
        shorts.insert(short_name(m->module));
    }
    std::set<std::string> selected;
    for (const auto& m : all_linear_modules)
        if (shorts.count(short_name(m))) selected.insert(m);
    for (const auto& m : names) selected.insert(m);  // adapted modules outside the list still count
    nlohmann::ordered_json target;
    if (selected == names) {
        target = nlohmann::ordered_json::array();
        for (const auto& s : shorts) target.push_back(s);
    } else {
        std::string re = "^(?:";
        bool first = true;
        for (const auto& m : names) {
            re += (first ? "" : "|") + regex_escape(m);
            first = false;
        }
        target = re + ")$";
    }

    nlohmann::ordered_json rank_pattern = nlohmann::ordered_json::object();
    nlohmann::ordered_json alpha_pattern = nlohmann::ordered_json::object();
    for (const auto* m : adapted) {
        if (m->rank != r) rank_pattern[pattern_key(m->module)] = m->rank;
        if (m->lora_alpha != alpha) alpha_pattern[pattern_key(m->module)] = m->lora_alpha;
    }

    nlohmann::ordered_json c;
    c["peft_type"] = "LORA";
    c["task_type"] = "CAUSAL_LM";
    c["base_model_name_or_path"] = base_model_name_or_path;
    c["r"] = r;
    c["lora_alpha"] = alpha;
    c["lora_dropout"] = 0.0;
    c["target_modules"] = target;
    c["bias"] = "none";
    c["fan_in_fan_out"] = false;
    c["init_lora_weights"] = true;
    c["inference_mode"] = true;
    c["modules_to_save"] = nullptr;
    if (!rank_pattern.empty()) c["rank_pattern"] = rank_pattern;
    if (!alpha_pattern.empty()) c["alpha_pattern"] = alpha_pattern;
    return c;
}

void write_peft_adapter(const std::string& dir, const std::vector<PeftModuleAdapter>& modules,
                        const std::vector<std::string>& all_linear_modules, const std::string& base_model_name_or_path,
                        torch::ScalarType dtype) {
    std::vector<PeftModuleInfo> infos;
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    for (const auto& m : modules) {
        infos.push_back({m.module, m.solved.rank(), m.lora_alpha});
        if (m.solved.rank() == 0) continue;
        const auto saved = peft_saved_factors(m.solved, m.lora_alpha, dtype);
        tensors.emplace_back(peft_tensor_name(m.module, 'A'), saved.A);
        tensors.emplace_back(peft_tensor_name(m.module, 'B'), saved.B);
    }
    const auto config = peft_adapter_config(infos, all_linear_modules, base_model_name_or_path);
    write_safetensors((fs::path(dir) / "adapter_model.safetensors").string(), tensors, {{"format", "pt"}});
    write_file_atomic((fs::path(dir) / "adapter_config.json").string(), config.dump(2) + "\n");
}

// ---- reading ----------------------------------------------------------------------------------------------------

torch::Tensor lora_delta(const torch::Tensor& A_saved, const torch::Tensor& B_saved, double scaling) {
    const auto A = A_saved.to(torch::kFloat32).to(torch::kFloat64);
    const auto B = B_saved.to(torch::kFloat32).to(torch::kFloat64);
    return (B.mm(A) * scaling).to(torch::kFloat32);
}

torch::Tensor merge_lora(const torch::Tensor& W, const torch::Tensor& delta) {
    return (W.to(torch::kFloat64) + delta.to(torch::kFloat64)).to(torch::kFloat32).contiguous();
}

torch::Tensor PeftAdapter::delta(const std::string& module) const {
    auto it = modules.find(module);
    if (it == modules.end()) return {};
    return lora_delta(it->second.A, it->second.B, it->second.scaling);
}

PeftAdapter read_peft_adapter(const std::string& dir) {
    PeftAdapter a;
    a.dir = dir;
    const std::string cfg_path = (fs::path(dir) / "adapter_config.json").string();
    const std::string st_path = (fs::path(dir) / "adapter_model.safetensors").string();
    if (!fs::is_directory(dir)) throw Error("adapter folder " + dir + " does not exist");
    if (!fs::exists(cfg_path)) throw Error(dir + ": no adapter_config.json (not a PEFT adapter folder?)");
    if (!fs::exists(st_path))
        throw Error(dir + ": no adapter_model.safetensors (only the safetensors form of PEFT adapters is read)");
    try {
        a.config = nlohmann::ordered_json::parse(read_text(cfg_path));
    } catch (const nlohmann::json::exception& e) {
        throw Error(cfg_path + ": not valid JSON (" + std::string(e.what()) + ")");
    }
    const auto& c = a.config;
    if (!c.is_object()) throw Error(cfg_path + ": not a JSON object");
    auto get_string = [&](const char* k) -> std::string {
        if (!c.contains(k) || !c[k].is_string()) throw Error(cfg_path + ": \"" + k + "\" is missing or not a string");
        return c[k].get<std::string>();
    };
    if (get_string("peft_type") != "LORA")
        throw Error(cfg_path + ": peft_type is " + c["peft_type"].dump() + "; only LORA adapters are supported");
    if (!c.contains("r") || !c["r"].is_number_integer() || c["r"].get<int64_t>() <= 0)
        throw Error(cfg_path + ": \"r\" must be a positive integer");
    if (!c.contains("lora_alpha") || !c["lora_alpha"].is_number() || !(c["lora_alpha"].get<double>() > 0))
        throw Error(cfg_path + ": \"lora_alpha\" must be a positive number");
    auto flag = [&](const char* k) {
        if (!c.contains(k) || c[k].is_null()) return false;
        if (!c[k].is_boolean()) throw Error(cfg_path + ": \"" + k + "\" must be true or false");
        return c[k].get<bool>();
    };
    if (flag("fan_in_fan_out")) throw Error(cfg_path + ": fan_in_fan_out adapters (GPT-2 Conv1D) are not supported");
    if (flag("use_dora")) throw Error(cfg_path + ": DoRA adapters are not supported");
    const bool rslora = flag("use_rslora");
    if (c.contains("layers_to_transform") && !c["layers_to_transform"].is_null())
        throw Error(cfg_path + ": layers_to_transform is not supported");
    const int64_t r0 = c["r"].get<int64_t>();
    const double alpha0 = c["lora_alpha"].get<double>();
    const nlohmann::ordered_json empty = nlohmann::ordered_json::object();
    auto patterns = [&](const char* k) -> const nlohmann::ordered_json& {
        if (!c.contains(k) || c[k].is_null()) return empty;
        if (!c[k].is_object()) throw Error(cfg_path + ": \"" + k + "\" must be an object");
        for (const auto& [key, v] : c[k].items())
            if (!v.is_number()) throw Error(cfg_path + ": " + k + " entry '" + key + "' is not a number");
        return c[k];
    };
    const auto& rank_pattern = patterns("rank_pattern");
    const auto& alpha_pattern = patterns("alpha_pattern");

    const SafetensorsFile file(st_path);
    std::set<std::string> modules;
    for (const auto& n : file.names()) {
        auto ends = [&](const std::string& suf) {
            return n.size() > suf.size() && n.compare(n.size() - suf.size(), suf.size(), suf) == 0;
        };
        std::string module;
        if (ends(".lora_A.weight"))
            module = n.substr(0, n.size() - 14);
        else if (ends(".lora_B.weight"))
            module = n.substr(0, n.size() - 14);
        else
            throw Error(st_path + ": unexpected tensor '" + n + "' (only lora_A/lora_B weights are supported)");
        if (module.rfind(kPrefix, 0) != 0)
            throw Error(st_path + ": tensor '" + n + "' does not start with '" + kPrefix + "'");
        modules.insert(module.substr(std::string(kPrefix).size()));
    }
    if (modules.empty()) throw Error(st_path + ": holds no LoRA tensors");
    for (const auto& module : modules) {
        const std::string na = peft_tensor_name(module, 'A'), nb = peft_tensor_name(module, 'B');
        if (!file.contains(na) || !file.contains(nb))
            throw Error(st_path + ": module '" + module + "' has only one of lora_A / lora_B");
        PeftAdapter::Module m;
        m.A = file.load_float(na);
        m.B = file.load_float(nb);
        if (m.A.dim() != 2 || m.B.dim() != 2 || m.A.size(0) != m.B.size(1))
            throw Error(st_path + ": module '" + module + "': lora_A " + std::to_string(m.A.dim()) + "-D / lora_B " +
                        "shapes do not form [r, in] and [out, r]");
        if (!torch::isfinite(m.A).all().item<bool>() || !torch::isfinite(m.B).all().item<bool>())
            throw Error(st_path + ": module '" + module + "' contains NaN or Inf values");
        m.rank = r0;
        if (const auto* k = match_pattern(rank_pattern, module, cfg_path)) m.rank = rank_pattern[*k].get<int64_t>();
        m.lora_alpha = alpha0;
        if (const auto* k = match_pattern(alpha_pattern, module, cfg_path))
            m.lora_alpha = alpha_pattern[*k].get<double>();
        if (m.A.size(0) != m.rank)
            throw Error(st_path + ": module '" + module + "' has rank " + std::to_string(m.A.size(0)) +
                        " but adapter_config.json gives it r = " + std::to_string(m.rank));
        m.scaling = m.lora_alpha / (rslora ? std::sqrt(static_cast<double>(m.rank)) : static_cast<double>(m.rank));
        a.modules.emplace(module, std::move(m));
    }
    return a;
}

AdapterMergedWeights::AdapterMergedWeights(std::shared_ptr<const WeightSource> base,
                                           std::shared_ptr<const PeftAdapter> adapter)
    : base_(std::move(base)), adapter_(std::move(adapter)) {
    for (const auto& [module, m] : adapter_->modules) {
        const std::string w = module + ".weight";
        if (!base_->contains(w))
            throw Error(adapter_->dir + ": adapter module '" + module + "' does not exist in " + base_->describe());
        const auto shape = base_->shape(w);
        if (shape.size() != 2 || shape[0] != m.B.size(0) || shape[1] != m.A.size(1))
            throw Error(adapter_->dir + ": adapter module '" + module + "' is [" + std::to_string(m.B.size(0)) + ", " +
                        std::to_string(m.A.size(1)) + "] but the model's weight has another shape");
    }
}

torch::Tensor AdapterMergedWeights::load(const std::string& name) const {
    auto W = base_->load(name);
    const std::string suffix = ".weight";
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
        const auto d = adapter_->delta(name.substr(0, name.size() - suffix.size()));
        if (d.defined()) W = merge_lora(W, d);
    }
    return W;
}

std::string AdapterMergedWeights::describe() const {
    return base_->describe() + " + LoRA adapter " + adapter_->dir + " (" + std::to_string(adapter_->modules.size()) +
           " modules)";
}

}  // namespace cloq
