// A GGUF writer for the tests (deliberately independent of the reader in core): builds files byte by byte from
// the spec, with encoders for every ggml block type that produce the stored bytes AND the float values those bytes
// stand for, computed from the codes directly (not by calling the reader's dequantizer).
#pragma once
#include <c10/util/Half.h>
#include <torch/torch.h>

#include <fstream>
#include <iterator>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cloq/io/safetensors.h"
#include "test_support.h"
#include "tokenize/tokenizer_spm.h"

namespace cloq::test {

// GGUF value type ids (gguf.md)
enum : uint32_t { kU8 = 0, kI8, kU16, kI16, kU32, kI32, kF32, kBool, kStr, kArr, kU64, kI64, kF64 };
// ggml type ids (ggml.h)
enum : uint32_t {
    tF32 = 0,
    tF16 = 1,
    tQ4_0 = 2,
    tQ4_1 = 3,
    tQ5_0 = 6,
    tQ5_1 = 7,
    tQ8_0 = 8,
    tQ4_K = 12,
    tQ6_K = 14,
    tBF16 = 30
};

template <class T>
void put(std::string& b, T v) {
    char buf[sizeof(T)];
    std::memcpy(buf, &v, sizeof(T));
    b.append(buf, sizeof(T));
}
inline void put_str(std::string& b, const std::string& s) {
    put<uint64_t>(b, s.size());
    b += s;
}

class GgufWriter {
public:
    uint32_t version = 3;
    uint64_t alignment = 32;  // also written as general.alignment when set_alignment() was called

    void set_alignment(uint64_t a) {
        alignment = a;
        kv_u32("general.alignment", static_cast<uint32_t>(a));
    }
    // A key with a raw encoded value (type id + payload), for anything the helpers below do not cover.
    void kv_raw(const std::string& key, uint32_t type, const std::string& payload) {
        put_str(kv_, key);
        put<uint32_t>(kv_, type);
        kv_ += payload;
        ++n_kv_;
    }
    void kv_u32(const std::string& k, uint32_t v) {
        std::string p;
        put(p, v);
        kv_raw(k, kU32, p);
    }
    void kv_i32(const std::string& k, int32_t v) {
        std::string p;
        put(p, v);
        kv_raw(k, kI32, p);
    }
    void kv_f32(const std::string& k, float v) {
        std::string p;
        put(p, v);
        kv_raw(k, kF32, p);
    }
    void kv_bool(const std::string& k, bool v) {
        std::string p;
        put<uint8_t>(p, v);
        kv_raw(k, kBool, p);
    }
    void kv_str(const std::string& k, const std::string& v) {
        std::string p;
        put_str(p, v);
        kv_raw(k, kStr, p);
    }
    void kv_str_array(const std::string& k, const std::vector<std::string>& v) {
        std::string p;
        put<uint32_t>(p, kStr);
        put<uint64_t>(p, v.size());
        for (const auto& s : v) put_str(p, s);
        kv_raw(k, kArr, p);
    }
    template <class T>
    void kv_array(const std::string& k, uint32_t elem_type, const std::vector<T>& v) {
        std::string p;
        put<uint32_t>(p, elem_type);
        put<uint64_t>(p, v.size());
        for (const auto& x : v) put<T>(p, x);
        kv_raw(k, kArr, p);
    }

    // ne in GGUF order (ne[0] = row length); `data` is the stored bytes.
    void tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, std::string data) {
        tensors_.push_back({name, std::move(ne), type, std::move(data), UINT64_MAX});
    }
    // Forces a tensor's recorded offset (for overlap/out-of-bounds cases); data is still written in order.
    void force_offset(size_t i, uint64_t off) { tensors_[i].forced = off; }

    std::string build() const {
        std::string b = "GGUF";
        put<uint32_t>(b, version);
        put<uint64_t>(b, tensors_.size());
        put<uint64_t>(b, n_kv_);
        b += kv_;
        std::vector<uint64_t> offsets;
        uint64_t off = 0;
        for (const auto& t : tensors_) {
            offsets.push_back(off);
            off = pad(off + t.data.size());
        }
        for (size_t i = 0; i < tensors_.size(); ++i) {
            const auto& t = tensors_[i];
            put_str(b, t.name);
            put<uint32_t>(b, static_cast<uint32_t>(t.ne.size()));
            for (auto n : t.ne) put<uint64_t>(b, n);
            put<uint32_t>(b, t.type);
            put<uint64_t>(b, t.forced != UINT64_MAX ? t.forced : offsets[i]);
        }
        b.append(pad(b.size()) - b.size(), '\0');
        for (size_t i = 0; i < tensors_.size(); ++i) {
            b += tensors_[i].data;
            if (i + 1 < tensors_.size()) b.append(pad(b.size()) - b.size(), '\0');
        }
        return b;
    }

private:
    struct T {
        std::string name;
        std::vector<uint64_t> ne;
        uint32_t type;
        std::string data;
        uint64_t forced;
    };
    std::string kv_;
    uint64_t n_kv_ = 0;
    std::vector<T> tensors_;
    uint64_t pad(uint64_t x) const { return (x + alignment - 1) / alignment * alignment; }
};

