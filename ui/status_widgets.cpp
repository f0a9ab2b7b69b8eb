#include "status_widgets.h"

#include <ATen/Parallel.h>
#include <unistd.h>
#include <QFile>
#include <QHBoxLayout>
#include <QLabel>
#include <QProgressBar>
#include <QThreadPool>
#include <QTimer>
#include <QToolButton>

#include "background_job.h"
#include "cloq/settings/settings.h"

namespace cloq::ui {

SystemStatus::SystemStatus(QWidget* parent) : QWidget(parent) {
    auto* row = new QHBoxLayout(this);
    row->setContentsMargins(0, 0, 0, 0);
    device_ = new QLabel(this);
    device_->setToolTip("Where the engine computes (CUDA needs a LibTorch built with it)");
    threads_ = new QLabel(this);
    threads_->setToolTip("Threads: LibTorch intra-op / inter-op, and background jobs run at once");
    memory_ = new QLabel(this);
    memory_->setToolTip("Resident memory of this process");
    for (QLabel* l : {device_, threads_, memory_}) {
        l->setContentsMargins(6, 0, 6, 0);
        row->addWidget(l);
    }
    auto* timer = new QTimer(this);
    connect(timer, &QTimer::timeout, this, &SystemStatus::refresh);
    timer->start(2000);
    refresh();
}

QString SystemStatus::deviceText() { return cuda_available() ? QString("device: CUDA") : QString("device: CPU"); }

QString SystemStatus::threadsText() {
    // Short: it shares the status bar with the model line; the tooltip spells the three numbers out.
    return QString("threads %1/%2, jobs %3")
        .arg(at::get_num_threads())
        .arg(at::get_num_interop_threads())
        .arg(BackgroundJob::jobPool()->maxThreadCount());
}

double SystemStatus::residentMegabytes() {
    QFile f("/proc/self/statm");
    if (!f.open(QIODevice::ReadOnly)) return 0;
    const QList<QByteArray> parts = f.readAll().split(' ');
    if (parts.size() < 2) return 0;
    return parts[1].toDouble() * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

void SystemStatus::refresh() {
    device_->setText(deviceText());
    threads_->setText(threadsText());
    const double mb = residentMegabytes();
    memory_->setText(mb >= 1024 ? QString("memory: %1 GiB").arg(mb / 1024.0, 0, 'f', 2)
                                : QString("memory: %1 MiB").arg(mb, 0, 'f', 0));
}

JobIndicator::JobIndicator(QWidget* parent) : QWidget(parent) {
    auto* row = new QHBoxLayout(this);
    // The status bar clips its message where this widget starts: a gap keeps the two texts from running together.
    row->setContentsMargins(16, 0, 0, 0);
    label_ = new QLabel(this);
    bar_ = new QProgressBar(this);
    bar_->setRange(0, 1000);
    bar_->setMaximumWidth(220);
    bar_->setTextVisible(true);
    cancel_ = new QToolButton(this);
    cancel_->setObjectName("cancelJobButton");
    cancel_->setText("Cancel");
    cancel_->setToolTip("Stop the running job (Esc); finished results are kept");
    row->addWidget(label_);
    row->addWidget(bar_);
    row->addWidget(cancel_);
    connect(cancel_, &QToolButton::clicked, this, [this] {
        if (job_)
            job_->cancel();
        else if (busyCancel_)
            busyCancel_();
    });
    hide();
}

bool JobIndicator::isActive() const { return (job_ && job_->isRunning()) || busyCancel_; }

void JobIndicator::track(BackgroundJob* job) {
    job_ = job;
    busyCancel_ = nullptr;
    label_->setText(job->title());
    bar_->setRange(0, 1000);
    bar_->setValue(0);
    show();
    connect(job, &BackgroundJob::progressed, this, [this, job](double f, const QString& step) {
        if (job_ != job) return;
        bar_->setValue(static_cast<int>(f * 1000));
        bar_->setFormat(QString("%1 %").arg(f * 100, 0, 'f', 0));
        label_->setText(step.isEmpty() ? job->title() : job->title() + ": " + step);
    });
    connect(job, &BackgroundJob::finished, this, [this, job] {
        if (job_ == job) {
            job_.clear();
            hide();
        }
    });
}

void JobIndicator::showBusy(const QString& text, std::function<void()> cancel) {
    if (job_ && job_->isRunning()) return;  // a tracked job has priority; the layer view shows its own state
    busyCancel_ = std::move(cancel);
    label_->setText(text);
    bar_->setRange(0, 0);  // indeterminate
    show();
}

void JobIndicator::hideBusy() {
    if (job_ && job_->isRunning()) return;
    busyCancel_ = nullptr;
    bar_->setRange(0, 1000);
    hide();
}

}  // namespace cloq::ui
