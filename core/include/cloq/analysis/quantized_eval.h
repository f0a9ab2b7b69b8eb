// The quantized model seen by the forward pass: every linear layer's weight replaced by its quantized base plus
// the initialized adapter, Q + B·A (LoRA scaling folded in), solved with the calibration's H of its input group.
// Used by `cloq eval` with quantization options, by the GUI's perplexity panel and by sequential calibration.
#pragma once
#include <map>
#include <memory>
#include <utility>

#include "cloq/analysis/calibration.h"
#include "cloq/lowrank/hessian_factor.h"
#include "cloq/model/llama_model.h"
#include "cloq/model/model_files.h"
#include "cloq/model/perplexity.h"
#include "cloq/settings/profile.h"
#include "cloq/settings/settings.h"

namespace cloq {

// The settings a layer is solved with: the rank capped at min(in, out) (a 64-wide layer cannot take rank 64+).
LayerSettings settings_for_layer(const LayerSettings& s, const LinearLayer& l);

class QuantizedWeights {
public:
    // `init` overrides every module's init (zero = the plain quantized base, QLoRA's starting point). Modules the
    // profile skips keep their float weight.
    QuantizedWeights(ResolvedProfile p, InitMethod init);
    QuantizedWeights(const LayerSettings& s, InitMethod init) : QuantizedWeights(ResolvedProfile(s), init) {}

    // Q + B·A for one layer, float32 [out, in] on the CPU, from W (float32) and the layer's input-group H.
    torch::Tensor effective_weight(const LinearLayer& l, const torch::Tensor& W,
                                   std::shared_ptr<const HessianFactor> h) const;

    // For LlamaModel::set_weight_transform: each layer's H from `cal` (factorized once per block and group).
    // The returned transform keeps references to `cal` and this object: both must outlive its use.
    WeightTransform transform(const Calibration& cal) const;
    // For sequential calibration: replaces a block's linear weights using the Hs just accumulated for it.
    BlockQuantizer block_quantizer(const ModelConfig& c) const;
    // What the result depends on (settings + init), for cache keys.
    std::string key() const;

private:
    ResolvedProfile profile_;
    InitMethod init_;
};

// Perplexity of `files`' model with every linear layer replaced by Q + B·A (per-module settings `p`, init `init`)
// solved on `cal`'s Hs: one fresh model, so the transform's references to `cal` and the weights stay valid while it
// runs.
PerplexityResult quantized_perplexity(const ModelFiles& files, const ResolvedProfile& p, InitMethod init,
                                      const Calibration& cal, const std::vector<int32_t>& tokens,
                                      const PerplexityOptions& opt, const Progress& progress = {});

// The float model's perplexity and the quantized model's with zero / LoftQ / CLoQ adapters under the same
// per-module settings: what the GUI's overview shows and `cloq eval --profile` reproduces cell by cell.
struct InitPerplexities {
    double fp = 0, zero = 0, loftq = 0, cloq = 0;
    int64_t windows = 0;
    int seqlen = 0;
    double seconds = 0;
};
InitPerplexities init_perplexities(const ModelFiles& files, const ResolvedProfile& p, const Calibration& cal,
                                   const std::vector<int32_t>& tokens, const PerplexityOptions& opt,
                                   const Progress& progress = {});

}  // namespace cloq
