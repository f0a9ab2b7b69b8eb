// What an HF model folder carries besides the weights, written from a GGUF file's metadata, so that exports of a
// GGUF model (PEFT adapter + GPTQ/fp16 base) load in transformers like exports of an HF folder:
//   tokenizer `llama` -> tokenizer.model (a SentencePiece ModelProto: pieces, scores, types, BPE, byte fallback),
//   tokenizer `gpt2`  -> tokenizer.json (HF tokenizers BPE with the pre-tokenizer of tokenizer.ggml.pre),
//   both              -> tokenizer_config.json (BOS/EOS/UNK tokens, add_bos_token, chat_template, max length).
// The HF config.json comes from model_config_to_hf_json(model_config_from_gguf(file)).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/gguf.h"

namespace cloq {

// Writes the tokenizer files into the existing folder `dir` (each atomically); returns the names written (empty
// when the GGUF has no tokenizer metadata). cloq::Error naming the GGUF file for metadata it cannot express.
std::vector<std::string> write_hf_tokenizer_files(const GgufFile& f, const std::string& dir);
// The same for a .gguf path (what ModelFiles::path holds for a GGUF model).
std::vector<std::string> write_hf_tokenizer_files(const std::string& gguf_path, const std::string& dir);

// generation_config.json for a GGUF model: its BOS / EOS (and padding) token ids, as transformers would derive
// them from an HF folder's config.
nlohmann::ordered_json generation_config_from_gguf(const GgufFile& f);

// The SentencePiece ModelProto bytes for a GGUF `llama` tokenizer (exposed for tests).
std::string sentencepiece_model_from_gguf(const GgufFile& f);

}  // namespace cloq
