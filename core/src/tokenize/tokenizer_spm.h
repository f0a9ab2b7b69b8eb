// SentencePiece tokenizers (Llama 1/2, Mistral, TinyLlama, llama2.c models; GGUF `tokenizer.ggml.model = llama`),
// implemented here because Debian's libsentencepiece cannot share a process with LibTorch (protobuf symbol clash).
// Encoding reproduces libsentencepiece 0.1.97 id for id: normalization (optional precompiled charsmap, whitespace
// collapsing, dummy prefix, spaces -> U+2581), BPE merges by score (leftmost on ties) or Unigram Viterbi, unknown
// characters -> byte pieces <0xNN> (byte fallback) or <unk>. Not supported: WORD/CHAR models,
// treat_whitespace_as_suffix, and the (rare) denormalizer_spec, which decode() does not apply.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cloq/tokenize/tokenizer.h"

namespace cloq {

// Same numbering as ModelProto.SentencePiece.Type and GGUF `tokenizer.ggml.token_type`.
enum class SpmPieceType : int32_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

enum class SpmAlgorithm { Bpe, Unigram };

// Everything encoding and decoding need; read from a .model file or filled from GGUF metadata.
struct SpmModelSpec {
    SpmAlgorithm algorithm = SpmAlgorithm::Bpe;
    std::vector<std::string> pieces;  // id -> piece (U+2581 stands for a space)
    std::vector<float> scores;        // id -> score (BPE: merge priority, Unigram: log probability)
    std::vector<SpmPieceType> types;  // id -> type; exactly one Unknown piece is required
    int32_t bos_id = 1;               // -1 when the model has none
    int32_t eos_id = 2;
    bool byte_fallback = false;            // requires the 256 Byte pieces <0x00>..<0xFF> (GGUF: true when it has them)
    bool add_dummy_prefix = true;          // GGUF tokenizer.ggml.add_space_prefix
    bool remove_extra_whitespaces = true;  // GGUF tokenizer.ggml.remove_extra_whitespaces (absent there = false)
    bool escape_whitespaces = true;
    std::string precompiled_charsmap;            // empty = identity normalization (all Llama-family models)
    std::string unk_surface = " \xE2\x81\x87 ";  // what decode() writes for <unk>
};

class SentencePieceTokenizer : public Tokenizer {
public:
    // Validates the spec (sizes, duplicate or empty pieces, one <unk>, byte pieces, special ids); `source` names
    // where it came from (a file path, "GGUF file x.gguf") in every error message.
    SentencePieceTokenizer(SpmModelSpec spec, std::string source);
    ~SentencePieceTokenizer() override;
    SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;  // the maps view into spec_
    SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

    std::vector<int32_t> encode(const std::string& text, bool add_bos) const override;
    // Control pieces (BOS/EOS) decode to nothing, byte pieces are reassembled (ill-formed bytes -> U+FFFD), the
    // dummy-prefix space of the first piece is dropped. Throws cloq::Error for an id outside the vocabulary.
    std::string decode(const std::vector<int32_t>& ids) const override;
    int64_t vocab_size() const override { return static_cast<int64_t>(spec_.pieces.size()); }
    int32_t bos_id() const override { return spec_.bos_id; }
    int32_t eos_id() const override { return spec_.eos_id; }
    std::string kind() const override;

    const SpmModelSpec& spec() const { return spec_; }
    int32_t unk_id() const { return unk_id_; }
    // The normalized text the model segments (exposed for tests and diagnostics).
    std::string normalize(std::string_view text) const;
    // id of a piece string, or unk_id() when it is not in the vocabulary.
    int32_t piece_to_id(std::string_view piece) const;

private:
    struct EncodedPiece {
        std::string_view piece;
        int32_t id;
    };
    std::vector<EncodedPiece> encode_bpe(std::string_view normalized) const;
    void bpe_segment(std::string_view normalized, std::vector<EncodedPiece>& out) const;
    std::size_t symbol_length(std::string_view text, bool& frozen) const;
    std::vector<EncodedPiece> encode_unigram(std::string_view normalized) const;
    std::size_t match_user_defined(std::string_view text, bool& found) const;
    std::pair<std::string_view, std::size_t> normalize_prefix(std::string_view input) const;

    SpmModelSpec spec_;
    std::string source_;
    int32_t unk_id_ = -1;
    std::unordered_map<std::string_view, int32_t> pieces_;    // Normal, UserDefined, Unused: what segmentation sees
    std::unordered_map<std::string_view, int32_t> reserved_;  // Unknown, Control, Byte
    std::vector<std::string> user_defined_;                   // matched whole before segmentation
    std::unordered_set<std::string_view> piece_bigrams_;      // BPE: adjacent symbol pairs inside pieces
    bool has_unused_ = false;
    int32_t byte_ids_[256];
    // Unigram: every prefix of every segmentable piece, so the lattice scan stops early (what a trie gives).
    std::unordered_map<std::string_view, bool> unigram_prefixes_;
    float min_score_ = 0, max_score_ = 0;
    struct Charsmap;
    std::unique_ptr<Charsmap> charsmap_;
};

// Parses a SentencePiece ModelProto (the `tokenizer.model` file format). `source` names the file in errors.
SpmModelSpec parse_sentencepiece_model(std::string_view bytes, const std::string& source);

// Reads and parses `path`; throws cloq::Error naming the file for a missing, truncated or malformed model.
std::shared_ptr<Tokenizer> load_sentencepiece(const std::string& path);

// GGUF `tokenizer.ggml.model = llama` (SentencePiece BPE): tokens, scores (empty = all 0), token types (empty = all
// normal; same numbering as SpmPieceType), BOS/EOS (-1 if absent), tokenizer.ggml.unknown_token_id (used when no
// token is typed unknown), tokenizer.ggml.add_space_prefix (GGUF default true) and
// tokenizer.ggml.remove_extra_whitespaces (GGUF default false). Byte fallback is on when there are byte tokens.
std::shared_ptr<Tokenizer> make_gguf_spm_tokenizer(std::vector<std::string> tokens, std::vector<float> scores,
                                                   const std::vector<int32_t>& token_types, int32_t bos_id,
                                                   int32_t eos_id, int32_t unk_id, bool add_space_prefix,
                                                   bool remove_extra_whitespaces, const std::string& source);

}  // namespace cloq
