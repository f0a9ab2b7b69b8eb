// GGUF tokenizer metadata -> the SentencePiece and byte-level BPE tokenizers of tokenizer_spm / tokenizer_bpe.
// The metadata layout is what llama.cpp's convert_hf_to_gguf.py writes (gguf-py's GGUFWriter.add_tokenizer_*).
#include "tokenize/gguf_tokenizer.h"

#include <limits>

#include "cloq/base/error.h"
#include "tokenize/tokenizer_bpe.h"
#include "tokenize/tokenizer_spm.h"

namespace cloq {

namespace {

std::optional<int32_t> token_id(const GgufFile& f, const std::string& key, size_t vocab) {
    auto v = f.find_int(key);
    if (!v) return std::nullopt;
    if (*v < 0 || static_cast<uint64_t>(*v) >= vocab) {
        throw Error(f.path() + ": metadata key '" + key + "' is " + std::to_string(*v) +
                    ", outside the vocabulary of " + std::to_string(vocab) + " tokens");
    }
    return static_cast<int32_t>(*v);
}

// tokenizer.ggml.token_type (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte), empty if absent.
std::vector<int32_t> token_types(const GgufFile& f, size_t vocab) {
    const GgufValue* v = f.find("tokenizer.ggml.token_type");
    if (!v) return {};
    std::vector<int64_t> t;
    try {
        t = v->int_array();
    } catch (const Error& e) {
        throw Error(f.path() + ": metadata key 'tokenizer.ggml.token_type' " + e.what());
    }
    if (t.size() != vocab) {
        throw Error(f.path() + ": tokenizer.ggml.token_type has " + std::to_string(t.size()) + " entries for " +
                    std::to_string(vocab) + " tokens");
    }
    std::vector<int32_t> out(t.size());
    for (size_t i = 0; i < t.size(); ++i) {
        if (t[i] < 0 || t[i] > 6) {
            throw Error(f.path() + ": tokenizer.ggml.token_type of token " + std::to_string(i) + " is " +
                        std::to_string(t[i]) + " (expected 0 to 6)");
        }
        out[i] = static_cast<int32_t>(t[i]);
    }
    return out;
}

bool is_byte_piece(const std::string& p) {
    auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
    return p.size() == 6 && p.compare(0, 3, "<0x") == 0 && hex(p[3]) && hex(p[4]) && p[5] == '>';
}

const std::vector<std::string>& gguf_tokens(const GgufFile& f) {
    const auto& tokens = f.get_array("tokenizer.ggml.tokens", GgufValueType::String).string_array();
    if (tokens.empty()) throw Error(f.path() + ": tokenizer.ggml.tokens is empty");
    if (tokens.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
        throw Error(f.path() + ": tokenizer.ggml.tokens has too many entries");
    }
    return tokens;
}

}  // namespace

SpmModelSpec sentencepiece_spec_from_gguf(const GgufFile& f) {
    const auto& tokens = gguf_tokens(f);
    const size_t n = tokens.size();
    SpmModelSpec spec;
    spec.algorithm = SpmAlgorithm::Bpe;  // llama.cpp's "llama" vocab is SentencePiece BPE (merge by score)
    spec.pieces = tokens;
    if (const GgufValue* s = f.find("tokenizer.ggml.scores")) {
        std::vector<double> d;
        try {
            d = s->double_array();
        } catch (const Error& e) {
            throw Error(f.path() + ": metadata key 'tokenizer.ggml.scores' " + e.what());
        }
        if (d.size() != n) {
            throw Error(f.path() + ": tokenizer.ggml.scores has " + std::to_string(d.size()) + " entries for " +
                        std::to_string(n) + " tokens");
        }
        spec.scores.assign(d.begin(), d.end());
    } else {
        throw Error(f.path() + ": tokenizer.ggml.model is 'llama' but tokenizer.ggml.scores is missing");
    }
    const auto types = token_types(f, n);
    spec.types.resize(n, SpmPieceType::Normal);
    bool has_byte = false;
    for (size_t i = 0; i < n; ++i) {
        // 0 (undefined) counts as normal, as in llama.cpp
        spec.types[i] = types.empty() || types[i] == 0 ? SpmPieceType::Normal : static_cast<SpmPieceType>(types[i]);
        if (types.empty() && is_byte_piece(tokens[i])) spec.types[i] = SpmPieceType::Byte;
        has_byte = has_byte || spec.types[i] == SpmPieceType::Byte;
    }
    // Files without token types (or without an Unknown one) name the <unk> id instead.
    if (auto unk = token_id(f, "tokenizer.ggml.unknown_token_id", n)) {
        bool any_unknown = false;
        for (auto t : spec.types) any_unknown = any_unknown || t == SpmPieceType::Unknown;
        if (!any_unknown) spec.types[*unk] = SpmPieceType::Unknown;
    }
    spec.byte_fallback = has_byte;
    spec.bos_id = token_id(f, "tokenizer.ggml.bos_token_id", n).value_or(-1);
    spec.eos_id = token_id(f, "tokenizer.ggml.eos_token_id", n).value_or(-1);
    spec.add_dummy_prefix = f.find_bool("tokenizer.ggml.add_space_prefix").value_or(true);
    spec.remove_extra_whitespaces = f.find_bool("tokenizer.ggml.remove_extra_whitespaces").value_or(false);
    spec.escape_whitespaces = true;
    return spec;
}

GgufBpeVocab bpe_vocab_from_gguf(const GgufFile& f) {
    GgufBpeVocab v;
    v.tokens = gguf_tokens(f);
    v.merges = f.get_array("tokenizer.ggml.merges", GgufValueType::String).string_array();
    v.types = token_types(f, v.tokens.size());
    if (v.types.empty()) v.types.assign(v.tokens.size(), 1);
    v.bos_id = token_id(f, "tokenizer.ggml.bos_token_id", v.tokens.size()).value_or(-1);
    v.eos_id = token_id(f, "tokenizer.ggml.eos_token_id", v.tokens.size()).value_or(-1);
    v.pre = f.find_string("tokenizer.ggml.pre").value_or("default");
    return v;
}

std::shared_ptr<Tokenizer> tokenizer_from_gguf(const GgufFile& f) {
    const auto model = f.find_string("tokenizer.ggml.model");
    if (!model) return nullptr;
    const std::string source = f.path() + " (tokenizer.ggml.* metadata)";
    if (*model == "llama") return std::make_shared<SentencePieceTokenizer>(sentencepiece_spec_from_gguf(f), source);
    if (*model == "gpt2") {
        GgufBpeVocab v = bpe_vocab_from_gguf(f);
        return make_gguf_bpe_tokenizer(std::move(v.tokens), v.merges, v.types, v.bos_id, v.eos_id, v.pre, source);
    }
    throw Error(f.path() + ": tokenizer.ggml.model '" + *model + "' is not supported (supported: llama, gpt2)");
}

}  // namespace cloq
