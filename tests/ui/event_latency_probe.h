// Watches the UI thread's event loop while a job runs: a separate thread posts a timestamped event every
// `interval_ms` for `duration_ms`, and the UI thread records how long each waited before delivery (what a user
// feels as lag). Posting from another thread matters: a timer on the UI thread would itself fire late when the
// loop is blocked and then see no delay at all. Tests assert only what does not depend on the machine's speed
// (events were delivered while the job ran, so it never held the UI thread); the latencies are printed.
#pragma once
#include <QCoreApplication>
#include <QElapsedTimer>
#include <QEvent>
#include <QObject>
#include <QtTest/QtTest>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

class EventLatencyProbe : public QObject {
public:
    // Runs the UI thread's event loop (QTest::qWait) while the poster thread sends events.
    void run(int duration_ms, int interval_ms) {
        clock_.start();
        std::atomic<bool> stop{false};
        std::thread poster([this, &stop, interval_ms] {
            while (!stop.load()) {
                QCoreApplication::postEvent(this, new Stamp(clock_.nsecsElapsed()));
                ++posted_;
                std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
            }
        });
        QTest::qWait(duration_ms);
        stop = true;
        poster.join();
        delivered_in_run_ = static_cast<int>(latencies_.size());
        QCoreApplication::sendPostedEvents(this);
    }
    double maxMs() const { return latencies_.empty() ? 0 : *std::max_element(latencies_.begin(), latencies_.end()); }
    double percentileMs(double p) const {
        if (latencies_.empty()) return 0;
        std::vector<double> v = latencies_;
        std::sort(v.begin(), v.end());
        return v[std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * v.size()))];
    }
    int samples() const { return static_cast<int>(latencies_.size()); }
    int posted() const { return posted_.load(); }
    // Events the loop delivered during run()'s wait (the rest were flushed after it).
    int deliveredDuringRun() const { return delivered_in_run_; }
    // A job that held the UI thread for the whole wait would leave every event to the final flush; one that held it
    // for most of the wait would leave most. Half is far from both and from a loaded machine's scheduling delays.
    bool loopAnsweredThroughout() const { return posted() > 0 && 2 * deliveredDuringRun() >= posted(); }

protected:
    bool event(QEvent* e) override {
        if (e->type() == Stamp::kType) {
            latencies_.push_back((clock_.nsecsElapsed() - static_cast<Stamp*>(e)->posted) / 1e6);
            return true;
        }
        return QObject::event(e);
    }

private:
    struct Stamp : QEvent {
        static constexpr QEvent::Type kType = static_cast<QEvent::Type>(QEvent::User + 77);
        explicit Stamp(qint64 t) : QEvent(kType), posted(t) {}
        qint64 posted;
    };
    QElapsedTimer clock_;  // QElapsedTimer reads are thread-safe (monotonic clock)
    std::vector<double> latencies_;
    std::atomic<int> posted_{0};
    int delivered_in_run_ = 0;
};
