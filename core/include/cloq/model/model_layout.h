// The tensors a Llama-family model has, by HF name and shape, derived from its ModelConfig: which tensors must be
// present, which linear layers there are and which calibration input (H) each one reads.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cloq/io/weight_source.h"
#include "cloq/model/model_config.h"

namespace cloq {

// Linear layers that read the same input share one H = XᵀX: q/k/v read the attention input, gate/up the MLP input.
enum class InputGroup { AttnIn, OProj, MlpIn, DownProj };
inline constexpr InputGroup kInputGroups[] = {InputGroup::AttnIn, InputGroup::OProj, InputGroup::MlpIn,
                                              InputGroup::DownProj};
std::string to_string(InputGroup g);  // "attn_in", "o_proj", "mlp_in", "down_proj"

struct LinearLayer {
    int layer = 0;
    std::string module;  // "self_attn.q_proj", ..., "mlp.down_proj"
    InputGroup group = InputGroup::AttnIn;
    int64_t in = 0, out = 0;

    std::string name() const { return "model.layers." + std::to_string(layer) + "." + module; }
    std::string weight_name() const { return name() + ".weight"; }
    std::string short_name() const;  // "q_proj", "down_proj"
};

// The seven linear layers of each decoder block, in model order (q, k, v, o, gate, up, down per block).
std::vector<LinearLayer> linear_layers(const ModelConfig& c);
std::vector<LinearLayer> block_linear_layers(const ModelConfig& c, int layer);

// Every tensor the forward pass reads, with its shape (lm_head only when the embeddings are untied).
std::vector<std::pair<std::string, std::vector<int64_t>>> expected_tensors(const ModelConfig& c);

// Throws cloq::Error naming `where` for the first missing tensor or shape mismatch (one line).
void check_weights(const ModelConfig& c, const WeightSource& w, const std::string& where);

}  // namespace cloq
