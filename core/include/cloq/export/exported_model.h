// Reading an export back as a model (`cloq eval --gptq OUT/base --adapter OUT/adapter`, `cloq dequantize`, the
// pipeline's own check): the original model gives the config and tokenizer, the exported base the weights (a GPTQ
// checkpoint, dequantized on load, or a plain safetensors model such as the fp16 base), and a PEFT adapter, when
// given, is merged into them (Q + s·lora_B·lora_A).
#pragma once
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "cloq/base/progress.h"
#include "cloq/model/model_files.h"

namespace cloq {

// A base folder as weights: GptqCheckpointWeights when its config has a GPTQ quantization_config (or it holds a
// quantize_config.json), else SafetensorsWeights. Errors name the folder.
std::shared_ptr<const WeightSource> open_base_weights(const std::string& base_dir);

// model_path: the original model (config + tokenizer). base_dir may be empty (the original weights); adapter_dir
// may be empty. Checks every expected tensor against the config (missing tensor / wrong shape -> cloq::Error).
ModelFiles open_exported_model(const std::string& model_path, const std::string& base_dir,
                               const std::string& adapter_dir);

// Writes `weights` as a plain float16 model into the existing folder `dir`: model.safetensors (every tensor cast to
// float16, streamed), config.json = `config` without quantization_config and with torch_dtype float16.
void write_fp16_model(const std::string& dir, const WeightSource& weights, const nlohmann::ordered_json& config,
                      const Progress& progress = {});

}  // namespace cloq
