#include "cloq/model/llama_model.h"

#include <torch/torch.h>

#include <cmath>

#include "cloq/base/error.h"

namespace cloq {

namespace F = torch::nn::functional;

torch::Tensor& BlockWeights::linear(const std::string& module) {
    if (module == "self_attn.q_proj") return q;
    if (module == "self_attn.k_proj") return k;
    if (module == "self_attn.v_proj") return v;
    if (module == "self_attn.o_proj") return o;
    if (module == "mlp.gate_proj") return gate;
    if (module == "mlp.up_proj") return up;
    if (module == "mlp.down_proj") return down;
    throw Error("no linear layer '" + module + "' in a decoder block");
}

torch::ScalarType forward_dtype(torch::Device d, bool half_on_gpu) {
    return d.is_cuda() && half_on_gpu ? torch::kBFloat16 : torch::kFloat32;
}

LlamaModel::LlamaModel(ModelFiles files, torch::Device device, torch::ScalarType dtype)
    : files_(std::move(files)), device_(device), dtype_(dtype) {
    if (!files_.weights) throw Error(files_.path + ": model has no weights");
    if (dtype_ != torch::kFloat32 && dtype_ != torch::kBFloat16 && dtype_ != torch::kFloat16)
        throw Error("the forward pass runs in float32, bfloat16 or float16");
    if (device_.is_cpu() && dtype_ != torch::kFloat32)
        throw Error("the forward pass on the CPU runs in float32 (reduced precision is for CUDA)");
    keep_weights_ = files_.config.num_parameters() * 4 < (int64_t(1) << 30);
}

void LlamaModel::set_weight_transform(WeightTransform t) {
    std::lock_guard<std::mutex> lock(mutex_);
    transform_ = std::move(t);
    blocks_.clear();
}

torch::Tensor LlamaModel::load_param(const std::string& name) const {
    return files_.weights->load(name).to(device_, dtype_);
}

BlockWeights LlamaModel::load_block(int layer) const {
    if (layer < 0 || layer >= config().num_layers)
        throw Error("layer " + std::to_string(layer) + " out of range (the model has " +
                    std::to_string(config().num_layers) + ")");
    WeightTransform transform;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = blocks_.find(layer);
        if (it != blocks_.end()) return it->second;
        transform = transform_;
    }
    const std::string p = "model.layers." + std::to_string(layer) + ".";
    BlockWeights w;
    w.input_norm = load_param(p + "input_layernorm.weight");
    w.post_norm = load_param(p + "post_attention_layernorm.weight");
    for (const auto& lin : block_linear_layers(config(), layer)) {
        torch::Tensor W = files_.weights->load(lin.weight_name());
        if (transform) {
            torch::Tensor t = transform(lin, W);
            if (t.defined()) {
                if (t.sizes() != W.sizes()) throw Error("substituted weight of " + lin.name() + " has the wrong shape");
                W = t;
            }
        }
        w.linear(lin.module) = W.to(device_, dtype_);
    }
    if (config().attention_bias) {
        w.q_bias = load_param(p + "self_attn.q_proj.bias");
        w.k_bias = load_param(p + "self_attn.k_proj.bias");
        w.v_bias = load_param(p + "self_attn.v_proj.bias");
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (keep_weights_) blocks_[layer] = w;
    return w;
}

torch::Tensor LlamaModel::embed(const torch::Tensor& ids) const {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!embed_.defined()) embed_ = load_param("model.embed_tokens.weight");
    }
    auto i = ids.to(device_, torch::kLong);
    if (i.numel() > 0 && (i.min().item<int64_t>() < 0 || i.max().item<int64_t>() >= config().vocab_size))
        throw Error("token id out of range for a vocabulary of " + std::to_string(config().vocab_size));
    return embed_.index_select(0, i.reshape({-1})).reshape({i.size(0), i.size(1), config().hidden_size});
}

namespace {
// RMSNorm as transformers computes it: in float32, then scaled by the weight in the model's dtype.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& w, double eps) {
    auto xf = x.to(torch::kFloat32);
    xf = xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps);
    return w * xf.to(x.scalar_type());
}

torch::Tensor rotate_half(const torch::Tensor& x) {
    const int64_t h = x.size(-1) / 2;
    return torch::cat({-x.slice(-1, h), x.slice(-1, 0, h)}, -1);
}

torch::Tensor apply_linear(const torch::Tensor& x, const torch::Tensor& W, const torch::Tensor& b = {}) {
    return b.defined() ? torch::addmm(b, x, W.t()) : x.mm(W.t());
}

// The linear layer plus its LoRA path, if the block has one for `module`.
torch::Tensor apply_linear(const torch::Tensor& x, const torch::Tensor& W, const torch::Tensor& b,
                           const BlockAdapters* adapters, const char* module) {
    torch::Tensor y = apply_linear(x, W, b);
    if (!adapters) return y;
    const auto it = adapters->find(module);
    if (it == adapters->end()) return y;
    const LoraPath& a = it->second;
    return y + x.mm(a.A.t()).mm(a.B.t()) * a.scaling;
}
}  // namespace

