// The tokenizer a GGUF file describes in its `tokenizer.ggml.*` metadata:
//   `llama` (tokens + scores + token_type: SentencePiece BPE with byte fallback, as Llama 1/2, Mistral, TinyLlama),
//   `gpt2`  (tokens + merges + token_type + pre: byte-level BPE, as GPT-2, Llama 3, Qwen2, SmolLM2).
// BOS/EOS from tokenizer.ggml.bos_token_id / eos_token_id.
#pragma once
#include <memory>

#include "cloq/gguf.h"
#include "cloq/tokenizer.h"

namespace cloq {

// nullptr when the file has no `tokenizer.ggml.model`; cloq::Error naming the file for an unsupported model kind
// or inconsistent metadata (array lengths that disagree, ids outside the vocabulary, ...).
std::shared_ptr<Tokenizer> tokenizer_from_gguf(const GgufFile& f);

}  // namespace cloq
