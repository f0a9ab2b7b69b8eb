// Opening a model wherever it lives: an HF folder (config.json + safetensors, single or sharded, plus
// tokenizer.model or tokenizer.json) or a single .gguf file. The result is what every command and the GUI use.
#pragma once
#include <memory>
#include <string>

#include "cloq/io/weight_source.h"
#include "cloq/model/model_config.h"
#include "cloq/tokenize/tokenizer.h"

namespace cloq {

struct ModelFiles {
    std::string path;    // the folder or .gguf file the user named
    std::string format;  // "hf" or "gguf"
    ModelConfig config;
    std::shared_ptr<const WeightSource> weights;
    std::shared_ptr<const Tokenizer> tokenizer;  // may be null when the model ships none (then an error on use)
};

// Throws cloq::Error naming the file and the problem (missing config.json, malformed safetensors, ...).
ModelFiles open_model(const std::string& path);

}  // namespace cloq
