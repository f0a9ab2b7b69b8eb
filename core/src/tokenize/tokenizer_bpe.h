// Byte-level BPE tokenizers (GPT-2, Llama 3, Qwen2, SmolLM/SmolLM2): HF tokenizer.json with `model.type = BPE`
// and a ByteLevel pre-tokenizer, or GGUF `tokenizer.ggml.model = gpt2`. Encoding follows HF tokenizers: added /
// special tokens are matched in the raw text first (leftmost, longest), the rest is split by the model family's
// pre-tokenizer regex (a hand-written scanner over Unicode categories: std::regex has no \p{L}), each piece's
// UTF-8 bytes are mapped to GPT-2's printable byte alphabet and merged by rank (lowest first, leftmost on ties).
// Not supported (clear error): normalizers, Metaspace (SentencePiece-style) tokenizer.json files, word suffixes.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cloq/tokenize/tokenizer.h"

namespace cloq {

// Which split regex the model family uses.
enum class BpePreTokenizer {
    Gpt2,    // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    Llama3,  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
             // ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    Qwen2,   // as Llama3 with single digits (\p{N})
    SmolLM,  // every \p{N} on its own (HF Digits(individual_digits)), then Gpt2 (StarCoder / SmolLM / SmolLM2)
};
const char* to_string(BpePreTokenizer p);

// Splits text as the pre-tokenizer regex would (pieces are views into `text`; their concatenation is `text`).
// Ill-formed UTF-8 bytes count as punctuation, so any byte string round-trips.
std::vector<std::string_view> pre_tokenize(std::string_view text, BpePreTokenizer kind);

// GGUF `tokenizer.ggml.pre` -> pre-tokenizer ("gpt2"/"default", "llama3"/"llama-bpe", "qwen2", "smollm"/"starcoder").
BpePreTokenizer parse_gguf_pre_tokenizer(const std::string& name, const std::string& source);

// GPT-2's reversible map from bytes to printable code points (bytes_to_unicode), as UTF-8 strings.
const std::string& byte_to_unicode(uint8_t b);

struct BpeAddedToken {
    std::string content;  // matched verbatim in the text
    int32_t id = -1;
    bool special = true;  // special tokens are left out by decode()
    bool lstrip = false;  // also swallows whitespace on its left / right
    bool rstrip = false;
    bool single_word = false;  // only where it is not part of a longer word
    bool normalized = false;   // HF: matched in a second pass (no normalizer here, so only the order differs)
};

struct ByteBpeSpec {
    std::vector<std::string> tokens;                          // id -> token in the byte_to_unicode alphabet
    std::vector<std::pair<std::string, std::string>> merges;  // in rank order; both parts and their join are tokens
    std::vector<BpeAddedToken> added;
    BpePreTokenizer pre = BpePreTokenizer::Gpt2;
    bool add_prefix_space = false;  // ByteLevel(add_prefix_space): a space before text that does not start with one
    bool ignore_merges = false;     // a whole pre-token that is in the vocabulary is taken as is (Llama 3)
    int32_t bos_id = -1, eos_id = -1, unk_id = -1;
};

class ByteLevelBpeTokenizer : public Tokenizer {
public:
    // Validates the spec (duplicate tokens, merges whose parts or result are not tokens, ids out of range);
    // `source` names the file in every error message.
    ByteLevelBpeTokenizer(ByteBpeSpec spec, std::string source);
    ByteLevelBpeTokenizer(const ByteLevelBpeTokenizer&) = delete;  // the maps view into spec_
    ByteLevelBpeTokenizer& operator=(const ByteLevelBpeTokenizer&) = delete;

    // Throws cloq::Error if a byte has no token and there is no unk token.
    std::vector<int32_t> encode(const std::string& text, bool add_bos) const override;
    // Special added tokens are left out; byte sequences that are not valid UTF-8 become U+FFFD (as HF does).
    // Throws cloq::Error for an id outside the vocabulary.
    std::string decode(const std::vector<int32_t>& ids) const override;
    int64_t vocab_size() const override { return static_cast<int64_t>(id_to_token_.size()); }
    int32_t bos_id() const override { return spec_.bos_id; }
    int32_t eos_id() const override { return spec_.eos_id; }
    std::string kind() const override;

    const ByteBpeSpec& spec() const { return spec_; }
    int32_t token_to_id(std::string_view token) const;  // -1 if absent

private:
    struct AddedMatch {
        std::size_t begin, end;  // the bytes the match consumes (with stripped whitespace)
        int32_t id;
    };
    void split_added(std::string_view text, std::vector<std::pair<std::string_view, int32_t>>& out) const;
    void encode_word(std::string_view word, std::vector<int32_t>& out) const;

    ByteBpeSpec spec_;
    std::string source_;
    std::vector<std::string> id_to_token_;  // vocabulary and added tokens
    std::unordered_map<std::string_view, int32_t> vocab_;
    std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // (left id, right id) -> (rank, merged id)
    std::vector<int32_t> byte_ids_;                                     // byte -> id of its single-char token
    std::vector<bool> is_special_;
    std::vector<std::vector<int32_t>> added_by_first_byte_[2];  // [normalized] -> first byte -> added index
};

// Reads an HF tokenizer.json (and, for BOS/EOS, a tokenizer_config.json next to it if there is one). Throws
// cloq::Error naming the file for malformed JSON, a non-BPE model, or an unsupported normalizer/pre-tokenizer.
std::shared_ptr<Tokenizer> load_hf_tokenizer_json(const std::string& path);

// GGUF `tokenizer.ggml.model = gpt2`: tokens, merges ("a b" strings), token types (1 normal, 2 unknown, 3 control,
// 4 user-defined, 5 unused, 6 byte; control and user-defined tokens are matched as added tokens), BOS/EOS ids
// (-1 if absent) and `tokenizer.ggml.pre`.
std::shared_ptr<Tokenizer> make_gguf_bpe_tokenizer(std::vector<std::string> tokens,
                                                   const std::vector<std::string>& merges,
                                                   const std::vector<int32_t>& token_types, int32_t bos_id,
                                                   int32_t eos_id, const std::string& pre, const std::string& source);

}  // namespace cloq
