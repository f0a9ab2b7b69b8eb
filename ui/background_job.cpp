#include "background_job.h"

#include <QMetaObject>
#include <QMutex>
#include <QPointer>
#include <QThreadPool>
#include <QTimer>

#include <chrono>

#include "cloq/base/error.h"

namespace cloq::ui {

// State shared between the UI-side job object and the worker: the job may be destroyed while the work still runs,
// so the worker only talks to it through `job` under the mutex (the destructor clears it under the same mutex).
struct BackgroundJob::Shared {
    QMutex mutex;
    BackgroundJob* job = nullptr;
    CancelToken cancel;
    double fraction = 0;
    std::string step;
    bool progress_pending = false;
    std::chrono::steady_clock::time_point last_delivery{};  // when the UI last read a progress report
};

namespace {
// At most one progress event per this interval reaches the UI thread (a screen refresh or two): a job that reports
// 100,000 times a second costs the event loop ~30 events a second, however idle the UI thread is.
constexpr std::chrono::milliseconds kProgressInterval{33};
}  // namespace

BackgroundJob::BackgroundJob(QString title, QObject* parent)
    : QObject(parent), title_(std::move(title)), shared_(std::make_shared<Shared>()) {
    shared_->job = this;
}

BackgroundJob::~BackgroundJob() {
    shared_->cancel.cancel();
    QMutexLocker lock(&shared_->mutex);
    shared_->job = nullptr;
}

QThreadPool* BackgroundJob::jobPool() {
    static QThreadPool* pool = [] {
        auto* p = new QThreadPool();  // lives until exit; main() waits for it before tearing down
        p->setMaxThreadCount(2);
        p->setObjectName("cloq-jobs");
        return p;
    }();
    return pool;
}

void BackgroundJob::start(Work work, QThreadPool* pool) {
    if (started_) throw Error("internal: background job '" + title_.toStdString() + "' started twice");
    started_ = true;
    running_ = true;
    std::shared_ptr<Shared> shared = shared_;
    Progress progress;
    progress.cancel = shared->cancel;
    progress.report = [shared](double f, const std::string& step) {
        QMutexLocker lock(&shared->mutex);
        shared->fraction = f;
        shared->step = step;
        if (shared->progress_pending || !shared->job) return;  // coalesce: the pending event reads the latest
        shared->progress_pending = true;
        const auto since = std::chrono::steady_clock::now() - shared->last_delivery;
        const int delay_ms =
            since >= kProgressInterval
                ? 0
                : static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(kProgressInterval - since).count());
        QMetaObject::invokeMethod(
            shared->job,
            [job = shared->job, delay_ms] {
                if (delay_ms == 0)
                    job->deliverProgress();
                else
                    QTimer::singleShot(delay_ms, job, [job] { job->deliverProgress(); });
            },
            Qt::QueuedConnection);
    };
    (pool ? pool : jobPool())->start([shared, progress, work = std::move(work)] {
        int outcome = 0;  // 0 ok, 1 failed, 2 cancelled
        QString message;
        try {
            work(progress);
            if (shared->cancel.cancelled()) outcome = 2;
        } catch (const Cancelled&) {
            outcome = 2;
        } catch (const std::exception& e) {
            outcome = 1;
            message = QString::fromStdString(cloq::error_message(e));
        } catch (...) {
            outcome = 1;
            message = "unknown error";
        }
        QMutexLocker lock(&shared->mutex);
        if (shared->job)
            QMetaObject::invokeMethod(
                shared->job, [job = shared->job, outcome, message] { job->deliverEnd(outcome, message); },
                Qt::QueuedConnection);
    });
}

void BackgroundJob::cancel() {
    if (running_) shared_->cancel.cancel();
}

void BackgroundJob::deliverProgress() {
    {
        QMutexLocker lock(&shared_->mutex);
        shared_->progress_pending = false;
        shared_->last_delivery = std::chrono::steady_clock::now();
        fraction_ = shared_->fraction;
        step_ = QString::fromStdString(shared_->step);
    }
    if (running_) Q_EMIT progressed(fraction_, step_);
}

void BackgroundJob::deliverEnd(int outcome, const QString& message) {
    running_ = false;
    if (outcome == 0) {
        fraction_ = 1.0;
        Q_EMIT succeeded();
    } else if (outcome == 2) {
        Q_EMIT cancelled();
    } else {
        Q_EMIT failed(message);
    }
    Q_EMIT finished();
}

}  // namespace cloq::ui
