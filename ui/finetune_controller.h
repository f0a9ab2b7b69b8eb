// The state of the Fine-tune tab, without widgets: which inits to train, the options, the curves as they grow, and
// the trained adapters (kept for export). One background job trains the runs one after another on the session's
// model and calibration; every step's curve reaches the UI thread as a queued update. A new model clears it all
// (curves of another model are not shown next to this one's).
#pragma once
#include <QObject>
#include <QPointer>
#include <QString>
#include <QVector>
#include <memory>
#include <vector>

#include "cloq/finetune/finetune.h"
#include "cloq/settings/settings.h"

namespace cloq::ui {

class BackgroundJob;
class SessionController;

struct FinetunePlan {
    std::vector<FineTuneInit> inits;
    FineTuneOptions options;
    // Disjoint parts of the session's text (docs/design.md, Measurement protocol).
    TextPart train{0.25, 0.75};
    TextPart eval{0.0, 0.25};
};

class FinetuneController : public QObject {
    Q_OBJECT
public:
    explicit FinetuneController(SessionController* session, QObject* parent = nullptr);

    // Starts training `plan` under the session's current settings; throws cloq::Error before any work when there is
    // no model, nothing to train, or the options are invalid.
    void start(const FinetunePlan& plan);
    void cancel();
    bool isRunning() const;
    const FinetunePlan& plan() const { return plan_; }
    const QVector<FineTuneCurve>& curves() const { return curves_; }
    // The protocol of the shown curves: model, settings, which text and parts calibrated, trained and evaluated.
    QString description() const { return description_; }
    // Writes run `run`'s trained adapter (PEFT files) into the new or empty folder `dir`. Throws cloq::Error.
    void exportAdapter(int run, const QString& dir) const;
    bool hasAdapter(int run) const;
    void clear();

Q_SIGNALS:
    void curvesReset();
    void curveUpdated(int run);
    void stateChanged(const QString& text, bool running);
    void finished(bool ok);

private:
    void post(int run, const FineTuneCurve& c, std::shared_ptr<LoraFineTuner> tuner);
    SessionController* session_;
    QPointer<BackgroundJob> job_;
    FinetunePlan plan_;
    QVector<FineTuneCurve> curves_;
    std::vector<std::shared_ptr<LoraFineTuner>> tuners_;
    QString description_;
    QString modelName_;
};

}  // namespace cloq::ui
