#include "cloq/export/exported_model.h"

#include <torch/torch.h>

#include <filesystem>

#include "cloq/base/error.h"
#include "cloq/export/gptq_checkpoint.h"
#include "cloq/io/safetensors.h"
#include "cloq/io/safetensors_stream.h"
#include "cloq/model/model_layout.h"
#include "export/peft_export.h"

namespace fs = std::filesystem;

namespace cloq {

std::shared_ptr<const WeightSource> open_base_weights(const std::string& base_dir) {
    if (!fs::is_directory(base_dir)) throw Error("base folder " + base_dir + " does not exist");
    bool gptq = fs::exists(fs::path(base_dir) / "quantize_config.json");
    const auto cfg_path = fs::path(base_dir) / "config.json";
    if (!gptq && fs::exists(cfg_path)) gptq = read_json_file(cfg_path.string()).contains("quantization_config");
    if (gptq) return std::make_shared<GptqCheckpointWeights>(base_dir);
    return std::make_shared<SafetensorsWeights>(base_dir);
}

ModelFiles open_exported_model(const std::string& model_path, const std::string& base_dir,
                               const std::string& adapter_dir) {
    ModelFiles m = open_model(model_path);
    std::string where = model_path;
    if (!base_dir.empty()) {
        m.weights = open_base_weights(base_dir);
        where = base_dir;
    }
    if (!adapter_dir.empty()) {
        auto adapter = std::make_shared<PeftAdapter>(read_peft_adapter(adapter_dir));
        m.weights = std::make_shared<AdapterMergedWeights>(m.weights, adapter);
    }
    check_weights(m.config, *m.weights, where);
    return m;
}

void write_fp16_model(const std::string& dir, const WeightSource& weights, const nlohmann::ordered_json& config,
                      const Progress& progress) {
    std::vector<SafetensorsEntry> entries;
    for (const auto& name : weights.names()) {
        entries.push_back({name, torch::kFloat16, weights.shape(name),
                           [&weights, name] { return weights.load(name).to(torch::kFloat16); }});
    }
    write_safetensors_streamed((fs::path(dir) / "model.safetensors").string(), entries, {{"format", "pt"}}, progress);
    auto c = config;
    c.erase("quantization_config");
    c["torch_dtype"] = "float16";
    write_json_file_atomic((fs::path(dir) / "config.json").string(), c);
}

}  // namespace cloq
