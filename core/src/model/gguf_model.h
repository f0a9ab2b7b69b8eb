// A GGUF file seen as a Llama-family model: the architecture metadata mapped onto ModelConfig, and the tensors
// mapped onto Hugging Face names and layout, so the forward pass, calibration and exporters are the same code as
// for an HF folder. The float reference for quantization is the dequantized GGUF weight.
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "cloq/io/weight_source.h"
#include "cloq/model/model_config.h"
#include "cloq/model/model_files.h"
#include "io/gguf.h"

namespace cloq {

// ModelConfig from `general.architecture` (llama, qwen2) and its `<arch>.*` keys: block_count, embedding_length,
// feed_forward_length, attention.head_count(_kv), attention.key_length, rope.freq_base,
// attention.layer_norm_rms_epsilon, context_length; vocab size from token_embd.weight; tied embeddings when there
// is no output.weight; BOS/EOS from tokenizer.ggml.*. Throws cloq::Error naming the file and the key.
ModelConfig model_config_from_gguf(const GgufFile& f);

// "blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight", "token_embd.weight" ->
// "model.embed_tokens.weight", ...; empty for a tensor with no HF counterpart (e.g. rope_freqs.weight).
std::string hf_name_from_gguf(const std::string& gguf_name);

// Inverse of llama.cpp's convert_hf_to_gguf.py `permute` for q/k rows (HF rotate_half RoPE layout -> interleaved
// pairs): rows h*hd + 2i + j of `w` (GGUF) become rows h*hd + j*hd/2 + i (HF). `w` is [n_head*hd, ...] or 1-D.
torch::Tensor unpermute_rope_rows(const torch::Tensor& w, int64_t n_head);

// Tensors by HF name, dequantized to float32 on load, q/k rows unpermuted for the llama architecture.
class GgufWeightSource : public WeightSource {
public:
    GgufWeightSource(std::shared_ptr<const GgufFile> file, const ModelConfig& config);

    std::vector<std::string> names() const override;
    bool contains(const std::string& name) const override;
    std::vector<int64_t> shape(const std::string& name) const override;
    std::string dtype(const std::string& name) const override;
    torch::Tensor load(const std::string& name) const override;
    std::string describe() const override;

    const GgufFile& file() const { return *file_; }
    // The GGUF name behind an HF name (for messages and `cloq info`).
    std::string gguf_name(const std::string& hf_name) const;

private:
    std::shared_ptr<const GgufFile> file_;
    ModelConfig config_;
    bool unpermute_qk_ = false;
    std::vector<std::string> names_;                                // HF names in file order
    std::unordered_map<std::string, const GgufTensorInfo*> by_hf_;  // HF name -> tensor info
    std::vector<std::string> ignored_;                              // GGUF tensors with no HF counterpart

    const GgufTensorInfo& info(const std::string& hf_name) const;
};

// Checks that every tensor the config implies is present with the HF shape; cloq::Error naming the file, the
// tensor and both shapes otherwise.
void check_gguf_model_tensors(const GgufWeightSource& w, const ModelConfig& config);

// Opens a .gguf model (llama or qwen2 architecture): ModelConfig from the metadata, a WeightSource with HF tensor
// names (llama.cpp's Q/K RoPE row permutation undone), and the tokenizer the metadata describes.
ModelFiles open_gguf_model(const std::string& path);

}  // namespace cloq
