// Wall-clock timing of a stage, for the timings every report prints (never asserted in a test: timings belong to
// tests/bench). One helper so that every stage is measured the same way, on the monotonic clock.
#pragma once
#include <chrono>

namespace cloq {

class Stopwatch {
public:
    using Clock = std::chrono::steady_clock;

    Stopwatch() : start_(Clock::now()) {}
    void restart() { start_ = Clock::now(); }
    double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
    double ms() const { return std::chrono::duration<double, std::milli>(Clock::now() - start_).count(); }

private:
    Clock::time_point start_;
};

}  // namespace cloq
