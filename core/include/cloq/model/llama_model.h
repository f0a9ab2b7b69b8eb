// The Llama-family forward pass in LibTorch (HF LlamaForCausalLM semantics): token embeddings, RMSNorm, RoPE with
// HF's rotate_half convention, causal attention with grouped-query heads, SwiGLU MLP, tied or untied head.
//
// It runs block by block: a decoder block's weights are loaded from the WeightSource when needed (and cached only
// when the whole model is small), so a 7B model never has to be in memory at once. Callers that stream many
// sequences (calibration, perplexity) load a block once and push every sequence through it before the next.
// A hook sees the input of every group of linear layers (what calibration accumulates into H), and a weight
// transform substitutes each linear layer's weight as its block is loaded (quantized eval: W -> Q + B·A).
//
// Numerics: float32 on the CPU; on CUDA float32, bfloat16 or float16 weights and activations, with RMSNorm, RoPE
// tables and softmax in float32 as transformers does.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cloq/base/progress.h"
#include "cloq/model/model_files.h"
#include "cloq/model/model_layout.h"

namespace cloq {

// One decoder block's tensors, on the model's device and in its dtype (norm weights too).
struct BlockWeights {
    torch::Tensor input_norm, post_norm;
    torch::Tensor q, k, v, o, gate, up, down;  // nn.Linear layout [out, in]
    torch::Tensor q_bias, k_bias, v_bias;      // defined only with attention_bias (Qwen2)

    torch::Tensor& linear(const std::string& module);  // "self_attn.q_proj" -> q, ...
};

// A low-rank path beside a linear layer, PEFT's unmerged LoRA forward: y = x·Wᵀ + scaling·(x·Aᵀ)·Bᵀ with
// A = lora_A [r, in], B = lora_B [out, r]. Fine-tuning trains A and B through it (autograd); W stays frozen.
struct LoraPath {
    torch::Tensor A, B;
    double scaling = 1.0;
};
using BlockAdapters = std::map<std::string, LoraPath>;  // by module ("self_attn.q_proj"); absent: no adapter

// Sees x [tokens, in] (batch and time flattened), the input of a group of linear layers of block `layer`.
using LinearInputHook = std::function<void(int layer, InputGroup group, const torch::Tensor& x)>;

// Called with each linear layer's float32 CPU weight as its block is loaded; returns the weight to use instead
// (same shape), e.g. Q + B·A. An undefined tensor keeps W.
using WeightTransform = std::function<torch::Tensor(const LinearLayer& layer, const torch::Tensor& W)>;

class LlamaModel {
public:
    explicit LlamaModel(ModelFiles files, torch::Device device = torch::kCPU,
                        torch::ScalarType dtype = torch::kFloat32);

    const ModelConfig& config() const { return files_.config; }
    const ModelFiles& files() const { return files_; }
    torch::Device device() const { return device_; }
    torch::ScalarType dtype() const { return dtype_; }

    // Replaces the weight transform (and forgets cached blocks, which were built with the previous one).
    void set_weight_transform(WeightTransform t);

    BlockWeights load_block(int layer) const;
    torch::Tensor embed(const torch::Tensor& ids) const;  // [B, T] integer ids -> [B, T, hidden]
    // One decoder block on h [B, T, hidden]; positions are 0..T-1. `adapters` (may be null) add LoRA paths.
    torch::Tensor run_block(int layer, const BlockWeights& w, const torch::Tensor& h, const LinearInputHook& hook = {},
                            const BlockAdapters* adapters = nullptr) const;
    torch::Tensor logits(const torch::Tensor& h) const;  // final norm + head: [B, T, vocab] float32
    // The whole model on a batch: logits [B, T, vocab] float32.
    torch::Tensor forward(const torch::Tensor& ids, const LinearInputHook& hook = {}) const;

    // Greedy decoding: appends `new_tokens` argmax tokens (stops early at EOS when stop_at_eos).
    std::vector<int32_t> generate_greedy(std::vector<int32_t> ids, int new_tokens, bool stop_at_eos = false,
                                         const Progress& progress = {}) const;

private:
    torch::Tensor load_param(const std::string& name) const;               // float32 CPU -> device/dtype
    std::pair<torch::Tensor, torch::Tensor> rope_tables(int64_t T) const;  // cos, sin [T, head_dim] float32

    ModelFiles files_;
    torch::Device device_;
    torch::ScalarType dtype_;
    WeightTransform transform_;
    bool keep_weights_ = false;
    mutable std::mutex mutex_;  // guards the caches below (the GUI may evaluate from a worker thread)
    mutable std::map<int, BlockWeights> blocks_;
    mutable torch::Tensor embed_, final_norm_, head_;
};

// The device a user's choice resolves to and the dtype used there: float32 on the CPU, bfloat16 on CUDA when
// `half_on_gpu` (the GPU may use reduced precision for forward passes, never for eigh/SVD — docs/design.md).
torch::ScalarType forward_dtype(torch::Device d, bool half_on_gpu);

}  // namespace cloq
