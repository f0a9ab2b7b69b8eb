// Whole-model analysis: every linear layer quantized once under its settings (one setting for all, or a profile's
// per-module settings) and initialized with each of the compared methods (zero, svd, loftq, cloq by default) on the
// calibration's H, with the discrepancy metrics of `cloq layer` and timings. This is the data behind `cloq analyze`,
// the GUI's explorer and overview, and the export report: every front end gets the same numbers from here.
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "cloq/analysis/calibration.h"
#include "cloq/base/progress.h"
#include "cloq/lowrank/metrics.h"
#include "cloq/model/llama_model.h"
#include "cloq/model/model_layout.h"
#include "cloq/settings/profile.h"
#include "cloq/settings/settings.h"

namespace cloq {

struct LayerAnalysis {
    LinearLayer layer;
    LayerSettings settings;                     // as solved (rank capped at min(in, out))
    std::map<InitMethod, Discrepancy> metrics;  // ‖X Dᵀ‖ with the unregularized H, absolute and relative
    std::map<InitMethod, double> hlambda;       // sqrt(tr(D H_λ Dᵀ)): the objective CLoQ minimizes
    double cloq_optimal = 0;                    // sqrt(Σ_{i>r} S_i²), equals hlambda[cloq] (Algorithm 1's check)
    std::map<std::string, double> timings;      // seconds per solver stage, plus "total"
};

struct AnalysisOptions {
    ResolvedProfile profile;  // per-module settings (ResolvedProfile(s): s for every module); skipped ones are left out
    std::vector<InitMethod> inits = {InitMethod::Zero, InitMethod::Svd, InitMethod::Loftq, InitMethod::Cloq};
    std::string layer_regex;  // ECMAScript regex searched in the layer name ("model.layers.3.self_attn.q_proj")
    bool spectral = true;     // also the spectral norms (a Lanczos run per init and layer)
    std::function<void(const LayerAnalysis&)> on_layer;  // called as each layer is done (on the calling thread)
};

struct ModelAnalysis {
    std::string model;
    ResolvedProfile profile;
    std::vector<InitMethod> inits;
    std::vector<LayerAnalysis> layers;
    double seconds = 0;
};

// Layers whose names match the regex (all when empty); throws cloq::Error for an invalid regex or no match.
std::vector<LinearLayer> select_layers(const ModelConfig& c, const std::string& regex);

ModelAnalysis analyze_model(const LlamaModel& model, const Calibration& cal, const AnalysisOptions& opt,
                            const Progress& progress = {});

// Report forms: JSON (settings, per-layer records) and CSV (one row per layer and init).
nlohmann::json to_json(const LayerAnalysis& a);
nlohmann::json to_json(const ModelAnalysis& a);
std::string to_csv(const ModelAnalysis& a);

}  // namespace cloq
