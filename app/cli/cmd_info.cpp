// `cloq info --model DIR`: architecture, shapes, dtype, parameter count, tokenizer.
#include <nlohmann/json.hpp>
#include <ostream>

#include "cli.h"
#include "cloq/model/model_files.h"
#include "cloq/model/model_layout.h"
#include "commands.h"
#include "model_cli.h"

namespace cloq::cli {

int cmd_info(const Args& args, std::ostream& out, std::ostream& err) {
    std::string model;
    bool json = false, verify = false;
    ArgParser p("info", "--model DIR [--json] [--verify]",
                "Shows a model's architecture, shapes, dtype, parameter count and tokenizer, after checking that "
                "every tensor the architecture needs is present with the right shape.");
    p.option("model", &model, "DIR", "HF model folder (config.json + safetensors) or .gguf file", true);
    p.flag("json", &json, "print one JSON object instead of text");
    p.flag("verify", &verify, "also read every tensor and check it is finite (no NaN/Inf): a corrupt-download check");
    if (!p.parse(args, out)) return 0;

    const ModelFiles m = open_model(model);
    if (verify)
        for (const auto& name : m.weights->names())
            (void)m.weights->load(name);  // throws, naming the file and tensor, on NaN/Inf
    const auto& c = m.config;
    const auto layers = linear_layers(c);
    nlohmann::json j = {
        {"path", m.path},
        {"format", m.format},
        {"architecture", c.architecture},
        {"model_type", c.model_type},
        {"layers", c.num_layers},
        {"hidden_size", c.hidden_size},
        {"intermediate_size", c.intermediate_size},
        {"heads", c.num_heads},
        {"kv_heads", c.num_kv_heads},
        {"head_dim", c.head_dim},
        {"vocab_size", c.vocab_size},
        {"context", c.max_position_embeddings},
        {"rms_norm_eps", c.rms_norm_eps},
        {"rope_theta", c.rope_theta},
        {"rope_scaling", c.rope_scaling_type.empty() ? "none" : c.rope_scaling_type},
        {"tied_embeddings", c.tie_word_embeddings},
        {"attention_bias", c.attention_bias},
        {"parameters", c.num_parameters()},
        {"weights", m.weights->describe()},
        {"linear_layers", layers.size()},
        {"tokenizer", m.tokenizer ? m.tokenizer->kind() : "none"},
    };
    if (verify) j["verified_finite"] = true;
    if (json) {
        out << j.dump() << "\n";
        return 0;
    }
    out << m.path << " (" << m.format << ")\n"
        << "  architecture   " << c.architecture << (c.num_kv_heads != c.num_heads ? " (grouped-query attention)" : "")
        << "\n"
        << "  layers         " << c.num_layers << " decoder blocks, hidden " << c.hidden_size << ", MLP "
        << c.intermediate_size << "\n"
        << "  attention      " << c.num_heads << " heads, " << c.num_kv_heads << " KV heads, head_dim " << c.head_dim
        << ", RoPE theta " << c.rope_theta
        << (c.rope_scaling_type.empty() ? "" : " (" + c.rope_scaling_type + " scaling)") << "\n"
        << "  vocabulary     " << c.vocab_size << (c.tie_word_embeddings ? " (head tied to the embeddings)" : "")
        << "\n"
        << "  context        " << c.max_position_embeddings << " tokens, RMSNorm eps " << c.rms_norm_eps << "\n"
        << "  parameters     " << c.num_parameters() << "\n"
        << "  weights        " << m.weights->describe() << "\n"
        << "  tokenizer      " << (m.tokenizer ? m.tokenizer->kind() : "none (text commands need one)") << "\n"
        << "  linear layers  " << layers.size() << " (" << c.num_layers << " x q/k/v/o/gate/up/down):\n";
    for (const auto& l : block_linear_layers(c, 0))
        out << "    " << l.short_name() << std::string(10 - std::min<size_t>(9, l.short_name().size()), ' ') << "["
            << l.out << ", " << l.in << "]  input group " << to_string(l.group) << "\n";
    return 0;
}

}  // namespace cloq::cli
