#include "cloq/model/model_layout.h"

#include "cloq/base/error.h"

namespace cloq {

std::string to_string(InputGroup g) {
    switch (g) {
    case InputGroup::AttnIn:
        return "attn_in";
    case InputGroup::OProj:
        return "o_proj";
    case InputGroup::MlpIn:
        return "mlp_in";
    case InputGroup::DownProj:
        return "down_proj";
    }
    return "?";
}

std::string LinearLayer::short_name() const {
    const auto dot = module.rfind('.');
    return dot == std::string::npos ? module : module.substr(dot + 1);
}

std::vector<LinearLayer> block_linear_layers(const ModelConfig& c, int layer) {
    const int64_t H = c.hidden_size, I = c.intermediate_size;
    return {{layer, "self_attn.q_proj", InputGroup::AttnIn, H, c.q_out()},
            {layer, "self_attn.k_proj", InputGroup::AttnIn, H, c.kv_out()},
            {layer, "self_attn.v_proj", InputGroup::AttnIn, H, c.kv_out()},
            {layer, "self_attn.o_proj", InputGroup::OProj, c.q_out(), H},
            {layer, "mlp.gate_proj", InputGroup::MlpIn, H, I},
            {layer, "mlp.up_proj", InputGroup::MlpIn, H, I},
            {layer, "mlp.down_proj", InputGroup::DownProj, I, H}};
}

std::vector<LinearLayer> linear_layers(const ModelConfig& c) {
    std::vector<LinearLayer> out;
    for (int l = 0; l < c.num_layers; ++l)
        for (auto& x : block_linear_layers(c, l)) out.push_back(std::move(x));
    return out;
}

std::vector<std::pair<std::string, std::vector<int64_t>>> expected_tensors(const ModelConfig& c) {
    std::vector<std::pair<std::string, std::vector<int64_t>>> t;
    const int64_t H = c.hidden_size;
    t.push_back({"model.embed_tokens.weight", {c.vocab_size, H}});
    for (int l = 0; l < c.num_layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        t.push_back({p + "input_layernorm.weight", {H}});
        t.push_back({p + "post_attention_layernorm.weight", {H}});
        for (const auto& lin : block_linear_layers(c, l)) {
            t.push_back({lin.weight_name(), {lin.out, lin.in}});
            if (c.attention_bias && lin.group == InputGroup::AttnIn) t.push_back({lin.name() + ".bias", {lin.out}});
        }
    }
    t.push_back({"model.norm.weight", {H}});
    if (!c.tie_word_embeddings) t.push_back({"lm_head.weight", {c.vocab_size, H}});
    return t;
}

namespace {
std::string shape_str(const std::vector<int64_t>& s) {
    std::string r = "[";
    for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
    return r + "]";
}
}  // namespace

void check_weights(const ModelConfig& c, const WeightSource& w, const std::string& where) {
    for (const auto& [name, shape] : expected_tensors(c)) {
        if (!w.contains(name)) {
            std::string hint;
            const auto dot = name.rfind(".weight");
            if (dot != std::string::npos && w.contains(name.substr(0, dot) + ".qweight"))
                hint = " (this is a GPTQ-quantized checkpoint; open the float model, or dequantize it first)";
            else if (name == "lm_head.weight")
                hint = " (config.json says tie_word_embeddings is false)";
            throw Error(where + ": tensor '" + name + "' is missing" + hint);
        }
        const auto got = w.shape(name);
        if (got != shape)
            throw Error(where + ": tensor '" + name + "' has shape " + shape_str(got) + " but the config implies " +
                        shape_str(shape));
    }
}

}  // namespace cloq
