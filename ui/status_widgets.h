// Status bar pieces: the compute device, thread counts and resident memory (refreshed every two seconds), and
// the progress of the running job with its cancel button.
#pragma once
#include <QPointer>
#include <QWidget>
#include <functional>

class QLabel;
class QProgressBar;
class QToolButton;

namespace cloq::ui {

class BackgroundJob;

class SystemStatus : public QWidget {
    Q_OBJECT
public:
    explicit SystemStatus(QWidget* parent = nullptr);
    static QString deviceText();        // "CPU" or "CUDA (name)"
    static QString threadsText();       // "threads: torch 1, BLAS/OpenMP 2, jobs 2"
    static double residentMegabytes();  // from /proc/self/statm, 0 when unknown
    void refresh();

private:
    QLabel *device_ = nullptr, *threads_ = nullptr, *memory_ = nullptr;
};

// Shows one job at a time (the newest); hidden when idle. Esc or the button cancels.
class JobIndicator : public QWidget {
    Q_OBJECT
public:
    explicit JobIndicator(QWidget* parent = nullptr);
    void track(BackgroundJob* job);
    // For work that is not a BackgroundJob (the layer worker): show a busy state with a cancel callback.
    void showBusy(const QString& text, std::function<void()> cancel);
    void hideBusy();
    QToolButton* cancelButton() const { return cancel_; }
    bool isActive() const;

private:
    QPointer<BackgroundJob> job_;
    std::function<void()> busyCancel_;
    QLabel* label_ = nullptr;
    QProgressBar* bar_ = nullptr;
    QToolButton* cancel_ = nullptr;
};

}  // namespace cloq::ui
