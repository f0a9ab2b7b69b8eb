// The state of one CLoQ Studio session, without widgets: the opened model and its calibration, the model-wide
// default settings with the per-layer overrides and skipped modules (shown as the explorer's LayerTableModel),
// settings profiles, recent models, and the whole-model background jobs (open + calibrate, analysis, perplexity),
// all started through one helper. The main window builds and presents; what it draws derives from this object and
// its signals, and tests drive it directly.
#pragma once
#include <QHash>
#include <QObject>
#include <QPointer>
#include <QStringList>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "cloq/settings/profile.h"
#include "cloq/settings/settings.h"
#include "layer_report.h"

namespace cloq::ui {

class BackgroundJob;
class LayerTableModel;
class ModelSession;
struct LayerMetricsRecord;

class SessionController : public QObject {
    Q_OBJECT
public:
    explicit SessionController(QObject* parent = nullptr);
    ~SessionController() override;

    // --- the model
    void openModel(const QString& dir, const CalibSettings& calib);  // background; sessionOpened / openFailed
    const ModelSession* session() const { return session_.get(); }
    std::shared_ptr<const ModelSession> sessionPtr() const { return session_; }
    LayerTableModel* layers() const { return layers_; }  // one row per linear layer: settings and metrics
    QStringList recentModels() const;

    // --- settings: the model defaults plus each layer's override, with the rank clamped to min(out, in)
    LayerSettings effectiveSettings(const QString& layer) const;
    bool hasOverride(const QString& layer) const { return overrides_.contains(layer); }
    LayerSettings defaults() const { return defaults_; }
    void setOverride(const QString& layer, const LayerSettings& s);
    int applyToKind(const QString& layer);  // the layer's settings to every layer of its kind; returns how many
    void applyToModel(const QString& layer);
    void resetLayer(const QString& layer);
    void loadProfile(const QString& path);  // throws cloq::Error naming the file, before anything changes
    void saveProfile(const QString& path);
    // Replaces every setting with `profile` (a budget plan, a loaded file); throws cloq::Error before any change
    // when it names a module the model does not have.
    void applyProfile(const ResolvedProfile& profile, const QString& message = {});
    SettingsProfile currentProfile() const;   // defaults + per-layer overrides, as core's profile
    ResolvedProfile resolvedProfile() const;  // the same per module: what analysis, perplexity and export run under

    // --- whole-model jobs
    // Every explorer row derives from the current settings: a settings change marks the rows it touches stale
    // (LayerRow::current), and a background analysis recomputes every row that is not current, restarting when
    // the settings change again. The selected layer is solved first by the window's layer worker, which reports
    // into the same rows. On by default; analyzeAll() runs the same pass on demand when it is off.
    void analyzeAll();
    void setAutoAnalysis(bool on);
    bool autoAnalysis() const { return autoAnalysis_; }
    void computePerplexity();
    void cancelJobs();
    BackgroundJob* currentJob() const;  // the running whole-model job, if any
    const std::optional<PerplexitySummary>& perplexity() const { return perplexity_; }
    // The one way a job starts: tracked by jobStarted (the status bar's indicator), its outcome reported by
    // jobEnded, deleted when finished. The caller connects its own handlers, then calls job->start(work).
    BackgroundJob* newJob(const QString& title);

Q_SIGNALS:
    void sessionOpened();  // the new model's rows are in layers()
    void openFailed(const QString& message);
    void statusMessage(const QString& text, int ms);
    void settingsChanged();  // defaults, overrides or a profile changed (the rows are updated already)
    void metricsChanged();   // a layer's metrics arrived in layers()
    void analysisState(const QString& text, bool busy);
    void analysisFinished(bool complete);
    void perplexityState(const QString& text, bool busy);
    void perplexityReady(const cloq::ui::PerplexitySummary& r);
    void perplexityFinished(bool ok);
    void perplexityCleared(const QString& why);  // the shown perplexity no longer belongs to the settings
    void jobStarted(cloq::ui::BackgroundJob* job);
    void jobEnded(const QString& title, const QString& outcome);  // "ok", "cancelled" or the error message

private:
    void onSessionOpened(std::shared_ptr<const ModelSession> session);
    void addRecent(const QString& dir);
    LayerSettings clampForLayer(LayerSettings s, const QString& layer) const;
    void syncRows();         // every row's settings from defaults, overrides and skipped modules
    void scheduleRefresh();  // rows went stale: (re)start the background analysis soon
    void startAnalysis();    // one pass over the rows that are not current
    void reportAnalysisState(bool busy);

    LayerTableModel* layers_ = nullptr;
    std::shared_ptr<const ModelSession> session_;
    LayerSettings defaults_;
    QHash<QString, LayerSettings> overrides_;
    std::set<std::string> skipped_;  // modules a loaded profile leaves unquantized (kept when saving)
    std::optional<PerplexitySummary> perplexity_;
    QPointer<BackgroundJob> openJob_, analysisJob_, perplexityJob_;
    class QTimer* refreshTimer_ = nullptr;
    bool autoAnalysis_ = true;
    bool restartAnalysis_ = false;  // the running pass is cancelled because its settings are outdated
};

}  // namespace cloq::ui
