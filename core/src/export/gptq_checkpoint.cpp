#include "cloq/export/gptq_checkpoint.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <tuple>

#include "base/regex.h"
#include "cloq/base/atomic_file.h"
#include "cloq/base/error.h"
#include "tokenize/tokenizer_spm.h"

namespace fs = std::filesystem;

namespace cloq {

namespace {
const char* kPacked[] = {".qweight", ".qzeros", ".scales", ".g_idx"};

std::string alternation(const std::vector<std::string>& modules) {
    std::string re = "^(?:";
    for (size_t i = 0; i < modules.size(); ++i) re += (i ? "|" : "") + regex_escape(modules[i]);
    return re + ")$";
}

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

// "model.layers.3.self_attn.q_proj" -> "self_attn.q_proj" (the name inside its decoder block); "" outside blocks.
static std::string block_suffix(const std::string& module) {
    const std::string prefix = "model.layers.";
    if (module.rfind(prefix, 0) != 0) return {};
    const size_t dot = module.find('.', prefix.size());
    return dot == std::string::npos ? std::string() : module.substr(dot + 1);
}

nlohmann::ordered_json read_json_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("cannot open " + path + ": no such file or not readable");
    std::stringstream ss;
    ss << in.rdbuf();
    nlohmann::ordered_json j;
    try {
        j = nlohmann::ordered_json::parse(ss.str());
    } catch (const nlohmann::json::exception& e) {
        throw Error(path + ": not valid JSON (" + std::string(e.what()) + ")");
    }
    if (!j.is_object()) throw Error(path + ": expected a JSON object");
    return j;
}

void write_json_file_atomic(const std::string& path, const nlohmann::ordered_json& j) {
    write_file_atomic(path, j.dump(2) + "\n");
}

nlohmann::ordered_json gptq_quantization_config(const GptqExportConfig& g, const std::vector<GptqModuleInfo>& modules,
                                                std::vector<std::string>* notices) {
    nlohmann::ordered_json q;
    q["bits"] = g.bits;
    q["group_size"] = g.group_size;
    q["damp_percent"] = g.damp_percent;
    q["desc_act"] = g.desc_act;
    q["static_groups"] = g.static_groups;
    q["sym"] = g.sym;
    q["true_sequential"] = g.true_sequential;
    q["quant_method"] = "gptq";
    // GPTQModel reads `format` (and takes it over `checkpoint_format`); transformers, vLLM and SGLang read
    // `checkpoint_format`. Both name the same thing, as GPTQModel's own configs do.
    q["format"] = to_string(g.format);
    q["checkpoint_format"] = to_string(g.format);
    q["model_file_base_name"] = "model";
    // Who made the file and how, where GPTQModel looks for it (its meta_field_map fills damp_percent and
    // true_sequential from here). The quantizer entry names this tool, never another one.
    q["meta"] = {{"quantizer", nlohmann::ordered_json::array({std::string("cloq:") + CLOQ_VERSION})},
                 {"damp_percent", g.damp_percent},
                 {"static_groups", g.static_groups},
                 {"true_sequential", g.true_sequential}};
    // transformers + optimum ignore `dynamic`: they replace every Linear of a block by a quantized module
    // unless `modules_in_block_to_quantize` lists which ones (by suffix). Listing exactly the suffixes that are
    // quantized in every block keeps float modules float there; a suffix quantized in some blocks and float in
    // others cannot be said to those loaders (GPTQModel and vLLM read `dynamic` and load it).
    {
        std::vector<std::string> order;
        std::map<std::string, std::pair<int, int>> counts;  // suffix -> (quantized, float)
        for (const auto& m : modules) {
            const std::string suffix = block_suffix(m.module);
            if (suffix.empty()) continue;
            if (!counts.count(suffix)) order.push_back(suffix);
            (m.quantized ? counts[suffix].first : counts[suffix].second)++;
        }
        nlohmann::ordered_json inner = nlohmann::ordered_json::array();
        for (const std::string& suffix : order) {
            const auto [nq, nf] = counts[suffix];
            if (nq > 0 && nf == 0) inner.push_back(suffix);
            if (nq > 0 && nf > 0 && notices)
                notices->push_back(suffix + ": quantized in " + std::to_string(nq) + " blocks and float in " +
                                   std::to_string(nf) +
                                   "; transformers + optimum cannot load such a base (they read only "
                                   "modules_in_block_to_quantize); GPTQModel and vLLM can (dynamic)");
        }
        q["modules_in_block_to_quantize"] = nlohmann::ordered_json::array({inner});
    }
    // Group modules by how they differ from the global setting, in first-seen order (stable output).
    using Key = std::tuple<int, int, bool, bool>;
    std::vector<std::pair<Key, std::vector<std::string>>> groups;
    std::vector<std::string> skipped;
    for (const auto& m : modules) {
        if (!m.quantized) {
            skipped.push_back(m.module);
            continue;
        }
        const Key key{m.bits, m.group_size, m.sym, m.desc_act};
        if (key == Key{g.bits, g.group_size, g.sym, g.desc_act}) continue;
        auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& e) { return e.first == key; });
        if (it == groups.end())
            groups.push_back({key, {m.module}});
        else
            it->second.push_back(m.module);
    }
    if (!groups.empty() || !skipped.empty()) {
        nlohmann::ordered_json dyn = nlohmann::ordered_json::object();
        if (!skipped.empty()) dyn["-:" + alternation(skipped)] = nlohmann::ordered_json::object();
        for (const auto& [key, names] : groups) {
            nlohmann::ordered_json o = {{"bits", std::get<0>(key)}, {"group_size", std::get<1>(key)}};
            if (std::get<2>(key) != g.sym) o["sym"] = std::get<2>(key);
            if (std::get<3>(key) != g.desc_act) o["desc_act"] = std::get<3>(key);
            dyn["+:" + alternation(names)] = o;
        }
        q["dynamic"] = dyn;
    }
    return q;
}

