// A long piece of engine work (calibration, whole-model analysis, perplexity, export) run off the UI thread.
// The work receives a cloq::Progress whose reports reach the UI as coalesced queued signals (the event loop never
// sees more than one pending progress event per job, and at most one every 33 ms, however often the engine reports)
// and whose CancelToken is
// fired by cancel(). Exactly one of succeeded / failed / cancelled is emitted, then finished.
#pragma once
#include <QObject>
#include <QString>
#include <functional>
#include <memory>

#include "cloq/base/progress.h"

class QThreadPool;

namespace cloq::ui {

class BackgroundJob : public QObject {
    Q_OBJECT
public:
    using Work = std::function<void(const cloq::Progress&)>;

    explicit BackgroundJob(QString title, QObject* parent = nullptr);
    ~BackgroundJob() override;  // cancels a running job; the work finishes on its own and reports to no one

    // Starts `work` on `pool` (default: the application's job pool). A job runs once; start() twice throws.
    void start(Work work, QThreadPool* pool = nullptr);
    void cancel();
    bool isRunning() const { return running_; }
    QString title() const { return title_; }
    double fraction() const { return fraction_; }
    QString step() const { return step_; }

    // The pool long jobs share (two threads: the engine's BLAS already uses the cores; more would thrash).
    static QThreadPool* jobPool();

Q_SIGNALS:
    void progressed(double fraction, const QString& step);
    void succeeded();
    void failed(const QString& message);
    void cancelled();
    void finished();

private:
    struct Shared;
    void deliverProgress();
    void deliverEnd(int outcome, const QString& message);

    QString title_;
    std::shared_ptr<Shared> shared_;
    bool running_ = false;
    bool started_ = false;
    double fraction_ = 0;
    QString step_;
};

}  // namespace cloq::ui