std::pair<torch::Tensor, torch::Tensor> LlamaModel::rope_tables(int64_t T) const {
    const auto inv = rope_inv_freq(config());
    // Angles in float64 (positions up to 128k times frequencies lose digits in float32), tables in float32.
    auto inv_t =
        torch::from_blob(const_cast<double*>(inv.data()), {static_cast<int64_t>(inv.size())}, torch::kFloat64).clone();
    auto pos = torch::arange(T, torch::kFloat64);
    auto freqs = torch::outer(pos, inv_t);
    auto emb = torch::cat({freqs, freqs}, -1);
    return {emb.cos().to(device_, torch::kFloat32), emb.sin().to(device_, torch::kFloat32)};
}

torch::Tensor LlamaModel::run_block(int layer, const BlockWeights& w, const torch::Tensor& h,
                                    const LinearInputHook& hook, const BlockAdapters* lora) const {
    const auto& c = config();
    const int64_t B = h.size(0), T = h.size(1), D = c.head_dim;
    const int64_t nh = c.num_heads, nkv = c.num_kv_heads;

    // --- attention
    auto x = rms_norm(h, w.input_norm, c.rms_norm_eps).reshape({B * T, c.hidden_size});
    if (hook) hook(layer, InputGroup::AttnIn, x);
    auto q = apply_linear(x, w.q, w.q_bias, lora, "self_attn.q_proj").view({B, T, nh, D}).transpose(1, 2);
    auto k = apply_linear(x, w.k, w.k_bias, lora, "self_attn.k_proj").view({B, T, nkv, D}).transpose(1, 2);
    auto v = apply_linear(x, w.v, w.v_bias, lora, "self_attn.v_proj").view({B, T, nkv, D}).transpose(1, 2);
    auto [cos, sin] = rope_tables(T);
    auto qf = q.to(torch::kFloat32), kf = k.to(torch::kFloat32);
    q = (qf * cos + rotate_half(qf) * sin).to(h.scalar_type());
    k = (kf * cos + rotate_half(kf) * sin).to(h.scalar_type());
    if (nkv != nh) {  // grouped-query attention: query head i reads kv head i / (nh / nkv)
        k = k.repeat_interleave(nh / nkv, 1);
        v = v.repeat_interleave(nh / nkv, 1);
    }
    auto scores = torch::matmul(q, k.transpose(-2, -1)).to(torch::kFloat32) / std::sqrt(static_cast<double>(D));
    auto ii = torch::arange(T, torch::TensorOptions().device(device_)).unsqueeze(1);
    auto jj = torch::arange(T, torch::TensorOptions().device(device_)).unsqueeze(0);
    auto masked = jj > ii;  // causal
    if (c.sliding_window > 0) masked = masked | (ii - jj >= c.sliding_window);
    scores = scores.masked_fill(masked, -std::numeric_limits<float>::infinity());
    auto probs = torch::softmax(scores, -1).to(h.scalar_type());
    auto attn = torch::matmul(probs, v).transpose(1, 2).reshape({B * T, nh * D});
    if (hook) hook(layer, InputGroup::OProj, attn);
    auto out = h + apply_linear(attn, w.o, {}, lora, "self_attn.o_proj").view({B, T, c.hidden_size});

    // --- SwiGLU MLP
    auto y = rms_norm(out, w.post_norm, c.rms_norm_eps).reshape({B * T, c.hidden_size});
    if (hook) hook(layer, InputGroup::MlpIn, y);
    auto act = torch::silu(apply_linear(y, w.gate, {}, lora, "mlp.gate_proj")) *
               apply_linear(y, w.up, {}, lora, "mlp.up_proj");
    if (hook) hook(layer, InputGroup::DownProj, act);
    return out + apply_linear(act, w.down, {}, lora, "mlp.down_proj").view({B, T, c.hidden_size});
}

torch::Tensor LlamaModel::logits(const torch::Tensor& h) const {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!final_norm_.defined()) final_norm_ = load_param("model.norm.weight");
        if (!head_.defined()) {
            // Tied models read the embedding matrix (HF ignores a stored lm_head then).
            if (config().tie_word_embeddings)
                head_ = embed_.defined() ? embed_ : load_param("model.embed_tokens.weight");
            else
                head_ = load_param("lm_head.weight");
        }
    }
    auto x = rms_norm(h, final_norm_, config().rms_norm_eps);
    return torch::matmul(x, head_.t()).to(torch::kFloat32);
}

torch::Tensor LlamaModel::forward(const torch::Tensor& ids, const LinearInputHook& hook) const {
    torch::NoGradGuard no_grad;
    auto h = embed(ids);
    for (int l = 0; l < config().num_layers; ++l) h = run_block(l, load_block(l), h, hook);
    return logits(h);
}

std::vector<int32_t> LlamaModel::generate_greedy(std::vector<int32_t> ids, int new_tokens, bool stop_at_eos,
                                                 const Progress& progress) const {
    torch::NoGradGuard no_grad;
    if (ids.empty()) throw Error("generation needs at least one prompt token");
    // No KV cache: each step re-runs the sequence (generation is a demo, the prompt is short).
    for (int s = 0; s < new_tokens; ++s) {
        progress(static_cast<double>(s) / new_tokens, "token " + std::to_string(s + 1));
        if (static_cast<int64_t>(ids.size()) >= config().max_position_embeddings) break;
        auto t = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong).unsqueeze(0);
        auto lg = forward(t);
        const auto next = static_cast<int32_t>(lg[0][-1].argmax().item<int64_t>());
        ids.push_back(next);
        if (stop_at_eos && next == config().eos_token_id) break;
    }
    progress(1.0, "done");
    return ids;
}

}  // namespace cloq
