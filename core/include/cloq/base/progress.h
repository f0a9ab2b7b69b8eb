// Progress reporting and cooperative cancellation for long work (calibration, whole-model passes, export).
// The GUI connects `report` to a queued signal; the CLI draws a progress bar. Both may be empty.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "cloq/base/error.h"

namespace cloq {

class CancelToken {
public:
    CancelToken() : flag_(std::make_shared<std::atomic<bool>>(false)) {}
    void cancel() const { flag_->store(true); }
    bool cancelled() const { return flag_->load(); }
    void throw_if_cancelled() const {
        if (cancelled()) throw Cancelled();
    }

private:
    std::shared_ptr<std::atomic<bool>> flag_;  // shared: copies of a token cancel together
};

struct Progress {
    // fraction in [0,1] of the whole job, and a short description of the current step
    std::function<void(double fraction, const std::string& step)> report;
    CancelToken cancel;

    void operator()(double fraction, const std::string& step) const {
        cancel.throw_if_cancelled();
        if (report) report(fraction, step);
    }
    // A sub-range [lo, hi] of this progress, for nested stages.
    Progress slice(double lo, double hi) const {
        Progress p;
        p.cancel = cancel;
        if (report) {
            auto parent = report;
            p.report = [parent, lo, hi](double f, const std::string& s) { parent(lo + (hi - lo) * f, s); };
        }
        return p;
    }
};

}  // namespace cloq
