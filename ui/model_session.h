// An opened model with its calibration: the model files, its linear layers and the calibration Hessians, built
// once by a background job and then shared read-only (shared_ptr<const>) with the worker threads.
#pragma once
#include <QString>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cloq/analysis/calibration.h"
#include "cloq/base/progress.h"
#include "cloq/model/model_files.h"
#include "cloq/model/model_layout.h"
#include "cloq/settings/profile.h"
#include "cloq/settings/settings.h"
#include "layer_report.h"
#include "layer_worker.h"

namespace cloq::ui {

struct CalibrationStore;  // the engine's calibration result (opaque here)

class ModelSession {
public:
    QString dir;
    ModelFiles files;
    CalibSettings calib;
    std::vector<LinearLayer> layers;  // model order: block by block, q k v o gate up down
    double open_seconds = 0, calibration_seconds = 0;
    bool calibration_from_cache = false;
    std::vector<std::string> notices;  // from calibration, e.g. "seqlen capped at 512"

    const LinearLayer* layer(const std::string& name) const;
    // W and H of a layer, for the layer worker (H shared by all layers of the same block and input group).
    LayerSource source(const std::string& name) const;
    torch::Tensor weight(const std::string& name) const;
    torch::Tensor hessian(const LinearLayer& l) const;
    const Calibration& calibration_data() const;  // every H, for whole-model work (perplexity, fine-tuning)
    std::string describe() const;                 // one line for the status bar

    std::shared_ptr<const CalibrationStore> calibration;
};

// Opens `dir` and calibrates (reusing the on-disk H cache when it matches). Throws cloq::Error / cloq::Cancelled.
std::shared_ptr<const ModelSession> open_model_session(const QString& dir, const CalibSettings& calib,
                                                       const Progress& progress);

// Whole-model analysis under per-layer settings (core's analyze_model: the numbers of `cloq analyze --profile`):
// every linear layer quantized and solved (zero, SVD, LoftQ, CLoQ), one callback per finished layer (on the calling
// thread). Modules the profile skips are not analysed.
struct LayerMetricsRecord {
    std::string name;
    MethodMetrics zero, svd, loftq, cloq;
    double seconds = 0;
};
void analyze_all_layers(const ModelSession& session, const ResolvedProfile& profile,
                        const std::function<void(const LayerMetricsRecord&)>& on_layer, const Progress& progress);

// Perplexity of the float model and of the quantized model with zero / LoftQ / CLoQ adapters under per-layer
// settings (core's init_perplexities), on the first windows of the calibration text (the protocol of `cloq eval`).
PerplexitySummary compute_perplexities(const ModelSession& session, const ResolvedProfile& profile,
                                       const Progress& progress);

// Default calibration for a model: the demo's text and the demo size (32 × 256) when nothing else was chosen.
CalibSettings default_calibration(const QString& text_path);

}  // namespace cloq::ui
