#include "model_session.h"

#include <torch/torch.h>

#include <QDir>
#include <QFileInfo>
#include <QStandardPaths>
#include <iomanip>
#include <map>
#include <sstream>

#include "cloq/analysis/analysis.h"
#include "cloq/analysis/calibration.h"
#include "cloq/analysis/quantized_eval.h"
#include "cloq/base/error.h"
#include "cloq/base/timing.h"
#include "cloq/model/llama_model.h"
#include "cloq/model/perplexity.h"

namespace cloq::ui {

// The engine's calibration result, kept whole: the Hessians of every (block, input group).
struct CalibrationStore {
    Calibration data;
};

namespace {
MethodMetrics to_metrics(const Discrepancy& d) {
    MethodMetrics m;
    m.fro = d.fro;
    m.spec = d.spec;
    m.fro_rel = d.fro_rel;
    m.spec_rel = d.spec_rel;
    m.valid = true;
    return m;
}
}  // namespace

const LinearLayer* ModelSession::layer(const std::string& name) const {
    for (const LinearLayer& l : layers)
        if (l.name() == name) return &l;
    return nullptr;
}

torch::Tensor ModelSession::weight(const std::string& name) const {
    const LinearLayer* l = layer(name);
    if (!l) throw Error(dir.toStdString() + ": the model has no linear layer named '" + name + "'");
    return files.weights->load(l->weight_name());
}

torch::Tensor ModelSession::hessian(const LinearLayer& l) const { return calibration->data.hessian(l); }
const Calibration& ModelSession::calibration_data() const { return calibration->data; }

LayerSource ModelSession::source(const std::string& name) const {
    const LinearLayer* l = layer(name);
    if (!l) throw Error(dir.toStdString() + ": the model has no linear layer named '" + name + "'");
    LayerSource src;
    src.key = name;
    src.group_key = "layers." + std::to_string(l->layer) + "." + to_string(l->group);
    // The loaders keep the session's files alive by value (shared pointers), not the session object.
    auto weights = files.weights;
    auto calib = calibration;
    const LinearLayer copy = *l;
    src.load_weight = [weights, copy](const Progress&) { return weights->load(copy.weight_name()); };
    src.load_hessian = [calib, copy](const Progress&) { return calib->data.hessian(copy); };
    return src;
}

std::string ModelSession::describe() const {
    std::ostringstream s;
    // Compact units: the line shares the status bar with the job and memory widgets and must fit at 1280 px.
    const double params = static_cast<double>(files.config.num_parameters());
    const bool millions = params >= 1e6;
    s << QFileInfo(dir).fileName().toStdString() << ": " << files.config.num_layers << " blocks, " << layers.size()
      << " linear layers, " << std::setprecision(millions ? 4 : 3) << params / (millions ? 1e6 : 1e3)
      << (millions ? " M" : " k") << " parameters; calibration " << calib.nsamples << "×" << calib.seqlen << " tokens, "
      << (calibration_from_cache ? "cached, " : "") << std::fixed << std::setprecision(1) << calibration_seconds
      << " s";
    for (const std::string& n : notices) s << "; " << n;
    return s.str();
}

CalibSettings default_calibration(const QString& text_path) {
    CalibSettings c;
    c.text_path = text_path.toStdString();
    c.nsamples = 32;  // the demo size (docs/design.md): seconds on a laptop
    c.seqlen = 256;
    c.seed = 0;
    return c;
}

std::shared_ptr<const ModelSession> open_model_session(const QString& dir, const CalibSettings& calib_in,
                                                       const Progress& progress) {
    const Stopwatch t0;
    auto s = std::make_shared<ModelSession>();
    s->dir = QFileInfo(dir).absoluteFilePath();
    progress(0.0, "reading the model");
    s->files = open_model(s->dir.toStdString());
    s->layers = linear_layers(s->files.config);
    s->open_seconds = t0.seconds();
    CalibSettings calib = calib_in;
    if (calib.text_path.empty())
        throw Error(s->dir.toStdString() + ": choose a calibration text file before opening (Start page)");
    if (calib.cache_dir.empty()) calib.cache_dir = default_calibration_cache();  // the CLI's folder too
    const Stopwatch t1;
    auto store = std::make_shared<CalibrationStore>();
    {
        LlamaModel model(s->files);
        CalibrationRequest req;
        req.settings = calib;
        store->data = calibrate(model, req, progress.slice(0.02, 1.0));
    }
    s->calibration_from_cache = store->data.from_cache;
    s->notices = store->data.notices;
    s->calib = calib;
    s->calib.seqlen = static_cast<int>(store->data.seqlen);  // capped at the model's context
    s->calibration = store;
    s->calibration_seconds = t1.seconds();
    progress(1.0, "ready");
    return s;
}

void analyze_all_layers(const ModelSession& session, const ResolvedProfile& profile,
                        const std::function<void(const LayerMetricsRecord&)>& on_layer, const Progress& progress) {
    // The engine's whole-model analysis (the numbers of `cloq analyze --profile`), records converted as they come.
    AnalysisOptions opt;
    opt.profile = profile;
    // The explorer and the overview show Frobenius discrepancies; the spectral norms (a Lanczos run per init)
    // are drawn for the selected layer by its own worker, so the background fill skips them.
    opt.spectral = false;
    opt.on_layer = [&](const LayerAnalysis& a) {
        LayerMetricsRecord rec;
        rec.name = a.layer.name();
        rec.zero = to_metrics(a.metrics.at(InitMethod::Zero));
        rec.svd = to_metrics(a.metrics.at(InitMethod::Svd));
        rec.loftq = to_metrics(a.metrics.at(InitMethod::Loftq));
        rec.cloq = to_metrics(a.metrics.at(InitMethod::Cloq));
        rec.seconds = a.timings.at("total");
        on_layer(rec);
    };
    const LlamaModel model(session.files);
    analyze_model(model, session.calibration->data, opt, progress);
}

PerplexitySummary compute_perplexities(const ModelSession& session, const ResolvedProfile& profile,
                                       const Progress& progress) {
    if (!session.files.tokenizer)
        throw Error(session.dir.toStdString() + ": the model has no tokenizer, so perplexity cannot be computed");
    progress(0.0, "tokenizing");
    const std::vector<int32_t> tokens =
        tokenize_file(*session.files.tokenizer, session.calib.text_path, progress.slice(0.0, 0.05));
    PerplexityOptions opt;
    opt.seqlen = session.calib.seqlen;
    // 32 windows like SOURCE.md's protocol on small models; fewer on big ones (this is an interactive preview).
    opt.nsamples = session.files.config.num_parameters() <= 50'000'000 ? 32 : 8;
    // The engine's comparison (the numbers of `cloq eval --profile`, one init at a time).
    const InitPerplexities r =
        init_perplexities(session.files, profile, session.calibration->data, tokens, opt, progress.slice(0.05, 1.0));
    PerplexitySummary out;
    out.fp = r.fp;
    out.zero = r.zero;
    out.loftq = r.loftq;
    out.cloq = r.cloq;
    // Which text calibrated the model, next to the perplexity it produced: here both are the same text (a preview,
    // not the disjoint-parts protocol of the README's tables).
    const std::string text = QFileInfo(QString::fromStdString(session.calib.text_path)).fileName().toStdString();
    std::ostringstream d;
    d << "first " << opt.nsamples << " windows × " << opt.seqlen << " tokens of " << text << "; calibrated on "
      << session.calib.nsamples << " × " << session.calib.seqlen << " tokens of " << text;
    out.description = d.str();
    out.seconds = r.seconds;
    return out;
}

}  // namespace cloq::ui
