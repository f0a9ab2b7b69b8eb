// PEFT LoRA adapters (docs/design.md, File formats): adapter_config.json + adapter_model.safetensors as PEFT's
// PeftModel.from_pretrained reads them, and the reverse (cloq eval --adapter).
//
// Scaling: PEFT's effective weight is Q + s·lora_B·lora_A with s = lora_alpha / r. The solver's factors already give
// the wanted weight Q + B·A, so the saved lora_A is A / s: for any lora_alpha the loaded model has exactly the solved
// weight (PEFT's own LoftQ path ignores s; docs/design.md, CLoQ step 7).
//
// Config keys are only long-standing ones (an older PEFT refuses unknown keys): peft_type, task_type,
// base_model_name_or_path, r, lora_alpha, lora_dropout, target_modules, bias, fan_in_fan_out, init_lora_weights,
// inference_mode, modules_to_save; rank_pattern / alpha_pattern (PEFT ≥ 0.6) only when ranks or alphas differ
// between modules. Pattern keys drop the leading "model." ("layers.3.mlp.down_proj"): PEFT matches them as regexes
// with "(.*\.)?KEY$" (≥ 0.7.1) or ".*\.KEY$" (0.6–0.7), and both accept that form.
#pragma once
#include <torch/types.h>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cloq/io/weight_source.h"
#include "cloq/lowrank/lowrank.h"

namespace cloq {

struct PeftModuleInfo {
    std::string module;  // HF module name, e.g. "model.layers.0.self_attn.q_proj"
    int64_t rank = 0;    // 0 = no adapter on this module
    double lora_alpha = 16;
};

// "base_model.model.<module>.lora_A.weight" (which = 'A') / "...lora_B.weight" (which = 'B').
std::string peft_tensor_name(const std::string& module, char which);

// The saved factors for PEFT: lora_A / s and lora_B, in `dtype` (s = lora_alpha / rank).
LowRank peft_saved_factors(const LowRank& solved, double lora_alpha, torch::ScalarType dtype = torch::kFloat32);

// The exact arithmetic every reader here uses (so an in-memory export and the files agree bit for bit):
// lora_delta = float32(scaling · B·A computed in float64) from the SAVED factors (float32 copies), and
// merge_lora = float32(W + delta in float64).
torch::Tensor lora_delta(const torch::Tensor& A_saved, const torch::Tensor& B_saved, double scaling);
torch::Tensor merge_lora(const torch::Tensor& W, const torch::Tensor& delta);

// adapter_config.json for these modules. `all_linear_modules` is every linear module name of the model: when the
// adapted modules are exactly those with some set of short names, target_modules is that list ["q_proj", ...],
// otherwise an anchored regex naming each adapted module. Global r / lora_alpha are the most common values; the
// others go to rank_pattern / alpha_pattern. Throws cloq::Error when no module has an adapter.
nlohmann::ordered_json peft_adapter_config(const std::vector<PeftModuleInfo>& modules,
                                           const std::vector<std::string>& all_linear_modules,
                                           const std::string& base_model_name_or_path);

struct PeftModuleAdapter {
    std::string module;
    LowRank solved;  // effective weight Q + B·A (no scaling)
    double lora_alpha = 16;
};

// Writes adapter_config.json and adapter_model.safetensors (metadata format: pt) into the existing folder `dir`,
// each file atomically. Factors are saved in `dtype` (float32 or float16/bfloat16).
void write_peft_adapter(const std::string& dir, const std::vector<PeftModuleAdapter>& modules,
                        const std::vector<std::string>& all_linear_modules, const std::string& base_model_name_or_path,
                        torch::ScalarType dtype = torch::kFloat32);

// An adapter read back (any PEFT LoRA adapter for a Llama-family model, not only ours).
struct PeftAdapter {
    std::string dir;
    nlohmann::ordered_json config;
    struct Module {
        torch::Tensor A, B;  // as saved: lora_A [r, in], lora_B [out, r], float32
        int64_t rank = 0;
        double lora_alpha = 0;
        double scaling = 0;  // lora_alpha / r (or / sqrt(r) with use_rslora)
    };
    std::map<std::string, Module> modules;  // by module name

    // scaling · lora_B · lora_A [out, in] float32 for a module, undefined when it has no adapter.
    torch::Tensor delta(const std::string& module) const;
};

// Validates everything (config keys and types, peft_type LORA, no DoRA / fan_in_fan_out, tensor pairs and shapes,
// ranks against config and patterns); every error names the file and the problem.
PeftAdapter read_peft_adapter(const std::string& dir);

// A model's weights with an adapter merged in: load("<module>.weight") = base + scaling·B·A; everything else
// passes through. Throws naming the adapter when an adapted module does not exist or has another shape.
class AdapterMergedWeights : public WeightSource {
public:
    AdapterMergedWeights(std::shared_ptr<const WeightSource> base, std::shared_ptr<const PeftAdapter> adapter);
    std::vector<std::string> names() const override { return base_->names(); }
    bool contains(const std::string& name) const override { return base_->contains(name); }
    std::vector<int64_t> shape(const std::string& name) const override { return base_->shape(name); }
    std::string dtype(const std::string& name) const override { return base_->dtype(name); }
    torch::Tensor load(const std::string& name) const override;
    std::string describe() const override;

private:
    std::shared_ptr<const WeightSource> base_;
    std::shared_ptr<const PeftAdapter> adapter_;
};

}  // namespace cloq
