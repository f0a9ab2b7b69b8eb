#include "model_session.h"

#include <torch/torch.h>

#include <QDir>
#include <QFileInfo>
#include <QStandardPaths>
#include <chrono>
#include <iomanip>
#include <map>
#include <sstream>

#include "cloq/calibration.h"
#include "cloq/error.h"
#include "cloq/hessian_factor.h"
#include "cloq/layer_solver.h"
#include "cloq/llama_model.h"
#include "cloq/perplexity.h"

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
double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
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

torch::Tensor ModelSession::hessian(const LinearLayer& l) const {
    return calibration->data.hessian(l);
}

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
      << (millions ? " M" : " k")
      << " parameters; calibration " << calib.nsamples << "×" << calib.seqlen << " tokens, "
      << (calibration_from_cache ? "cached, " : "") << std::fixed << std::setprecision(1)
      << calibration_seconds << " s";
    for (const std::string& n : notices) s << "; " << n;
    return s.str();
}

QString hessian_cache_dir() {
    const QByteArray env = qgetenv("CLOQ_CACHE_DIR");
    const QString base = env.isEmpty() ? QStandardPaths::writableLocation(QStandardPaths::CacheLocation)
                                       : QString::fromUtf8(env);
    return QDir(base).absoluteFilePath("hessians");
}

CalibSettings default_calibration(const QString& text_path) {
    CalibSettings c;
    c.text_path = text_path.toStdString();
    c.nsamples = 32;  // the demo size (DESIGN.md): seconds on a laptop
    c.seqlen = 256;
    c.seed = 0;
    return c;
}

std::shared_ptr<const ModelSession> open_model_session(const QString& dir, const CalibSettings& calib_in,
                                                       const Progress& progress) {
    const auto t0 = std::chrono::steady_clock::now();
    auto s = std::make_shared<ModelSession>();
    s->dir = QFileInfo(dir).absoluteFilePath();
    progress(0.0, "reading the model");
    s->files = open_model(s->dir.toStdString());
    s->layers = linear_layers(s->files.config);
    s->open_seconds = seconds_since(t0);
    CalibSettings calib = calib_in;
    if (calib.text_path.empty())
        throw Error(s->dir.toStdString() + ": choose a calibration text file before opening (Start page)");
    if (calib.cache_dir.empty()) calib.cache_dir = hessian_cache_dir().toStdString();
    const auto t1 = std::chrono::steady_clock::now();
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
    s->calibration_seconds = seconds_since(t1);
    progress(1.0, "ready");
    return s;
}

void analyze_all_layers(const ModelSession& session, const std::function<LayerSettings(const std::string&)>& settings_of,
                        const std::function<void(const LayerMetricsRecord&)>& on_layer, const Progress& progress) {
    const size_t n = session.layers.size();
    std::map<std::string, std::shared_ptr<const HessianFactor>> factors;  // per block: q/k/v and gate/up share
    int current_block = -1;
    for (size_t i = 0; i < n; ++i) {
        const LinearLayer& l = session.layers[i];
        const auto t0 = std::chrono::steady_clock::now();
        const Progress p = progress.slice(double(i) / n, double(i + 1) / n);
        p(0.0, l.name());
        if (l.layer != current_block) {
            factors.clear();  // one block's factors at a time keeps memory flat on big models
            current_block = l.layer;
        }
        const std::string gk = to_string(l.group);
        auto& factor = factors[gk];
        if (!factor) factor = std::make_shared<HessianFactor>(session.hessian(l), l.name(), p);
        LayerSolver solver(session.weight(l.name()), factor, l.name());
        solver.update(settings_of(l.name()), p);
        solver.ensure(InitMethod::Svd, p);
        solver.ensure(InitMethod::Loftq, p);
        LayerMetricsRecord rec;
        rec.name = l.name();
        rec.zero = to_metrics(solver.metrics(InitMethod::Zero));
        rec.svd = to_metrics(solver.metrics(InitMethod::Svd));
        rec.loftq = to_metrics(solver.metrics(InitMethod::Loftq));
        rec.cloq = to_metrics(solver.metrics(InitMethod::Cloq));
        rec.seconds = seconds_since(t0);
        on_layer(rec);
    }
    progress(1.0, "done");
}

PerplexitySummary compute_perplexities(const ModelSession& session,
                                       const std::function<LayerSettings(const std::string&)>& settings_of,
                                       const Progress& progress) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!session.files.tokenizer)
        throw Error(session.dir.toStdString() + ": the model has no tokenizer, so perplexity cannot be computed");
    PerplexitySummary out;
    progress(0.0, "tokenizing");
    const std::vector<int32_t> tokens =
        tokenize_file(*session.files.tokenizer, session.calib.text_path, progress.slice(0.0, 0.05));
    PerplexityOptions opt;
    opt.seqlen = session.calib.seqlen;
    // 32 windows like SOURCE.md's protocol on small models; fewer on big ones (this is an interactive preview).
    opt.nsamples = session.files.config.num_parameters() <= 50'000'000 ? 32 : 8;
    LlamaModel model(session.files);
    out.fp = perplexity(model, tokens, opt, progress.slice(0.05, 0.2)).ppl;
    // Quantized model with each init: every linear weight replaced by base(m) + B·A as its block loads.
    const InitMethod inits[3] = {InitMethod::Zero, InitMethod::Loftq, InitMethod::Cloq};
    double* targets[3] = {&out.zero, &out.loftq, &out.cloq};
    for (int k = 0; k < 3; ++k) {
        const Progress p = progress.slice(0.2 + 0.8 * k / 3.0, 0.2 + 0.8 * (k + 1) / 3.0);
        const InitMethod m = inits[k];
        std::map<std::string, std::shared_ptr<const HessianFactor>> factors;
        model.set_weight_transform([&](const LinearLayer& l, const torch::Tensor& W) {
            p.cancel.throw_if_cancelled();
            auto& f = factors["layers." + std::to_string(l.layer) + "." + to_string(l.group)];
            if (!f) f = std::make_shared<HessianFactor>(session.hessian(l), l.name());
            LayerSolver solver(W, f, l.name());
            LayerSettings s = settings_of(l.name());
            s.init = m;
            solver.update(s);
            if (m == InitMethod::Loftq) solver.ensure(m);
            const LowRank a = solver.init(m);
            torch::Tensor eff = solver.base(m).to(torch::kFloat64);
            if (a.rank() > 0) eff = eff + a.product();
            return eff.to(torch::kFloat32);
        });
        *targets[k] = perplexity(model, tokens, opt, p).ppl;
    }
    std::ostringstream d;
    d << QFileInfo(QString::fromStdString(session.calib.text_path)).fileName().toStdString() << ", " << opt.nsamples
      << " windows × " << opt.seqlen << " tokens";
    out.description = d.str();
    out.seconds = seconds_since(t0);
    progress(1.0, "done");
    return out;
}

}  // namespace cloq::ui