// ------------------------------------------------------------------------------------------ block encoders
// Each returns the stored bytes for `n` values and fills `expect` with the floats they represent.

struct Encoded {
    std::string bytes;
    std::vector<float> expect;
};

inline uint16_t half_bits(float x) { return c10::Half(x).x; }
inline float half_value(float x) { return static_cast<float>(c10::Half(x)); }

inline Encoded encode_f32(int64_t n, std::mt19937& rng) {
    std::normal_distribution<float> nd;
    Encoded e;
    for (int64_t i = 0; i < n; ++i) {
        const float v = nd(rng);
        put(e.bytes, v);
        e.expect.push_back(v);
    }
    return e;
}

inline Encoded encode_f16(int64_t n, std::mt19937& rng) {
    std::normal_distribution<float> nd;
    Encoded e;
    for (int64_t i = 0; i < n; ++i) {
        float v = nd(rng) * 3;
        if (i == 0) v = 6.0e-8f;    // a half subnormal
        if (i == 1) v = -65504.0f;  // the largest half
        put<uint16_t>(e.bytes, half_bits(v));
        e.expect.push_back(half_value(v));
    }
    return e;
}

inline Encoded encode_bf16(int64_t n, std::mt19937& rng) {
    std::normal_distribution<float> nd;
    Encoded e;
    for (int64_t i = 0; i < n; ++i) {
        const float v = nd(rng) * 1e3f;
        uint32_t bits;
        std::memcpy(&bits, &v, 4);
        bits &= 0xFFFF0000u;  // bfloat16 = the top half of a float32
        float t;
        std::memcpy(&t, &bits, 4);
        put<uint16_t>(e.bytes, static_cast<uint16_t>(bits >> 16));
        e.expect.push_back(t);
    }
    return e;
}

// Legacy 32-value blocks. Value v of a block has code c[v]; nibble v%16 of byte v%16, low for v<16, high above.
inline Encoded encode_q4(int64_t n, bool with_min, std::mt19937& rng) {
    std::uniform_int_distribution<int> code(0, 15);
    std::uniform_real_distribution<float> scale(0.001f, 0.1f);
    Encoded e;
    for (int64_t b = 0; b < n / 32; ++b) {
        const float d = half_value(scale(rng)), m = half_value(-scale(rng) * 8);
        put<uint16_t>(e.bytes, half_bits(d));
        if (with_min) put<uint16_t>(e.bytes, half_bits(m));
        int c[32];
        for (int& x : c) x = code(rng);
        for (int j = 0; j < 16; ++j) e.bytes.push_back(static_cast<char>(c[j] | (c[j + 16] << 4)));
        for (int v = 0; v < 32; ++v) {
            e.expect.push_back(with_min ? static_cast<float>(c[v]) * d + m : static_cast<float>(c[v] - 8) * d);
        }
    }
    return e;
}

// Q5: as Q4 plus a 32-bit word whose bit v is the fifth bit of value v.
inline Encoded encode_q5(int64_t n, bool with_min, std::mt19937& rng) {
    std::uniform_int_distribution<int> code(0, 31);
    std::uniform_real_distribution<float> scale(0.001f, 0.1f);
    Encoded e;
    for (int64_t b = 0; b < n / 32; ++b) {
        const float d = half_value(scale(rng)), m = half_value(-scale(rng) * 16);
        put<uint16_t>(e.bytes, half_bits(d));
        if (with_min) put<uint16_t>(e.bytes, half_bits(m));
        int c[32];
        uint32_t qh = 0;
        for (int v = 0; v < 32; ++v) {
            c[v] = code(rng);
            qh |= static_cast<uint32_t>((c[v] >> 4) & 1) << v;
        }
        put<uint32_t>(e.bytes, qh);
        for (int j = 0; j < 16; ++j) e.bytes.push_back(static_cast<char>((c[j] & 15) | ((c[j + 16] & 15) << 4)));
        for (int v = 0; v < 32; ++v) {
            e.expect.push_back(with_min ? static_cast<float>(c[v]) * d + m : static_cast<float>(c[v] - 16) * d);
        }
    }
    return e;
}