nlohmann::ordered_json gptq_model_config(const nlohmann::ordered_json& source_config,
                                         const nlohmann::ordered_json& quantization_config) {
    auto c = source_config;
    c["torch_dtype"] = "float16";
    c["quantization_config"] = quantization_config;
    return c;
}

std::vector<SafetensorsEntry> gptq_entries(const std::string& module, const GptqTensors& t) {
    std::vector<SafetensorsEntry> out;
    for (const auto& [suffix, tensor] : {std::pair<const char*, torch::Tensor>{".qweight", t.qweight},
                                         {".qzeros", t.qzeros},
                                         {".scales", t.scales},
                                         {".g_idx", t.g_idx}}) {
        // init-capture: clang (the fuzz build) cannot capture a structured binding directly before C++20
        out.push_back(
            {module + suffix, tensor.scalar_type(), tensor.sizes().vec(), [value = tensor] { return value; }});
    }
    return out;
}

void write_gptq_checkpoint(const std::string& dir, const nlohmann::ordered_json& source_config,
                           const nlohmann::ordered_json& quantization_config,
                           const std::vector<SafetensorsEntry>& tensors, const Progress& progress) {
    write_safetensors_streamed((fs::path(dir) / "model.safetensors").string(), tensors, {{"format", "pt"}}, progress);
    write_json_file_atomic((fs::path(dir) / "quantize_config.json").string(), quantization_config);
    write_json_file_atomic((fs::path(dir) / "config.json").string(),
                           gptq_model_config(source_config, quantization_config));
}

std::vector<std::string> copy_tokenizer_files(const std::string& src_dir, const std::string& dst_dir) {
    static const char* kFiles[] = {"tokenizer.model",         "tokenizer.json",    "tokenizer_config.json",
                                   "special_tokens_map.json", "added_tokens.json", "generation_config.json"};
    std::vector<std::string> copied;
    std::string spm_bytes;
    if (!fs::is_directory(src_dir)) return copied;
    for (const char* f : kFiles) {
        const fs::path src = fs::path(src_dir) / f;
        if (!fs::is_regular_file(src)) continue;
        std::ifstream in(src, std::ios::binary);
        if (!in) throw Error("cannot read " + src.string());
        std::stringstream ss;
        ss << in.rdbuf();
        write_file_atomic((fs::path(dst_dir) / f).string(), ss.str());
        copied.push_back(f);
        if (std::string(f) == "tokenizer.model") spm_bytes = ss.str();  // parsed below if it is the only tokenizer
    }
    // A folder with only a SentencePiece model (stories260K, older Llama checkpoints): transformers 5 turns a bare
    // tokenizer.model into a generic tokenizer without Llama's dummy-prefix space, and its ids differ from
    // SentencePiece's from the first word. A tokenizer_config.json naming LlamaTokenizer (legacy behaviour, what the
    // .model encodes) and its special pieces makes AutoTokenizer give SentencePiece's ids.
    const auto has = [&](const char* f) { return std::find(copied.begin(), copied.end(), f) != copied.end(); };
    if (has("tokenizer.model") && !has("tokenizer.json") && !has("tokenizer_config.json")) {
        const SpmModelSpec spec =
            parse_sentencepiece_model(spm_bytes, (fs::path(src_dir) / "tokenizer.model").string());
        const auto piece = [&](int32_t id) {
            return id >= 0 && id < static_cast<int32_t>(spec.pieces.size()) ? spec.pieces[id] : std::string();
        };
        nlohmann::ordered_json cfg;
        cfg["tokenizer_class"] = "LlamaTokenizer";
        cfg["legacy"] = true;
        cfg["add_bos_token"] = spec.bos_id >= 0;
        cfg["add_eos_token"] = false;
        if (!piece(spec.bos_id).empty()) cfg["bos_token"] = piece(spec.bos_id);
        if (!piece(spec.eos_id).empty()) cfg["eos_token"] = piece(spec.eos_id);
        for (size_t i = 0; i < spec.types.size(); ++i)
            if (spec.types[i] == SpmPieceType::Unknown) cfg["unk_token"] = spec.pieces[i];
        cfg["clean_up_tokenization_spaces"] = false;
        write_json_file_atomic((fs::path(dst_dir) / "tokenizer_config.json").string(), cfg);
        copied.push_back("tokenizer_config.json");
    }
    return copied;
}

