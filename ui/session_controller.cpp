#include "session_controller.h"

#include <QFileInfo>
#include <QSettings>
#include <algorithm>

#include "background_job.h"
#include "cloq/base/error.h"
#include "layer_table_model.h"
#include "model_session.h"
#include "session_jobs.h"

namespace cloq::ui {
namespace {
constexpr int kMaxRecent = 8;
QString short_kind(const QString& name) { return name.section('.', -1); }
}  // namespace

SessionController::SessionController(QObject* parent) : QObject(parent), layers_(new LayerTableModel(this)) {}

SessionController::~SessionController() { cancelJobs(); }

// ------------------------------------------------------------------------------------------------ the model

QStringList SessionController::recentModels() const { return QSettings().value("recentModels").toStringList(); }

void SessionController::addRecent(const QString& dir) {
    QStringList list = recentModels();
    list.removeAll(dir);
    list.prepend(dir);
    while (list.size() > kMaxRecent) list.removeLast();
    QSettings().setValue("recentModels", list);
}

void SessionController::openModel(const QString& dir, const CalibSettings& calib) {
    cancelJobs();
    BackgroundJob* job = newJob("Opening " + QFileInfo(dir).fileName());
    auto result = std::make_shared<std::shared_ptr<const ModelSession>>();
    connect(job, &BackgroundJob::succeeded, this, [this, result, dir] {
        addRecent(QFileInfo(dir).absoluteFilePath());
        onSessionOpened(*result);
    });
    connect(job, &BackgroundJob::failed, this, [this](const QString& msg) {
        Q_EMIT statusMessage("Could not open the model: " + msg, 15000);
        Q_EMIT openFailed(msg);
    });
    connect(job, &BackgroundJob::cancelled, this, [this] {
        Q_EMIT statusMessage("Opening cancelled.", 5000);
        Q_EMIT openFailed("cancelled");
    });
    openJob_ = job;
    Q_EMIT statusMessage("Opening and calibrating " + dir + " …", 0);
    job->start([result, dir, calib](const Progress& p) { *result = open_model_session(dir, calib, p); });
}

void SessionController::onSessionOpened(std::shared_ptr<const ModelSession> session) {
    session_ = std::move(session);
    overrides_.clear();
    skipped_.clear();
    defaults_ = LayerSettings{};
    // Rank 64 as in the paper, but never more than a quarter of the hidden size (tiny models: rank 64 would be
    // full rank and every method would look perfect).
    defaults_.rank = static_cast<int>(std::clamp<int64_t>(session_->files.config.hidden_size / 4, 1, 64));
    perplexity_.reset();
    QVector<LayerRow> rows;
    for (const LinearLayer& l : session_->layers) {
        LayerRow r;
        r.name = QString::fromStdString(l.name());
        r.block = l.layer;
        r.kind = QString::fromStdString(l.short_name());
        r.out = l.out;
        r.in = l.in;
        rows.append(r);
    }
    layers_->setLayers(rows);
    for (const LayerRow& r : layers_->layers()) layers_->updateSettings(r.name, effectiveSettings(r.name), false);
    Q_EMIT sessionOpened();
    // Small models are analysed right away so the explorer's colours and the overview fill in by themselves.
    if (session_->files.config.num_parameters() <= 50'000'000) analyzeAll();
}

// ------------------------------------------------------------------------------------------------ settings

LayerSettings SessionController::clampForLayer(LayerSettings s, const QString& layer) const {
    if (const LayerRow* r = layers_->layer(layer))
        s.rank = std::min<int>(s.rank, static_cast<int>(std::min(r->out, r->in)));
    return s;
}

LayerSettings SessionController::effectiveSettings(const QString& layer) const {
    return clampForLayer(overrides_.value(layer, defaults_), layer);
}

void SessionController::setOverride(const QString& layer, const LayerSettings& s) {
    overrides_.insert(layer, s);
    layers_->updateSettings(layer, effectiveSettings(layer), true);
}

int SessionController::applyToKind(const QString& layer) {
    const LayerSettings s = effectiveSettings(layer);
    const QString kind = short_kind(layer);
    int n = 0;
    for (const LayerRow& r : layers_->layers())
        if (r.kind == kind) {
            setOverride(r.name, s);
            ++n;
        }
    Q_EMIT statusMessage(QString("Applied to %1 %2 layers.").arg(n).arg(kind), 5000);
    Q_EMIT settingsChanged();
    return n;
}

void SessionController::applyToModel(const QString& layer) {
    defaults_ = effectiveSettings(layer);
    overrides_.clear();
    for (const LayerRow& r : layers_->layers()) layers_->updateSettings(r.name, effectiveSettings(r.name), false);
    Q_EMIT statusMessage("These settings are now the model defaults.", 5000);
    Q_EMIT settingsChanged();
}

void SessionController::resetLayer(const QString& layer) {
    overrides_.remove(layer);
    layers_->updateSettings(layer, effectiveSettings(layer), false);
    Q_EMIT settingsChanged();
}

void SessionController::loadProfile(const QString& path) {
    const SettingsProfile profile = load_profile(path.toStdString());
    std::vector<std::string> names;
    for (const LayerRow& r : layers_->layers()) names.push_back(r.name.toStdString());
    const ResolvedProfile resolved = resolve_profile(profile, names);  // throws before anything changes
    defaults_ = resolved.defaults;
    overrides_.clear();
    for (const auto& [name, s] : resolved.overrides) overrides_.insert(QString::fromStdString(name), s);
    skipped_ = resolved.skipped;
    for (const LayerRow& r : layers_->layers())
        layers_->updateSettings(r.name, effectiveSettings(r.name), hasOverride(r.name));
    Q_EMIT settingsChanged();
    Q_EMIT statusMessage("Loaded profile " + path, 5000);
}

ResolvedProfile SessionController::resolvedProfile() const {
    ResolvedProfile r;
    r.defaults = defaults_;
    for (auto it = overrides_.begin(); it != overrides_.end(); ++it)
        r.overrides[it.key().toStdString()] = clampForLayer(it.value(), it.key());
    // A rank above a layer's min(out, in) is clamped here, where every consumer (export, profile file, analysis,
    // perplexity, fine-tuning) reads the settings: the exporter never sees the unclamped rank the explorer does not
    // show, and a saved profile states the clamped rank of that layer explicitly.
    for (const LayerRow& row : layers_->layers()) {
        const QString name = row.name;
        if (overrides_.contains(name)) continue;
        const LayerSettings c = clampForLayer(defaults_, name);
        if (!(c == defaults_)) r.overrides[name.toStdString()] = c;
    }
    r.skipped = skipped_;
    return r;
}

SettingsProfile SessionController::currentProfile() const { return make_profile(resolvedProfile()); }

void SessionController::saveProfile(const QString& path) {
    save_profile(path.toStdString(), currentProfile());
    Q_EMIT statusMessage("Saved profile " + path, 5000);
}

// ------------------------------------------------------------------------------------------------ jobs

BackgroundJob* SessionController::newJob(const QString& title) {
    auto* job = new BackgroundJob(title, this);
    Q_EMIT jobStarted(job);
    connect(job, &BackgroundJob::succeeded, this, [this, job] { Q_EMIT jobEnded(job->title(), "ok"); });
    connect(job, &BackgroundJob::cancelled, this, [this, job] { Q_EMIT jobEnded(job->title(), "cancelled"); });
    connect(job, &BackgroundJob::failed, this, [this, job](const QString& m) { Q_EMIT jobEnded(job->title(), m); });
    connect(job, &BackgroundJob::finished, job, &QObject::deleteLater);
    return job;
}

BackgroundJob* SessionController::currentJob() const {
    for (const auto& j : {openJob_, analysisJob_, perplexityJob_})
        if (j && j->isRunning()) return j.data();
    return nullptr;
}

void SessionController::cancelJobs() {
    for (const auto& j : {openJob_, analysisJob_, perplexityJob_})
        if (j) j->cancel();
}

void SessionController::analyzeAll() {
    if (!session_ || (analysisJob_ && analysisJob_->isRunning())) return;
    auto session = session_;
    // Settings are captured now: later edits apply to the next analysis.
    const ResolvedProfile snapshot = resolvedProfile();
    BackgroundJob* job = newJob("Analyzing all layers");
    auto* relay = new LayerRecordRelay(job);
    connect(relay, &LayerRecordRelay::recorded, this, [this](const LayerMetricsRecord& rec) {
        layers_->updateMetrics(QString::fromStdString(rec.name), rec.zero, rec.loftq, rec.cloq);
        Q_EMIT metricsChanged();
        int analysed = 0;
        for (const LayerRow& r : layers_->layers()) analysed += r.has_metrics;
        Q_EMIT analysisState(QString("Analyzing… %1 of %2 layers done.").arg(analysed).arg(layers_->layerCount()),
                             true);
    });
    connect(job, &BackgroundJob::succeeded, this, [this] {
        Q_EMIT analysisState(QString("All %1 layers analysed.").arg(layers_->layerCount()), false);
        Q_EMIT analysisFinished(true);
    });
    connect(job, &BackgroundJob::cancelled, this, [this] {
        Q_EMIT analysisState("Analysis cancelled; finished layers are kept.", false);
        Q_EMIT analysisFinished(false);
    });
    connect(job, &BackgroundJob::failed, this, [this](const QString& m) {
        Q_EMIT analysisState("Analysis failed: " + m, false);
        Q_EMIT analysisFinished(false);
    });
    analysisJob_ = job;
    Q_EMIT analysisState("Analyzing…", true);
    job->start([session, snapshot, relay = QPointer<LayerRecordRelay>(relay)](const Progress& p) {
        analyze_all_layers(
            *session, snapshot,
            [&](const LayerMetricsRecord& rec) {
                if (relay) relay->post(rec);
            },
            p);
    });
}

void SessionController::computePerplexity() {
    if (!session_ || (perplexityJob_ && perplexityJob_->isRunning())) return;
    auto session = session_;
    const ResolvedProfile snapshot = resolvedProfile();
    BackgroundJob* job = newJob("Perplexity");
    auto result = std::make_shared<PerplexitySummary>();
    connect(job, &BackgroundJob::progressed, this, [this](double f, const QString& step) {
        Q_EMIT perplexityState(QString("Computing… %1 % (%2)").arg(f * 100, 0, 'f', 0).arg(step), true);
    });
    connect(job, &BackgroundJob::succeeded, this, [this, result] {
        perplexity_ = *result;
        Q_EMIT perplexityState(QString(), false);
        Q_EMIT perplexityReady(*result);
        Q_EMIT perplexityFinished(true);
    });
    connect(job, &BackgroundJob::cancelled, this, [this] {
        Q_EMIT perplexityState("Perplexity cancelled.", false);
        Q_EMIT perplexityFinished(false);
    });
    connect(job, &BackgroundJob::failed, this, [this](const QString& m) {
        Q_EMIT perplexityState("Perplexity failed: " + m, false);
        Q_EMIT perplexityFinished(false);
    });
    perplexityJob_ = job;
    Q_EMIT perplexityState("Computing…", true);
    job->start(
        [session, snapshot, result](const Progress& p) { *result = compute_perplexities(*session, snapshot, p); });
}

}  // namespace cloq::ui