inline Encoded encode_q8_0(int64_t n, std::mt19937& rng) {
    std::uniform_int_distribution<int> code(-128, 127);
    std::uniform_real_distribution<float> scale(0.001f, 0.1f);
    Encoded e;
    for (int64_t b = 0; b < n / 32; ++b) {
        const float d = half_value(scale(rng));
        put<uint16_t>(e.bytes, half_bits(d));
        for (int v = 0; v < 32; ++v) {
            const int c = code(rng);
            e.bytes.push_back(static_cast<char>(static_cast<int8_t>(c)));
            e.expect.push_back(static_cast<float>(c) * d);
        }
    }
    return e;
}

// Q4_K: 256 values = 8 sub-blocks of 32, each with a 6-bit scale and 6-bit min (packed into 12 bytes as in
// ggml's quantize_row_q4_K_ref); value = d*sc*q - dmin*m. Bytes 32k..32k+31 of qs hold sub-block 2k (low
// nibbles) and 2k+1 (high nibbles).
inline Encoded encode_q4_k(int64_t n, std::mt19937& rng) {
    std::uniform_int_distribution<int> code(0, 15), six(0, 63);
    std::uniform_real_distribution<float> scale(0.0005f, 0.01f);
    Encoded e;
    for (int64_t b = 0; b < n / 256; ++b) {
        const float d = half_value(scale(rng)), dmin = half_value(scale(rng));
        put<uint16_t>(e.bytes, half_bits(d));
        put<uint16_t>(e.bytes, half_bits(dmin));
        int sc[8], mn[8];
        for (int j = 0; j < 8; ++j) {
            sc[j] = six(rng);
            mn[j] = six(rng);
        }
        uint8_t packed[12] = {};
        for (int j = 0; j < 8; ++j) {
            if (j < 4) {
                packed[j] = static_cast<uint8_t>(sc[j]);
                packed[j + 4] = static_cast<uint8_t>(mn[j]);
            } else {
                packed[j + 4] = static_cast<uint8_t>((sc[j] & 0xF) | ((mn[j] & 0xF) << 4));
                packed[j - 4] |= static_cast<uint8_t>((sc[j] >> 4) << 6);
                packed[j] |= static_cast<uint8_t>((mn[j] >> 4) << 6);
            }
        }
        e.bytes.append(reinterpret_cast<const char*>(packed), 12);
        int q[256];
        for (int& x : q) x = code(rng);
        for (int k = 0; k < 4; ++k) {
            for (int l = 0; l < 32; ++l) {
                e.bytes.push_back(static_cast<char>(q[64 * k + l] | (q[64 * k + 32 + l] << 4)));
            }
        }
        for (int v = 0; v < 256; ++v) {
            const int s = v / 32;
            const float ds = d * static_cast<float>(sc[s]), ms = dmin * static_cast<float>(mn[s]);
            e.expect.push_back(ds * static_cast<float>(q[v]) - ms);
        }
    }
    return e;
}

// Q6_K: 256 values with 6-bit codes c (value = d * sc[v/16] * (c - 32)). Each half of 128 values uses 64 bytes
// of ql and 32 of qh; within a half, value r = 32*quad + l has its low 4 bits in ql[l + 32*(quad&1)] (low nibble
// for quad < 2, high otherwise) and its top 2 bits at bits 2*quad of qh[l].
inline Encoded encode_q6_k(int64_t n, std::mt19937& rng) {
    std::uniform_int_distribution<int> code(0, 63), scd(-128, 127);
    std::uniform_real_distribution<float> scale(0.0001f, 0.001f);
    Encoded e;
    for (int64_t b = 0; b < n / 256; ++b) {
        uint8_t ql[128] = {}, qh[64] = {};
        int8_t sc[16];
        int c[256];
        for (auto& s : sc) s = static_cast<int8_t>(scd(rng));
        for (int v = 0; v < 256; ++v) {
            c[v] = code(rng);
            const int half = v / 128, r = v % 128, quad = r / 32, l = r % 32;
            uint8_t& lo = ql[64 * half + l + 32 * (quad & 1)];
            lo |= static_cast<uint8_t>((c[v] & 15) << (quad >= 2 ? 4 : 0));
            qh[32 * half + l] |= static_cast<uint8_t>(((c[v] >> 4) & 3) << (2 * quad));
        }
        const float d = half_value(scale(rng));
        e.bytes.append(reinterpret_cast<const char*>(ql), 128);
        e.bytes.append(reinterpret_cast<const char*>(qh), 64);
        e.bytes.append(reinterpret_cast<const char*>(sc), 16);
        put<uint16_t>(e.bytes, half_bits(d));
        for (int v = 0; v < 256; ++v) {
            e.expect.push_back(d * static_cast<float>(sc[v / 16]) * static_cast<float>(c[v] - 32));
        }
    }
    return e;
}

