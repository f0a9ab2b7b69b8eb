#include "finetune_controller.h"

#include <QFileInfo>
#include <QMetaObject>
#include <filesystem>

#include "background_job.h"
#include "cloq/base/atomic_file.h"
#include "cloq/base/error.h"
#include "cloq/base/timing.h"
#include "cloq/model/perplexity.h"
#include "model_session.h"
#include "session_controller.h"

namespace cloq::ui {

FinetuneController::FinetuneController(SessionController* session, QObject* parent)
    : QObject(parent), session_(session) {
    connect(session_, &SessionController::sessionOpened, this, [this] {
        cancel();
        clear();
    });
    connect(session_, &SessionController::settingsChanged, this, [this] {
        if (!curves_.isEmpty() && !isRunning())
            Q_EMIT stateChanged(
                "These curves were trained under earlier settings; Start retrains under the current ones.", false);
    });
}

bool FinetuneController::isRunning() const { return job_ && job_->isRunning(); }

void FinetuneController::cancel() {
    if (job_) job_->cancel();
}

void FinetuneController::clear() {
    curves_.clear();
    tuners_.clear();
    description_.clear();
    Q_EMIT curvesReset();
    Q_EMIT stateChanged(QString(), false);
}

bool FinetuneController::hasAdapter(int run) const {
    return run >= 0 && run < static_cast<int>(tuners_.size()) && tuners_[static_cast<size_t>(run)];
}

void FinetuneController::exportAdapter(int run, const QString& dir) const {
    if (!hasAdapter(run)) throw Error("this run has no trained adapter yet");
    if (isRunning()) throw Error("wait for the fine-tuning to end (or cancel it) before exporting");
    const std::string out = dir.toStdString();
    std::error_code ec;
    const bool exists = std::filesystem::exists(out, ec);
    if (exists && !std::filesystem::is_empty(out, ec))
        throw Error(out + ": folder exists and is not empty; choose a new or empty folder");
    AtomicDir d(out, /*replace_existing=*/exists);
    tuners_[static_cast<size_t>(run)]->write_peft_adapter(d.path(), session_->session()->dir.toStdString());
    d.commit();
}

void FinetuneController::post(int run, const FineTuneCurve& c, std::shared_ptr<LoraFineTuner> tuner) {
    if (run >= curves_.size()) curves_.resize(run + 1);
    curves_[run] = c;
    if (tuner) {
        if (static_cast<size_t>(run) >= tuners_.size()) tuners_.resize(static_cast<size_t>(run) + 1);
        tuners_[static_cast<size_t>(run)] = std::move(tuner);
    }
    Q_EMIT curveUpdated(run);
}

void FinetuneController::start(const FinetunePlan& plan) {
    const auto session = session_->sessionPtr();
    if (!session) throw Error("open a model first");
    if (isRunning()) throw Error("a fine-tuning run is in progress");
    if (plan.inits.empty()) throw Error("choose at least one initialization to fine-tune from");
    validate(plan.options);
    if (!session->files.tokenizer) throw Error(session->dir.toStdString() + ": the model has no tokenizer");
    if (overlaps(plan.train, plan.eval))
        throw Error("the training part " + to_string(plan.train) + " and the evaluation part " + to_string(plan.eval) +
                    " overlap");
    plan_ = plan;
    curves_.clear();
    tuners_.clear();
    const ResolvedProfile profile = session_->resolvedProfile();
    const std::string text = session->calib.text_path;
    const QString name = QFileInfo(QString::fromStdString(text)).fileName();
    description_ = QString(
                       "Trained on part %1 and evaluated on part %2 (first %3 windows of %4 tokens) of %5; "
                       "calibrated on %6 random windows × %7 tokens of the whole of %5 (a preview: the "
                       "README's tables calibrate on a third, disjoint part). %8 steps of %9 windows, lr %10%11.")
                       .arg(QString::fromStdString(to_string(plan.train)), QString::fromStdString(to_string(plan.eval)))
                       .arg(plan.options.eval_windows)
                       .arg(plan.options.seqlen)
                       .arg(name)
                       .arg(session->calib.nsamples)
                       .arg(session->calib.seqlen)
                       .arg(plan.options.steps)
                       .arg(plan.options.batch)
                       .arg(plan.options.lr)
                       .arg(plan.options.autocast == Autocast::Off
                                ? QString()
                                : ", " + QString::fromStdString(to_string(plan.options.autocast)) + " autocast");
    Q_EMIT curvesReset();

    BackgroundJob* job = session_->newJob("Fine-tuning");
    connect(job, &BackgroundJob::progressed, this, [this](double f, const QString& step) {
        Q_EMIT stateChanged(QString("Fine-tuning… %1 % (%2)").arg(f * 100, 0, 'f', 0).arg(step), true);
    });
    connect(job, &BackgroundJob::succeeded, this, [this] {
        Q_EMIT stateChanged(QString("Done: %1 runs.").arg(curves_.size()), false);
        Q_EMIT finished(true);
    });
    connect(job, &BackgroundJob::cancelled, this, [this] {
        Q_EMIT stateChanged("Fine-tuning cancelled; the curves so far are kept.", false);
        Q_EMIT finished(false);
    });
    connect(job, &BackgroundJob::failed, this, [this](const QString& m) {
        Q_EMIT stateChanged("Fine-tuning failed: " + m, false);
        Q_EMIT finished(false);
    });
    job_ = job;
    Q_EMIT stateChanged("Fine-tuning…", true);
    QPointer<FinetuneController> self(this);
    job->start([session, profile, plan, self](const Progress& p) {
        const auto tokens = tokenize_file(*session->files.tokenizer, session->calib.text_path, p.slice(0.0, 0.02));
        const auto train = text_part_tokens(tokens, plan.train, session->calib.text_path);
        const auto eval = text_part_tokens(tokens, plan.eval, session->calib.text_path);
        const double n = static_cast<double>(plan.inits.size());
        for (size_t i = 0; i < plan.inits.size(); ++i) {
            const Progress slice = p.slice(0.02 + 0.98 * i / n, 0.02 + 0.98 * (i + 1) / n);
            const int run = static_cast<int>(i);
            const Stopwatch setup;
            auto tuner =
                std::make_shared<LoraFineTuner>(session->files, profile, plan.inits[i], session->calibration_data(),
                                                plan.options, torch::kCPU, slice.slice(0.0, 0.1));
            const double setup_seconds = setup.seconds();
            auto deliver = [&](FineTuneCurve c, bool last) {
                c.init = plan.inits[i];
                c.setup_seconds = setup_seconds;
                std::shared_ptr<LoraFineTuner> keep = last ? tuner : nullptr;
                if (!self) return;  // the window closed: the job is being cancelled
                QMetaObject::invokeMethod(
                    self.data(),
                    [self, run, c, keep] {
                        if (self) self->post(run, c, keep);
                    },
                    Qt::QueuedConnection);
            };
            const FineTuneCurve c = finetune(*tuner, train, eval, plan.options, slice.slice(0.1, 1.0),
                                             [&](const FineTuneCurve& now) { deliver(now, false); });
            deliver(c, true);
        }
    });
}

}  // namespace cloq::ui
