#include "session_controller.h"

#include <QFileInfo>
#include <QSettings>
#include <QTimer>
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

SessionController::SessionController(QObject* parent)
    : QObject(parent), layers_(new LayerTableModel(this)), refreshTimer_(new QTimer(this)) {
    // Settings often change in bursts (a slider, "apply to kind"): one restart after the burst, not one per edit.
    refreshTimer_->setSingleShot(true);
    refreshTimer_->setInterval(150);
    connect(refreshTimer_, &QTimer::timeout, this, &SessionController::startAnalysis);
}

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
    syncRows();
    Q_EMIT sessionOpened();
    // The explorer and the overview fill in by themselves, a layer at a time (the selected one comes first from
    // the window's layer worker).
    if (autoAnalysis_) startAnalysis();
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

void SessionController::syncRows() {
    layers_->updateAllSettings([this](LayerRow& r) {
        r.settings = effectiveSettings(r.name);
        r.overridden = hasOverride(r.name);
        r.skipped = skipped_.count(r.name.toStdString()) > 0;
    });
}

void SessionController::setOverride(const QString& layer, const LayerSettings& s) {
    overrides_.insert(layer, s);
    layers_->updateSettings(layer, effectiveSettings(layer), true, skipped_.count(layer.toStdString()) > 0);
    scheduleRefresh();
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
    syncRows();
    scheduleRefresh();
    Q_EMIT statusMessage("These settings are now the model defaults.", 5000);
    Q_EMIT settingsChanged();
}

void SessionController::resetLayer(const QString& layer) {
    overrides_.remove(layer);
    layers_->updateSettings(layer, effectiveSettings(layer), false, skipped_.count(layer.toStdString()) > 0);
    scheduleRefresh();
    Q_EMIT settingsChanged();
}

void SessionController::loadProfile(const QString& path) {
    const SettingsProfile profile = load_profile(path.toStdString());
    std::vector<std::string> names;
    for (const LayerRow& r : layers_->layers()) names.push_back(r.name.toStdString());
    applyProfile(resolve_profile(profile, names), "Loaded profile " + path);  // resolve throws before any change
}

void SessionController::applyProfile(const ResolvedProfile& resolved, const QString& message) {
    for (const auto& [name, s] : resolved.overrides)
        if (!layers_->indexOfLayer(QString::fromStdString(name)).isValid())
            throw Error("the settings name a module this model does not have: " + name);
    defaults_ = resolved.defaults;
    overrides_.clear();
    for (const auto& [name, s] : resolved.overrides) overrides_.insert(QString::fromStdString(name), s);
    skipped_ = resolved.skipped;
    syncRows();
    scheduleRefresh();
    Q_EMIT settingsChanged();
    if (!message.isEmpty()) Q_EMIT statusMessage(message, 5000);
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
    refreshTimer_->stop();
    restartAnalysis_ = false;  // a user's cancel is final until the settings change again
    for (const auto& j : {openJob_, analysisJob_, perplexityJob_})
        if (j) j->cancel();
}

void SessionController::setAutoAnalysis(bool on) {
    autoAnalysis_ = on;
    if (on) scheduleRefresh();
}

void SessionController::analyzeAll() {
    refreshTimer_->stop();
    startAnalysis();
}

void SessionController::scheduleRefresh() {
    if (!session_) return;
    // A perplexity belongs to the settings it was computed under: after a change it is withdrawn, not left up.
    if (perplexityJob_ && perplexityJob_->isRunning()) perplexityJob_->cancel();
    if (perplexity_) {
        perplexity_.reset();
        Q_EMIT perplexityCleared("The settings changed since the last perplexity: compute it again.");
    }
    // The running pass computes under settings that are no longer current: its remaining answers would land
    // stale, so it stops now and the next pass starts from the rows that are not current.
    if (analysisJob_ && analysisJob_->isRunning()) {
        restartAnalysis_ = true;
        analysisJob_->cancel();
        return;
    }
    if (autoAnalysis_) refreshTimer_->start();
}

void SessionController::reportAnalysisState(bool busy) {
    const int current = layers_->currentCount(), total = layers_->analysableCount();
    const int skipped = layers_->layerCount() - total;
    const QString skip = skipped ? QString(" (%1 left in float)").arg(skipped) : QString();
    if (current == total)
        Q_EMIT analysisState(QString("All %1 layers analysed%2.").arg(total).arg(skip), busy);
    else if (busy)
        Q_EMIT analysisState(QString("Analyzing… %1 of %2 layers current%3; the rest are recomputing.")
                                 .arg(current)
                                 .arg(total)
                                 .arg(skip),
                             true);
    else
        Q_EMIT analysisState(QString("%1 of %2 layers current%3.").arg(current).arg(total).arg(skip), false);
}

void SessionController::startAnalysis() {
    if (!session_) return;
    if (analysisJob_ && analysisJob_->isRunning()) {
        if (restartAnalysis_) return;  // the cancelled pass restarts when it has stopped
        return;                        // a pass over the current settings is running already
    }
    const QStringList pending = layers_->pendingLayers();
    if (pending.isEmpty()) {
        reportAnalysisState(false);
        Q_EMIT analysisFinished(true);
        return;
    }
    auto session = session_;
    // Settings are captured now; every answer is stored with the settings it was computed under, so an answer
    // that arrives after a change lands stale, never as current.
    ResolvedProfile snapshot = resolvedProfile();
    for (const LayerRow& r : layers_->layers())
        if (r.current()) snapshot.skipped.insert(r.name.toStdString());  // already current: not recomputed
    BackgroundJob* job = newJob("Analyzing layers");
    auto* relay = new LayerRecordRelay(job);
    connect(relay, &LayerRecordRelay::recorded, this, [this, snapshot](const LayerMetricsRecord& rec) {
        layers_->updateMetrics(QString::fromStdString(rec.name), snapshot.settings_for(rec.name), rec.zero, rec.loftq,
                               rec.cloq);
        Q_EMIT metricsChanged();
        reportAnalysisState(true);
    });
    // A pass cancelled for newer settings is followed by the next one at once, without an "ended" report.
    auto ended = [this](bool complete, const QString& failure) {
        if (restartAnalysis_) {
            restartAnalysis_ = false;
            QTimer::singleShot(0, this, &SessionController::startAnalysis);
            return;
        }
        if (!failure.isEmpty())
            Q_EMIT analysisState("Analysis failed: " + failure, false);
        else
            reportAnalysisState(false);
        Q_EMIT analysisFinished(complete && layers_->currentCount() == layers_->analysableCount());
    };
    connect(job, &BackgroundJob::succeeded, this, [ended] { ended(true, {}); });
    connect(job, &BackgroundJob::cancelled, this, [ended] { ended(false, {}); });
    connect(job, &BackgroundJob::failed, this, [ended](const QString& m) { ended(false, m); });
    analysisJob_ = job;
    reportAnalysisState(true);
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
    if (!session_) {
        Q_EMIT statusMessage("Open a model first: perplexity needs a model and its calibration text.", 8000);
        return;
    }
    if (perplexityJob_ && perplexityJob_->isRunning()) return;
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
        Q_EMIT perplexityCleared("Perplexity cancelled; no perplexity of the current settings yet.");
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