inline Encoded encode(uint32_t type, int64_t n, std::mt19937& rng) {
    switch (type) {
    case tF32:
        return encode_f32(n, rng);
    case tF16:
        return encode_f16(n, rng);
    case tBF16:
        return encode_bf16(n, rng);
    case tQ4_0:
        return encode_q4(n, false, rng);
    case tQ4_1:
        return encode_q4(n, true, rng);
    case tQ5_0:
        return encode_q5(n, false, rng);
    case tQ5_1:
        return encode_q5(n, true, rng);
    case tQ8_0:
        return encode_q8_0(n, rng);
    case tQ4_K:
        return encode_q4_k(n, rng);
    case tQ6_K:
        return encode_q6_k(n, rng);
    default:
        return {};
    }
}

// ------------------------------------------------------------------------------------------ model conversion

// convert_hf_to_gguf.py LlamaModel.permute: w.reshape(n_head, 2, rows/n_head/2, *rest).swapaxes(1, 2).reshape(...)
inline torch::Tensor hf_to_gguf_permute(const torch::Tensor& w, int64_t n_head) {
    auto shape = w.sizes().vec();
    std::vector<int64_t> v = {n_head, 2, w.size(0) / n_head / 2};
    for (size_t i = 1; i < shape.size(); ++i) v.push_back(shape[i]);
    return w.reshape(v).transpose(1, 2).reshape(shape).contiguous();
}

inline std::string f32_bytes(const torch::Tensor& t) {
    auto c = t.to(torch::kFloat32).contiguous();
    return std::string(reinterpret_cast<const char*>(c.data_ptr<float>()), c.numel() * 4);
}
inline std::vector<uint64_t> gguf_ne(const torch::Tensor& t) {
    std::vector<uint64_t> ne;
    for (int64_t i = t.dim() - 1; i >= 0; --i) ne.push_back(static_cast<uint64_t>(t.size(i)));
    return ne;
}

// The metadata convert_hf_to_gguf.py writes for a SentencePiece tokenizer (`llama` vocab).
inline void write_llama_tokenizer(GgufWriter& w, const std::string& model_path) {
    std::ifstream in(model_path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const SpmModelSpec spec = parse_sentencepiece_model(bytes, model_path);
    w.kv_str("tokenizer.ggml.model", "llama");
    w.kv_str_array("tokenizer.ggml.tokens", spec.pieces);
    w.kv_array<float>("tokenizer.ggml.scores", kF32, spec.scores);
    std::vector<int32_t> types;
    uint32_t unk = 0;
    for (size_t i = 0; i < spec.types.size(); ++i) {
        types.push_back(static_cast<int32_t>(spec.types[i]));
        if (spec.types[i] == SpmPieceType::Unknown) unk = static_cast<uint32_t>(i);
    }
    w.kv_array<int32_t>("tokenizer.ggml.token_type", kI32, types);
    w.kv_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(spec.bos_id));
    w.kv_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(spec.eos_id));
    w.kv_u32("tokenizer.ggml.unknown_token_id", unk);
    w.kv_bool("tokenizer.ggml.add_space_prefix", spec.add_dummy_prefix);
    w.kv_bool("tokenizer.ggml.remove_extra_whitespaces", spec.remove_extra_whitespaces);
}

