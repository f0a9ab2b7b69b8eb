// The architecture description of a Llama-family model, whatever file it came from (HF config.json or GGUF
// metadata). Everything downstream (forward pass, calibration, exporters) reads only this.
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace cloq {

struct ModelConfig {
    std::string architecture = "LlamaForCausalLM";  // HF class name; Mistral/Qwen2 map onto the same fields
    std::string model_type = "llama";
    int64_t hidden_size = 0;
    int64_t intermediate_size = 0;
    int64_t num_layers = 0;
    int64_t num_heads = 0;
    int64_t num_kv_heads = 0;
    int64_t head_dim = 0;  // hidden_size / num_heads unless the file says otherwise
    int64_t vocab_size = 0;
    int64_t max_position_embeddings = 2048;
    double rms_norm_eps = 1e-6;
    double rope_theta = 10000.0;
    bool tie_word_embeddings = false;
    bool attention_bias = false;  // q/k/v bias (Qwen2)
    int64_t bos_token_id = 1;     // -1 when the config has none
    int64_t eos_token_id = 2;
    // RoPE frequency scaling (config.json "rope_scaling"): "" = none, "linear", or "llama3" (Llama 3.1+).
    std::string rope_scaling_type;
    double rope_scaling_factor = 1.0;
    double rope_low_freq_factor = 1.0;
    double rope_high_freq_factor = 4.0;
    int64_t rope_original_max_position = 8192;
    int64_t sliding_window = 0;  // Mistral: attend to at most this many previous tokens; 0 = unlimited
    std::string torch_dtype;     // as the file says ("float32", "bfloat16", ...); informational

    // Throws cloq::Error naming `where` (the file) for zero/negative sizes, heads not dividing hidden size,
    // kv heads not dividing heads, and so on.
    void validate(const std::string& where) const;
    int64_t num_parameters() const;

    int64_t q_out() const { return num_heads * head_dim; }
    int64_t kv_out() const { return num_kv_heads * head_dim; }
};

// The RoPE inverse frequencies [head_dim / 2] (float64), with the configured scaling applied.
std::vector<double> rope_inv_freq(const ModelConfig& c);

// Parses an HF config.json object; unknown architectures get an error naming the supported ones.
ModelConfig model_config_from_hf_json(const nlohmann::json& j, const std::string& where);
// The HF config.json an exported model carries (exporters add quantization_config on top).
nlohmann::json model_config_to_hf_json(const ModelConfig& c);

}  // namespace cloq