bool gptq_dynamic_lookup(const nlohmann::ordered_json& dynamic, const std::string& module, int& bits, int& group_size,
                         const std::string& where) {
    if (dynamic.is_null()) return true;
    if (!dynamic.is_object()) throw Error(where + ": \"dynamic\" must be an object");
    for (auto it = dynamic.begin(); it != dynamic.end(); ++it) {
        std::string pattern = it.key();
        const bool negative = pattern.rfind("-:", 0) == 0;
        if (negative || pattern.rfind("+:", 0) == 0) pattern = pattern.substr(2);
        const bool match =
            std::regex_search(module, compile_untrusted_regex(pattern, where + ": dynamic key '" + it.key() + "'"),
                              std::regex_constants::match_continuous);
        if (!match) continue;
        if (negative) return false;
        const auto& o = it.value();
        if (!o.is_object()) throw Error(where + ": dynamic entry '" + it.key() + "' must be an object");
        if (o.contains("bits")) {
            if (!o["bits"].is_number_integer())
                throw Error(where + ": dynamic '" + it.key() + "' bits is not an integer");
            bits = o["bits"].get<int>();
        }
        if (o.contains("group_size")) {
            if (!o["group_size"].is_number_integer())
                throw Error(where + ": dynamic '" + it.key() + "' group_size is not an integer");
            group_size = o["group_size"].get<int>();
        }
        return true;
    }
    return true;
}

// ---- reader -----------------------------------------------------------------------------------------------------

GptqCheckpointWeights::GptqCheckpointWeights(const std::string& dir) : dir_(dir) {
    if (!fs::is_directory(dir)) throw Error("GPTQ checkpoint folder " + dir + " does not exist");
    const std::string cfg_path = (fs::path(dir) / "config.json").string();
    const std::string qc_path = (fs::path(dir) / "quantize_config.json").string();
    std::string where;
    if (fs::exists(cfg_path)) {
        const auto cfg = read_json_file(cfg_path);
        if (cfg.contains("quantization_config")) {
            qcfg_ = cfg["quantization_config"];
            where = cfg_path + " quantization_config";
        }
    }
    if (qcfg_.is_null()) {
        if (!fs::exists(qc_path))
            throw Error(dir +
                        ": neither config.json quantization_config nor quantize_config.json (not a GPTQ checkpoint?)");
        qcfg_ = read_json_file(qc_path);
        where = qc_path;
    }
    if (!qcfg_.is_object()) throw Error(where + ": must be a JSON object");
    if (qcfg_.contains("quant_method") && qcfg_["quant_method"] != "gptq")
        throw Error(where + ": quant_method is " + qcfg_["quant_method"].dump() + ", only gptq is supported");
    auto get_int = [&](const char* k) {
        if (!qcfg_.contains(k) || !qcfg_[k].is_number_integer())
            throw Error(where + ": \"" + std::string(k) + "\" is missing or not an integer");
        return qcfg_[k].get<int>();
    };
    const int bits0 = get_int("bits");
    const int group0 = get_int("group_size");
    sym_ = qcfg_.contains("sym") && qcfg_["sym"].is_boolean() && qcfg_["sym"].get<bool>();
    // GPTQModel reads `format` first, transformers `checkpoint_format`: one of them, or both agreeing.
    std::string fmt = "gptq";
    std::string seen_key;
    for (const char* k : {"checkpoint_format", "format"}) {
        if (!qcfg_.contains(k)) continue;
        if (!qcfg_[k].is_string()) throw Error(where + ": " + k + " is not a string");
        const std::string v = qcfg_[k].get<std::string>();
        if (!seen_key.empty() && v != fmt)
            throw Error(where + ": format \"" + v + "\" and checkpoint_format \"" + fmt +
                        "\" disagree, so GPTQModel and transformers would read the zero points differently");
        fmt = v;
        seen_key = k;
    }
    try {
        format_ = parse_gptq_format(fmt);
    } catch (const Error& e) {
        throw Error(where + ": " + e.what());
    }
    const nlohmann::ordered_json dynamic = qcfg_.contains("dynamic") ? qcfg_["dynamic"] : nlohmann::ordered_json();

    st_ = std::make_shared<SafetensorsWeights>(dir);
    for (const auto& n : st_->names()) {
        if (!ends_with(n, ".qweight")) continue;
        const std::string module = n.substr(0, n.size() - 8);
        const std::string mwhere = st_->file_of(n).path() + ": " + module;
        for (const char* suffix : kPacked)
            if (!st_->contains(module + suffix)) throw Error(mwhere + " has no " + std::string(suffix + 1) + " tensor");
        int bits = bits0, group = group0;
        if (!gptq_dynamic_lookup(dynamic, module, bits, group, where))
            throw Error(mwhere + " is packed but the config's dynamic map excludes it from quantization");
        const auto qs = st_->shape(module + ".qweight");
        const auto gs = st_->shape(module + ".g_idx");
        const auto ss = st_->shape(module + ".scales");
        if (qs.size() != 2 || gs.size() != 1 || ss.size() != 2)
            throw Error(mwhere + ": qweight/scales must be 2-D and g_idx 1-D");
        Module m;
        m.in = gs[0];
        m.out = ss[1];
        m.bits = bits;
        m.group_size = group;
        if (m.in <= 0 || m.in % 32 != 0 || qs[0] * 32 != m.in * bits)
            throw Error(mwhere + ": qweight has " + std::to_string(qs[0]) + " rows for " + std::to_string(m.in) +
                        " inputs, which is not " + std::to_string(bits) + "-bit packing (config says " +
                        std::to_string(bits) + " bits)");
        if (st_->contains(module + ".weight")) throw Error(mwhere + " has both packed tensors and a float weight");
        modules_.emplace(module, m);
    }
}