// stories260K (../shared/models/stories260K) converted to GGUF F32 the way convert_hf_to_gguf.py does it.
inline std::string stories260k_gguf() {
    SafetensorsWeights st(demo_model_dir() + "/model.safetensors");
    GgufWriter w;
    w.kv_str("general.architecture", "llama");
    w.kv_str("general.name", "stories260K");
    w.kv_u32("llama.block_count", 5);
    w.kv_u32("llama.context_length", 512);
    w.kv_u32("llama.embedding_length", 64);
    w.kv_u32("llama.feed_forward_length", 172);
    w.kv_u32("llama.attention.head_count", 8);
    w.kv_u32("llama.attention.head_count_kv", 4);
    w.kv_f32("llama.rope.freq_base", 10000.0f);
    w.kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    w.kv_u32("llama.rope.dimension_count", 8);
    w.kv_u32("general.file_type", 0);
    write_llama_tokenizer(w, demo_model_dir() + "/tokenizer.model");
    auto add = [&](const std::string& gguf, const std::string& hf, int64_t permute_heads = 0) {
        torch::Tensor t = st.load(hf);
        if (permute_heads) t = hf_to_gguf_permute(t, permute_heads);
        w.tensor(gguf, gguf_ne(t), tF32, f32_bytes(t));
    };
    add("token_embd.weight", "model.embed_tokens.weight");
    for (int b = 0; b < 5; ++b) {
        const std::string g = "blk." + std::to_string(b) + ".", l = "model.layers." + std::to_string(b) + ".";
        add(g + "attn_norm.weight", l + "input_layernorm.weight");
        add(g + "attn_q.weight", l + "self_attn.q_proj.weight", 8);
        add(g + "attn_k.weight", l + "self_attn.k_proj.weight", 4);
        add(g + "attn_v.weight", l + "self_attn.v_proj.weight");
        add(g + "attn_output.weight", l + "self_attn.o_proj.weight");
        add(g + "ffn_norm.weight", l + "post_attention_layernorm.weight");
        add(g + "ffn_gate.weight", l + "mlp.gate_proj.weight");
        add(g + "ffn_up.weight", l + "mlp.up_proj.weight");
        add(g + "ffn_down.weight", l + "mlp.down_proj.weight");
    }
    add("output_norm.weight", "model.norm.weight");
    return w.build();
}

// A second, differently shaped Llama with seeded random weights and stories260K's tokenizer: hidden 128, 2
// blocks, MLP 256, 4 query / 2 key-value heads. Every linear layer is wider than stories260K's, so settings clamped
// for one model are wrong for the other (what a model switch must not carry over).
inline std::string wide_random_llama_gguf(uint64_t seed = 7) {
    constexpr int64_t hidden = 128, ff = 256, heads = 4, kv_heads = 2, blocks = 2, head_dim = hidden / heads;
    constexpr int64_t vocab = 512;  // stories260K's tokenizer
    auto gen = at::detail::createCPUGenerator(seed);
    GgufWriter w;
    w.kv_str("general.architecture", "llama");
    w.kv_str("general.name", "wide-random");
    w.kv_u32("llama.block_count", blocks);
    w.kv_u32("llama.context_length", 512);
    w.kv_u32("llama.embedding_length", hidden);
    w.kv_u32("llama.feed_forward_length", ff);
    w.kv_u32("llama.attention.head_count", heads);
    w.kv_u32("llama.attention.head_count_kv", kv_heads);
    w.kv_f32("llama.rope.freq_base", 10000.0f);
    w.kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    w.kv_u32("llama.rope.dimension_count", head_dim);
    w.kv_u32("general.file_type", 0);
    write_llama_tokenizer(w, demo_model_dir() + "/tokenizer.model");
    auto add = [&](const std::string& name, std::vector<int64_t> shape, double scale) {
        const torch::Tensor t = scale > 0 ? torch::randn(shape, gen) * scale : torch::ones(shape);
        w.tensor(name, gguf_ne(t), tF32, f32_bytes(t));
    };
    add("token_embd.weight", {vocab, hidden}, 0.5);
    for (int b = 0; b < blocks; ++b) {
        const std::string g = "blk." + std::to_string(b) + ".";
        add(g + "attn_norm.weight", {hidden}, 0);
        add(g + "attn_q.weight", {hidden, hidden}, 0.09);
        add(g + "attn_k.weight", {kv_heads * head_dim, hidden}, 0.09);
        add(g + "attn_v.weight", {kv_heads * head_dim, hidden}, 0.09);
        add(g + "attn_output.weight", {hidden, hidden}, 0.09);
        add(g + "ffn_norm.weight", {hidden}, 0);
        add(g + "ffn_gate.weight", {ff, hidden}, 0.09);
        add(g + "ffn_up.weight", {ff, hidden}, 0.09);
        add(g + "ffn_down.weight", {hidden, ff}, 0.06);
    }
    add("output_norm.weight", {hidden}, 0);
    return w.build();
}

}  // namespace cloq::test
