// Text <-> token ids. Implementations: SentencePiece models (tokenizer.model, GGUF "llama"), byte-level BPE
// (HF tokenizer.json, GGUF "gpt2"). Chosen by what the model folder or file holds.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace cloq {

class Tokenizer {
public:
    virtual ~Tokenizer() = default;
    virtual std::vector<int32_t> encode(const std::string& text, bool add_bos) const = 0;
    virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
    virtual int64_t vocab_size() const = 0;
    virtual int32_t bos_id() const = 0;  // -1 when the model has none
    virtual int32_t eos_id() const = 0;
    virtual std::string kind() const = 0;  // e.g. "sentencepiece BPE (512 pieces)"
};

}  // namespace cloq
