// GPTQ checkpoints (docs/design.md, File formats), the format GPTQModel / AutoGPTQ / transformers load: per quantized
// linear
// `<module>.qweight/.qzeros/.scales/.g_idx` (gptq_pack.h), every other tensor copied, `quantize_config.json` and
// `config.json["quantization_config"]` (bits, group_size, desc_act, sym, damp_percent, static_groups,
// true_sequential, quant_method "gptq", checkpoint_format "gptq"/"gptq_v2", and `dynamic` for per-module bits/groups
// and "-:" entries for modules left unquantized), tokenizer files copied.
//
// The reader (GptqCheckpointWeights) is a WeightSource that dequantizes on load, so `cloq eval --gptq` and
// `cloq dequantize` see a plain model.
#pragma once
#include <torch/types.h>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cloq/base/progress.h"
#include "cloq/export/gptq_pack.h"
#include "cloq/io/safetensors.h"
#include "cloq/io/safetensors_stream.h"
#include "cloq/io/weight_source.h"

namespace cloq {

struct GptqExportConfig {
    int bits = 2;
    int group_size = 64;    // -1 = per channel
    bool desc_act = false;  // act-order
    bool sym = false;
    double damp_percent = 0.01;
    bool static_groups = false;
    bool true_sequential = true;
    GptqFormat format = GptqFormat::V1;
};

// How one linear module is stored: quantized with its own bits/group (the global ones unless a profile overrode
// them), or left as a float weight (unpackable shape, or excluded).
struct GptqModuleInfo {
    std::string module;  // "model.layers.0.mlp.down_proj"
    bool quantized = true;
    int bits = 2;
    int group_size = 64;
    bool sym = false;       // written into `dynamic` only when it differs from the global value
    bool desc_act = false;  // likewise
};

// The quantization_config object: the global values plus `dynamic` ("+:^(?:a|b)$": {"bits": 3, "group_size": 64}
// for modules that differ, plus "sym"/"desc_act" when those differ; "-:^(?:c)$": {} for unquantized ones); no
// `dynamic` key when nothing differs. Module names are regex-escaped and anchored.
// Also: `format` beside `checkpoint_format`, a `meta` block (quantizer, damp_percent, static_groups,
// true_sequential) and `modules_in_block_to_quantize` (the suffixes quantized in every block, for transformers +
// optimum, which do not read `dynamic`). `notices` gets a line per suffix those loaders cannot express.
nlohmann::ordered_json gptq_quantization_config(const GptqExportConfig& global,
                                                const std::vector<GptqModuleInfo>& modules,
                                                std::vector<std::string>* notices = nullptr);

// config.json for the checkpoint: the source model's config.json object with quantization_config added and
// torch_dtype "float16".
nlohmann::ordered_json gptq_model_config(const nlohmann::ordered_json& source_config,
                                         const nlohmann::ordered_json& quantization_config);

// The four safetensors entries of a packed module, named "<module>.qweight" etc.
std::vector<SafetensorsEntry> gptq_entries(const std::string& module, const GptqTensors& t);

// Writes a whole checkpoint into the existing folder `dir`: config.json (gptq_model_config), quantize_config.json and
// model.safetensors (streamed from `tensors`, metadata format pt). Tokenizer files are the caller's
// (copy_tokenizer_files).
void write_gptq_checkpoint(const std::string& dir, const nlohmann::ordered_json& source_config,
                           const nlohmann::ordered_json& quantization_config,
                           const std::vector<SafetensorsEntry>& tensors, const Progress& progress = {});

// Copies tokenizer.model / tokenizer.json / tokenizer_config.json / special_tokens_map.json / added_tokens.json /
// generation_config.json from a model folder when present, and writes a tokenizer_config.json for a folder that has
// only a SentencePiece tokenizer.model (so AutoTokenizer reads it as Llama's). Returns the names written.
std::vector<std::string> copy_tokenizer_files(const std::string& src_dir, const std::string& dst_dir);

// Reads a JSON file (object) with a message naming the file on failure.
nlohmann::ordered_json read_json_file(const std::string& path);
void write_json_file_atomic(const std::string& path, const nlohmann::ordered_json& j);

// A GPTQ checkpoint folder as a plain float model. names() lists "<module>.weight" for every quantized module
// (instead of its packed tensors) plus every other tensor; load() dequantizes (float32) or passes through.
// Validates the config (quant_method gptq, bits, checkpoint_format) and each module's tensors against it; errors
// name the file and module.
class GptqCheckpointWeights : public WeightSource {
public:
    explicit GptqCheckpointWeights(const std::string& dir);

    std::vector<std::string> names() const override;
    bool contains(const std::string& name) const override;
    std::vector<int64_t> shape(const std::string& name) const override;
    std::string dtype(const std::string& name) const override;
    torch::Tensor load(const std::string& name) const override;
    std::string describe() const override;

    struct Module {
        int bits = 0;
        int group_size = 0;
        int64_t out = 0, in = 0;
    };
    const std::map<std::string, Module>& quantized_modules() const { return modules_; }
    GptqFormat format() const { return format_; }
    const nlohmann::ordered_json& quantization_config() const { return qcfg_; }
    // The packed tensors of a module, unpacked (codes, zeros, scales, g_idx, Q).
    QuantizedWeight unpack(const std::string& module) const;

private:
    std::string dir_;
    std::shared_ptr<SafetensorsWeights> st_;
    nlohmann::ordered_json qcfg_;
    GptqFormat format_ = GptqFormat::V1;
    bool sym_ = false;
    std::map<std::string, Module> modules_;
};

// The settings a GPTQ `dynamic` map gives module `module` (GPTQModel semantics: the first matching "-:" pattern
// excludes it; "+:"/plain patterns override bits/group_size; re.match = anchored at the start). Returns false when
// excluded. Throws naming `where` for an invalid regex.
bool gptq_dynamic_lookup(const nlohmann::ordered_json& dynamic, const std::string& module, int& bits, int& group_size,
                         const std::string& where);

}  // namespace cloq
