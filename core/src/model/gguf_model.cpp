// GGUF metadata -> ModelConfig, GGUF tensor names -> HF names (with llama.cpp's q/k RoPE permutation undone),
// and open_gguf_model, the `.gguf` branch of open_model.
#include "model/gguf_model.h"

#include <cctype>
#include <map>
#include <sstream>

#include "cloq/base/error.h"
#include "tokenize/gguf_tokenizer.h"

namespace cloq {

namespace {

struct ArchInfo {
    const char* gguf_arch;   // general.architecture
    const char* hf_class;    // config.json "architectures"
    const char* model_type;  // config.json "model_type"
    bool permuted_qk;        // llama.cpp stores q/k rows interleaved for RoPE (convert_hf_to_gguf `permute`)
};

// qwen2 uses NEOX-style RoPE in llama.cpp, the same rotate_half convention as HF, so its q/k are not permuted.
const ArchInfo kArchs[] = {
    {"llama", "LlamaForCausalLM", "llama", true},
    {"qwen2", "Qwen2ForCausalLM", "qwen2", false},
};

const ArchInfo& arch_of(const GgufFile& f) {
    const std::string arch = f.get_string("general.architecture");
    for (const auto& a : kArchs) {
        if (arch == a.gguf_arch) return a;
    }
    throw Error(f.path() + ": general.architecture is '" + arch + "'; supported GGUF architectures: llama, qwen2");
}

std::string shape_str(const std::vector<int64_t>& s) {
    std::ostringstream o;
    o << "[";
    for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
    o << "]";
    return o.str();
}

const std::pair<const char*, const char*> kBlockNames[] = {
    {"attn_norm.weight", "input_layernorm.weight"}, {"ffn_norm.weight", "post_attention_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},   {"attn_k.weight", "self_attn.k_proj.weight"},
    {"attn_v.weight", "self_attn.v_proj.weight"},   {"attn_output.weight", "self_attn.o_proj.weight"},
    {"attn_q.bias", "self_attn.q_proj.bias"},       {"attn_k.bias", "self_attn.k_proj.bias"},
    {"attn_v.bias", "self_attn.v_proj.bias"},       {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_up.weight", "mlp.up_proj.weight"},        {"ffn_down.weight", "mlp.down_proj.weight"},
};

}  // namespace

std::string hf_name_from_gguf(const std::string& g) {
    if (g == "token_embd.weight") return "model.embed_tokens.weight";
    if (g == "output_norm.weight") return "model.norm.weight";
    if (g == "output.weight") return "lm_head.weight";
    const std::string prefix = "blk.";
    if (g.compare(0, prefix.size(), prefix) != 0) return {};
    size_t i = prefix.size();
    const size_t digits_begin = i;
    while (i < g.size() && std::isdigit(static_cast<unsigned char>(g[i]))) ++i;
    if (i == digits_begin || i - digits_begin > 6 || i >= g.size() || g[i] != '.') return {};
    if (g[digits_begin] == '0' && i - digits_begin > 1) return {};  // "blk.01" is not a layer index
    const std::string layer = g.substr(digits_begin, i - digits_begin);
    const std::string rest = g.substr(i + 1);
    for (const auto& [gguf, hf] : kBlockNames) {
        if (rest == gguf) return "model.layers." + layer + "." + hf;
    }
    return {};
}

torch::Tensor unpermute_rope_rows(const torch::Tensor& w, int64_t n_head) {
    const int64_t rows = w.size(0);
    if (n_head <= 0 || rows % (2 * n_head) != 0) {
        throw Error("cannot undo the RoPE row permutation: " + std::to_string(rows) + " rows for " +
                    std::to_string(n_head) + " heads");
    }
    const int64_t half = rows / n_head / 2;
    if (w.dim() == 1) return w.reshape({n_head, half, 2}).transpose(1, 2).reshape({rows}).contiguous();
    return w.reshape({n_head, half, 2, -1}).transpose(1, 2).reshape(w.sizes()).contiguous();
}

ModelConfig model_config_from_gguf(const GgufFile& f) {
    const ArchInfo& a = arch_of(f);
    const std::string p = std::string(a.gguf_arch) + ".";
    ModelConfig c;
    c.architecture = a.hf_class;
    c.model_type = a.model_type;
    c.num_layers = f.get_int(p + "block_count");
    c.hidden_size = f.get_int(p + "embedding_length");
    c.intermediate_size = f.get_int(p + "feed_forward_length");
    c.num_heads = f.get_int(p + "attention.head_count");
    c.num_kv_heads = f.find_int(p + "attention.head_count_kv").value_or(c.num_heads);
    c.rms_norm_eps = f.get_double(p + "attention.layer_norm_rms_epsilon");
    c.rope_theta = f.find_double(p + "rope.freq_base").value_or(10000.0);
    c.max_position_embeddings = f.find_int(p + "context_length").value_or(2048);

    auto positive = [&](int64_t v, const std::string& key) {
        if (v <= 0 || v > (int64_t{1} << 24)) {
            throw Error(f.path() + ": metadata key '" + key + "' is " + std::to_string(v) +
                        ", expected a positive size");
        }
    };
    positive(c.num_layers, p + "block_count");
    positive(c.hidden_size, p + "embedding_length");
    positive(c.intermediate_size, p + "feed_forward_length");
    positive(c.num_heads, p + "attention.head_count");
    positive(c.num_kv_heads, p + "attention.head_count_kv");
    positive(c.max_position_embeddings, p + "context_length");
    if (!(c.rms_norm_eps > 0) || !(c.rope_theta > 0)) {
        throw Error(f.path() + ": " + p + "attention.layer_norm_rms_epsilon and " + p +
                    "rope.freq_base must be positive");
    }
    if (auto kl = f.find_int(p + "attention.key_length")) {
        positive(*kl, p + "attention.key_length");
        c.head_dim = *kl;
        if (auto vl = f.find_int(p + "attention.value_length"); vl && *vl != c.head_dim) {
            throw Error(f.path() + ": attention.value_length " + std::to_string(*vl) + " differs from key_length " +
                        std::to_string(c.head_dim) + ", which Llama-family models do not do");
        }
    } else {
        if (c.hidden_size % c.num_heads != 0) {
            throw Error(f.path() + ": " + p + "embedding_length " + std::to_string(c.hidden_size) +
                        " is not a multiple of " + p + "attention.head_count " + std::to_string(c.num_heads));
        }
        c.head_dim = c.hidden_size / c.num_heads;
    }
    if (c.num_heads % c.num_kv_heads != 0) {
        throw Error(f.path() + ": " + p + "attention.head_count " + std::to_string(c.num_heads) +
                    " is not a multiple of " + p + "attention.head_count_kv " + std::to_string(c.num_kv_heads));
    }
    if (c.head_dim % 2 != 0) throw Error(f.path() + ": head dimension " + std::to_string(c.head_dim) + " is odd");
    if (auto rd = f.find_int(p + "rope.dimension_count"); rd && *rd != c.head_dim) {
        throw Error(f.path() + ": " + p + "rope.dimension_count " + std::to_string(*rd) +
                    " differs from the head dimension " + std::to_string(c.head_dim) +
                    " (partial rotary embeddings are not supported)");
    }
    if (auto st = f.find_string(p + "rope.scaling.type"); st && *st != "none") {
        const double factor = f.find_double(p + "rope.scaling.factor").value_or(1.0);
        if (factor != 1.0) {
            throw Error(f.path() + ": RoPE scaling '" + *st + "' (factor " + std::to_string(factor) +
                        ") is not supported");
        }
    }
    if (f.find_tensor("rope_freqs.weight")) {
        throw Error(f.path() +
                    ": has rope_freqs.weight (Llama 3.1-style RoPE frequency scaling), which is not "
                    "supported");
    }

    const GgufTensorInfo* emb = f.find_tensor("token_embd.weight");
    if (!emb) throw Error(f.path() + ": has no tensor 'token_embd.weight' (the token embedding)");
    if (emb->ne.size() != 2) {
        throw Error(f.path() + ": token_embd.weight has shape " + shape_str(emb->torch_shape()) + ", expected 2-D");
    }
    c.vocab_size = emb->ne[1];
    c.tie_word_embeddings = f.find_tensor("output.weight") == nullptr;
    c.attention_bias = f.find_tensor("blk.0.attn_q.bias") != nullptr;
    if (auto b = f.find_int("tokenizer.ggml.bos_token_id")) c.bos_token_id = *b;
    if (auto e = f.find_int("tokenizer.ggml.eos_token_id")) c.eos_token_id = *e;
    return c;
}

// ---------------------------------------------------------------------------------------------- weight source

GgufWeightSource::GgufWeightSource(std::shared_ptr<const GgufFile> file, const ModelConfig& config)
    : file_(std::move(file)), config_(config) {
    unpermute_qk_ = config_.model_type == "llama";
    for (const auto& t : file_->tensors()) {
        std::string hf = hf_name_from_gguf(t.name);
        if (hf.empty()) {
            ignored_.push_back(t.name);
            continue;
        }
        by_hf_.emplace(hf, &t);
        names_.push_back(std::move(hf));
    }
}

const GgufTensorInfo& GgufWeightSource::info(const std::string& hf_name) const {
    auto it = by_hf_.find(hf_name);
    if (it == by_hf_.end()) throw Error(file_->path() + ": has no tensor for '" + hf_name + "'");
    return *it->second;
}

std::vector<std::string> GgufWeightSource::names() const { return names_; }
bool GgufWeightSource::contains(const std::string& name) const { return by_hf_.count(name) != 0; }
std::vector<int64_t> GgufWeightSource::shape(const std::string& name) const { return info(name).torch_shape(); }
std::string GgufWeightSource::dtype(const std::string& name) const { return info(name).type_name(); }
std::string GgufWeightSource::gguf_name(const std::string& hf_name) const { return info(hf_name).name; }

torch::Tensor GgufWeightSource::load(const std::string& name) const {
    const GgufTensorInfo& t = info(name);
    torch::Tensor w = file_->load_float(t.name);
    if (!torch::isfinite(w).all().item<bool>()) {
        throw Error(file_->path() + ": tensor '" + t.name + "' contains NaN or Inf values");
    }
    if (unpermute_qk_) {
        auto ends_with = [&](const char* s) {
            const std::string suf(s);
            return name.size() >= suf.size() && name.compare(name.size() - suf.size(), suf.size(), suf) == 0;
        };
        try {
            if (ends_with("q_proj.weight") || ends_with("q_proj.bias"))
                return unpermute_rope_rows(w, config_.num_heads);
            if (ends_with("k_proj.weight") || ends_with("k_proj.bias")) {
                return unpermute_rope_rows(w, config_.num_kv_heads);
            }
        } catch (const Error& e) {
            throw Error(file_->path() + ": tensor '" + t.name + "': " + e.what());
        }
    }
    return w;
}

std::string GgufWeightSource::describe() const {
    std::map<std::string, int> types;
    for (const auto& n : names_) types[info(n).type_name()]++;
    std::ostringstream o;
    const std::string& p = file_->path();
    o << p.substr(p.find_last_of('/') == std::string::npos ? 0 : p.find_last_of('/') + 1) << " (GGUF v"
      << file_->version() << ", " << names_.size() << " tensors:";
    bool first = true;
    for (const auto& [t, n] : types) {
        o << (first ? " " : ", ") << n << " " << t;
        first = false;
    }
    if (!ignored_.empty()) o << "; " << ignored_.size() << " ignored";
    o << ")";
    return o.str();
}

void check_gguf_model_tensors(const GgufWeightSource& w, const ModelConfig& c) {
    const std::string& path = w.file().path();
    auto expect = [&](const std::string& name, std::vector<int64_t> shape) {
        if (!w.contains(name)) {
            throw Error(path + ": has no tensor for '" + name + "' (the model has " + std::to_string(c.num_layers) +
                        " blocks)");
        }
        const auto got = w.shape(name);
        if (got != shape) {
            throw Error(path + ": tensor '" + w.gguf_name(name) + "' (" + name + ") has shape " + shape_str(got) +
                        ", expected " + shape_str(shape));
        }
    };
    const int64_t h = c.hidden_size, q = c.num_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim;
    expect("model.embed_tokens.weight", {c.vocab_size, h});
    expect("model.norm.weight", {h});
    if (!c.tie_word_embeddings) expect("lm_head.weight", {c.vocab_size, h});
    for (int64_t i = 0; i < c.num_layers; ++i) {
        const std::string l = "model.layers." + std::to_string(i) + ".";
        expect(l + "input_layernorm.weight", {h});
        expect(l + "post_attention_layernorm.weight", {h});
        expect(l + "self_attn.q_proj.weight", {q, h});
        expect(l + "self_attn.k_proj.weight", {kv, h});
        expect(l + "self_attn.v_proj.weight", {kv, h});
        expect(l + "self_attn.o_proj.weight", {h, q});
        expect(l + "mlp.gate_proj.weight", {c.intermediate_size, h});
        expect(l + "mlp.up_proj.weight", {c.intermediate_size, h});
        expect(l + "mlp.down_proj.weight", {h, c.intermediate_size});
        if (c.attention_bias) {
            expect(l + "self_attn.q_proj.bias", {q});
            expect(l + "self_attn.k_proj.bias", {kv});
            expect(l + "self_attn.v_proj.bias", {kv});
        }
    }
    // A block index beyond block_count means the metadata and the tensors disagree.
    const std::string extra = "model.layers." + std::to_string(c.num_layers) + ".input_layernorm.weight";
    if (w.contains(extra)) {
        throw Error(path + ": has tensors for block " + std::to_string(c.num_layers) + " but block_count is " +
                    std::to_string(c.num_layers));
    }
}

ModelFiles open_gguf_model(const std::string& path) {
    auto file = GgufFile::open(path);
    ModelFiles m;
    m.path = path;
    m.format = "gguf";
    m.config = model_config_from_gguf(*file);
    auto weights = std::make_shared<GgufWeightSource>(file, m.config);
    check_gguf_model_tensors(*weights, m.config);
    m.weights = weights;
    m.tokenizer = tokenizer_from_gguf(*file);
    if (m.tokenizer && m.tokenizer->vocab_size() > m.config.vocab_size) {
        throw Error(path + ": the tokenizer has " + std::to_string(m.tokenizer->vocab_size()) +
                    " tokens but token_embd.weight has only " + std::to_string(m.config.vocab_size) + " rows");
    }
    return m;
}

}  // namespace cloq
