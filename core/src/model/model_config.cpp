#include "cloq/model/model_config.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "cloq/base/error.h"

namespace cloq {

namespace {
struct Family {
    const char* architecture;
    const char* model_type;
};
// The Llama-shaped families the forward pass implements (docs/design.md, File formats).
const Family kFamilies[] = {
    {"LlamaForCausalLM", "llama"}, {"MistralForCausalLM", "mistral"}, {"Qwen2ForCausalLM", "qwen2"}};

std::string supported_list() {
    std::string s;
    for (const auto& f : kFamilies) s += (s.empty() ? "" : ", ") + std::string(f.architecture);
    return s;
}

// Typed access to config.json fields: absent -> fallback (or an error when required), wrong type -> an error.
struct Fields {
    const nlohmann::json& j;
    const std::string& where;

    bool has(const char* key) const { return j.contains(key) && !j[key].is_null(); }
    int64_t integer(const char* key, std::optional<int64_t> fallback = std::nullopt) const {
        if (!has(key)) {
            if (fallback) return *fallback;
            throw Error(where + ": missing \"" + key + "\"");
        }
        const auto& v = j[key];
        if (!v.is_number_integer()) throw Error(where + ": \"" + key + "\" must be an integer, not " + v.dump());
        return v.get<int64_t>();
    }
    double number(const char* key, double fallback) const {
        if (!has(key)) return fallback;
        const auto& v = j[key];
        if (!v.is_number()) throw Error(where + ": \"" + key + "\" must be a number, not " + v.dump());
        return v.get<double>();
    }
    bool boolean(const char* key, bool fallback) const {
        if (!has(key)) return fallback;
        const auto& v = j[key];
        if (!v.is_boolean()) throw Error(where + ": \"" + key + "\" must be true or false, not " + v.dump());
        return v.get<bool>();
    }
    std::string string(const char* key, const std::string& fallback) const {
        if (!has(key)) return fallback;
        const auto& v = j[key];
        if (!v.is_string()) throw Error(where + ": \"" + key + "\" must be a string, not " + v.dump());
        return v.get<std::string>();
    }
    // bos/eos: an integer, a list (Llama 3 lists several EOS ids; the first is used) or null (-1).
    int64_t token_id(const char* key, int64_t fallback) const {
        if (!j.contains(key)) return fallback;
        const auto& v = j[key];
        if (v.is_null()) return -1;
        if (v.is_number_integer()) return v.get<int64_t>();
        if (v.is_array() && !v.empty() && v[0].is_number_integer()) return v[0].get<int64_t>();
        throw Error(where + ": \"" + key + "\" must be a token id, not " + v.dump());
    }
};
}  // namespace

void ModelConfig::validate(const std::string& where) const {
    // Upper bound: far above any real model (Llama 3 405B: hidden 16384, vocab 128256), low enough that products of
    // two sizes cannot overflow int64 and a lying config cannot ask for an absurd allocation.
    constexpr int64_t kMaxDim = int64_t(1) << 24;
    auto positive = [&](int64_t v, const char* name) {
        if (v <= 0) throw Error(where + ": " + name + " must be positive (is " + std::to_string(v) + ")");
        if (v > kMaxDim)
            throw Error(where + ": " + name + " = " + std::to_string(v) + " is implausibly large (limit " +
                        std::to_string(kMaxDim) + ")");
    };
    positive(hidden_size, "hidden_size");
    positive(intermediate_size, "intermediate_size");
    positive(num_layers, "num_hidden_layers");
    positive(num_heads, "num_attention_heads");
    positive(num_kv_heads, "num_key_value_heads");
    positive(head_dim, "head_dim");
    positive(vocab_size, "vocab_size");
    positive(max_position_embeddings, "max_position_embeddings");
    if (num_heads % num_kv_heads != 0)
        throw Error(where + ": num_attention_heads (" + std::to_string(num_heads) +
                    ") is not a multiple of num_key_value_heads (" + std::to_string(num_kv_heads) + ")");
    if (head_dim % 2 != 0) throw Error(where + ": head_dim " + std::to_string(head_dim) + " is odd; RoPE needs pairs");
    if (!(rms_norm_eps > 0) || !std::isfinite(rms_norm_eps)) throw Error(where + ": rms_norm_eps must be positive");
    if (!(rope_theta > 0) || !std::isfinite(rope_theta)) throw Error(where + ": rope_theta must be positive");
    if (!rope_scaling_type.empty() && rope_scaling_type != "linear" && rope_scaling_type != "llama3")
        throw Error(where + ": rope_scaling type '" + rope_scaling_type + "' is not supported (linear, llama3)");
    if (!rope_scaling_type.empty() && !(rope_scaling_factor > 0))
        throw Error(where + ": rope_scaling factor must be positive");
    if (rope_scaling_type == "llama3" && !(rope_high_freq_factor > rope_low_freq_factor))
        throw Error(where + ": rope_scaling high_freq_factor must exceed low_freq_factor");
    if (sliding_window < 0) throw Error(where + ": sliding_window must not be negative");
}

int64_t ModelConfig::num_parameters() const {
    const int64_t H = hidden_size, I = intermediate_size;
    int64_t per_layer = H * q_out() + 2 * H * kv_out() + q_out() * H  // q, k, v, o
                        + 3 * H * I                                   // gate, up, down
                        + 2 * H;                                      // the two norms
    if (attention_bias) per_layer += q_out() + 2 * kv_out();
    return vocab_size * H * (tie_word_embeddings ? 1 : 2) + num_layers * per_layer + H;
}

std::vector<double> rope_inv_freq(const ModelConfig& c) {
    const int64_t half = c.head_dim / 2;
    std::vector<double> f(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i)
        f[i] = 1.0 / std::pow(c.rope_theta, static_cast<double>(2 * i) / static_cast<double>(c.head_dim));
    if (c.rope_scaling_type == "linear") {
        for (auto& x : f) x /= c.rope_scaling_factor;
    } else if (c.rope_scaling_type == "llama3") {
        // transformers' _compute_llama3_parameters: long wavelengths slowed by `factor`, short ones kept,
        // the band between interpolated smoothly.
        const double old_ctx = static_cast<double>(c.rope_original_max_position);
        const double low_wavelen = old_ctx / c.rope_low_freq_factor, high_wavelen = old_ctx / c.rope_high_freq_factor;
        for (auto& x : f) {
            const double wavelen = 2 * M_PI / x;
            if (wavelen > low_wavelen) {
                x /= c.rope_scaling_factor;
            } else if (wavelen >= high_wavelen) {
                const double smooth =
                    (old_ctx / wavelen - c.rope_low_freq_factor) / (c.rope_high_freq_factor - c.rope_low_freq_factor);
                x = (1 - smooth) * x / c.rope_scaling_factor + smooth * x;
            }
        }
    }
    return f;
}

ModelConfig model_config_from_hf_json(const nlohmann::json& j, const std::string& where) {
    if (!j.is_object()) throw Error(where + ": not a JSON object");
    const Fields F{j, where};
    ModelConfig c;
    std::string arch;
    if (F.has("architectures")) {
        const auto& a = j["architectures"];
        if (!a.is_array() || a.empty() || !a[0].is_string())
            throw Error(where + ": \"architectures\" must be a list of class names");
        arch = a[0].get<std::string>();
    }
    const std::string model_type = F.string("model_type", "");
    const Family* family = nullptr;
    for (const auto& f : kFamilies)
        if ((!arch.empty() && arch == f.architecture) || (arch.empty() && model_type == f.model_type)) family = &f;
    if (!family) {
        const std::string what = !arch.empty()         ? "architecture '" + arch + "'"
                                 : !model_type.empty() ? "model_type '" + model_type + "'"
                                                       : "a model without \"architectures\"";
        throw Error(where + ": " + what + " is not supported (supported: " + supported_list() + ")");
    }
    c.architecture = family->architecture;
    c.model_type = family->model_type;
    c.hidden_size = F.integer("hidden_size");
    c.intermediate_size = F.integer("intermediate_size");
    c.num_layers = F.integer("num_hidden_layers");
    c.num_heads = F.integer("num_attention_heads");
    c.num_kv_heads = F.integer("num_key_value_heads", c.num_heads);
    if (c.num_heads <= 0) throw Error(where + ": num_attention_heads must be positive");
    if (!F.has("head_dim") && c.hidden_size % c.num_heads != 0)
        throw Error(where + ": hidden_size " + std::to_string(c.hidden_size) + " is not a multiple of " +
                    std::to_string(c.num_heads) + " heads");
    c.head_dim = F.integer("head_dim", c.hidden_size / c.num_heads);
    c.vocab_size = F.integer("vocab_size");
    c.max_position_embeddings = F.integer("max_position_embeddings", 2048);
    c.rms_norm_eps = F.number("rms_norm_eps", 1e-6);
    c.rope_theta = F.number("rope_theta", 10000.0);
    c.tie_word_embeddings = F.boolean("tie_word_embeddings", false);
    c.bos_token_id = F.token_id("bos_token_id", 1);
    c.eos_token_id = F.token_id("eos_token_id", 2);
    c.torch_dtype = F.string("torch_dtype", "");

    const std::string act = F.string("hidden_act", "silu");
    if (act != "silu") throw Error(where + ": hidden_act '" + act + "' is not supported (only silu / SwiGLU)");
    if (c.model_type == "qwen2") {
        c.attention_bias = true;  // Qwen2 always has q/k/v bias and no o_proj bias
        if (F.boolean("use_sliding_window", false))
            throw Error(where + ": Qwen2 with use_sliding_window is not supported");
    } else {
        if (F.boolean("attention_bias", false))
            throw Error(where + ": attention_bias (biases on q/k/v/o) is not supported for " + c.architecture);
    }
    if (F.boolean("mlp_bias", false)) throw Error(where + ": mlp_bias is not supported");
    if (c.model_type == "mistral") c.sliding_window = F.integer("sliding_window", 0);

    if (F.has("rope_scaling")) {
        const auto& rs = j["rope_scaling"];
        if (!rs.is_object()) throw Error(where + ": \"rope_scaling\" must be an object");
        const Fields R{rs, where};
        c.rope_scaling_type = R.string("rope_type", R.string("type", ""));
        if (c.rope_scaling_type == "default") c.rope_scaling_type.clear();
        c.rope_scaling_factor = R.number("factor", 1.0);
        c.rope_low_freq_factor = R.number("low_freq_factor", 1.0);
        c.rope_high_freq_factor = R.number("high_freq_factor", 4.0);
        c.rope_original_max_position = R.integer("original_max_position_embeddings", 8192);
    }
    c.validate(where);
    return c;
}

nlohmann::json model_config_to_hf_json(const ModelConfig& c) {
    nlohmann::json j = {{"architectures", {c.architecture}},
                        {"model_type", c.model_type},
                        {"hidden_size", c.hidden_size},
                        {"intermediate_size", c.intermediate_size},
                        {"num_hidden_layers", c.num_layers},
                        {"num_attention_heads", c.num_heads},
                        {"num_key_value_heads", c.num_kv_heads},
                        {"head_dim", c.head_dim},
                        {"vocab_size", c.vocab_size},
                        {"max_position_embeddings", c.max_position_embeddings},
                        {"rms_norm_eps", c.rms_norm_eps},
                        {"rope_theta", c.rope_theta},
                        {"hidden_act", "silu"},
                        {"tie_word_embeddings", c.tie_word_embeddings}};
    j["bos_token_id"] = c.bos_token_id >= 0 ? nlohmann::json(c.bos_token_id) : nlohmann::json(nullptr);
    j["eos_token_id"] = c.eos_token_id >= 0 ? nlohmann::json(c.eos_token_id) : nlohmann::json(nullptr);
    if (c.model_type != "qwen2") j["attention_bias"] = false;
    if (c.model_type == "mistral")
        j["sliding_window"] = c.sliding_window > 0 ? nlohmann::json(c.sliding_window) : nlohmann::json(nullptr);
    if (!c.torch_dtype.empty()) j["torch_dtype"] = c.torch_dtype;
    if (!c.rope_scaling_type.empty()) {
        nlohmann::json rs = {{"rope_type", c.rope_scaling_type}, {"factor", c.rope_scaling_factor}};
        if (c.rope_scaling_type == "llama3") {
            rs["low_freq_factor"] = c.rope_low_freq_factor;
            rs["high_freq_factor"] = c.rope_high_freq_factor;
            rs["original_max_position_embeddings"] = c.rope_original_max_position;
        }
        j["rope_scaling"] = rs;
    }
    return j;
}

}  // namespace cloq
