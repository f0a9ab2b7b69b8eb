// The tokenizer a GGUF file describes in its `tokenizer.ggml.*` metadata:
//   `llama` (tokens + scores + token_type: SentencePiece BPE with byte fallback, as Llama 1/2, Mistral, TinyLlama),
//   `gpt2`  (tokens + merges + token_type + pre: byte-level BPE, as GPT-2, Llama 3, Qwen2, SmolLM2).
// BOS/EOS from tokenizer.ggml.bos_token_id / eos_token_id.
#pragma once
#include <memory>

#include "cloq/tokenize/tokenizer.h"
#include "io/gguf.h"
#include "tokenize/tokenizer_spm.h"

namespace cloq {

// nullptr when the file has no `tokenizer.ggml.model`; cloq::Error naming the file for an unsupported model kind
// or inconsistent metadata (array lengths that disagree, ids outside the vocabulary, ...).
std::shared_ptr<Tokenizer> tokenizer_from_gguf(const GgufFile& f);

// The pieces of the two kinds, as read from the metadata (validated for length and id range); used by
// tokenizer_from_gguf and by the HF tokenizer-file writer (gguf_hf_export.h).
SpmModelSpec sentencepiece_spec_from_gguf(const GgufFile& f);  // tokenizer.ggml.model = llama

struct GgufBpeVocab {  // tokenizer.ggml.model = gpt2
    std::vector<std::string> tokens;
    std::vector<std::string> merges;  // "left right", in rank order
    std::vector<int32_t> types;       // 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
    int32_t bos_id = -1, eos_id = -1;
    std::string pre;  // tokenizer.ggml.pre ("default" when absent)
};
GgufBpeVocab bpe_vocab_from_gguf(const GgufFile& f);

}  // namespace cloq