std::vector<std::string> GptqCheckpointWeights::names() const {
    std::vector<std::string> out;
    for (const auto& n : st_->names()) {
        bool packed = false;
        for (const char* suffix : kPacked) {
            if (!ends_with(n, suffix)) continue;
            const std::string module = n.substr(0, n.size() - std::string(suffix).size());
            if (modules_.count(module)) {
                packed = true;
                if (std::string(suffix) == ".qweight") out.push_back(module + ".weight");
            }
        }
        if (!packed) out.push_back(n);
    }
    return out;
}

bool GptqCheckpointWeights::contains(const std::string& name) const {
    if (ends_with(name, ".weight") && modules_.count(name.substr(0, name.size() - 7))) return true;
    return st_->contains(name);
}

std::vector<int64_t> GptqCheckpointWeights::shape(const std::string& name) const {
    if (ends_with(name, ".weight")) {
        auto it = modules_.find(name.substr(0, name.size() - 7));
        if (it != modules_.end()) return {it->second.out, it->second.in};
    }
    return st_->shape(name);
}

std::string GptqCheckpointWeights::dtype(const std::string& name) const {
    if (ends_with(name, ".weight")) {
        auto it = modules_.find(name.substr(0, name.size() - 7));
        if (it != modules_.end()) return "GPTQ" + std::to_string(it->second.bits);
    }
    return st_->dtype(name);
}

QuantizedWeight GptqCheckpointWeights::unpack(const std::string& module) const {
    auto it = modules_.find(module);
    if (it == modules_.end()) throw Error(dir_ + ": no quantized module '" + module + "'");
    GptqTensors t;
    t.qweight = st_->tensor(module + ".qweight");
    t.qzeros = st_->tensor(module + ".qzeros");
    t.scales = st_->tensor(module + ".scales");
    t.g_idx = st_->tensor(module + ".g_idx");
    return unpack_gptq(t, it->second.bits, it->second.group_size, sym_, format_,
                       st_->file_of(module + ".qweight").path() + ": " + module);
}

torch::Tensor GptqCheckpointWeights::load(const std::string& name) const {
    if (ends_with(name, ".weight")) {
        const std::string module = name.substr(0, name.size() - 7);
        if (modules_.count(module)) {
            auto Q = unpack(module).Q.contiguous();
            if (!torch::isfinite(Q).all().item<bool>())
                throw Error(st_->file_of(module + ".scales").path() + ": " + module + " has NaN or Inf scales");
            return Q;
        }
    }
    return st_->load(name);
}

std::string GptqCheckpointWeights::describe() const {
    return "GPTQ checkpoint " + dir_ + " (" + std::to_string(modules_.size()) + " quantized modules, " +
           to_string(format_) + ")";
}

}  // namespace cloq
