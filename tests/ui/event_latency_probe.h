// Measures how quickly the UI thread's event loop answers: posts a timestamped event every `interval_ms` for
// `duration_ms` and records how long each waited before delivery (what a user feels as lag).
#pragma once
#include <QCoreApplication>
#include <QElapsedTimer>
#include <QEvent>
#include <QObject>
#include <QTimer>
#include <QtTest/QtTest>
#include <algorithm>
#include <vector>

class EventLatencyProbe : public QObject {
public:
    void run(int duration_ms, int interval_ms) {
        clock_.start();
        QTimer timer;
        QObject::connect(&timer, &QTimer::timeout, this, [this] {
            QCoreApplication::postEvent(this, new Stamp(clock_.nsecsElapsed()));
        });
        timer.start(interval_ms);
        QTest::qWait(duration_ms);
        timer.stop();
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
    QElapsedTimer clock_;
    std::vector<double> latencies_;
};
