// The state of the Budget tab, without widgets: the per-layer curves of `cloq plan` (one quantizer run per layer
// and bit width, every rank from CLoQ's spectrum), computed once in the background on the session's model and
// calibration, then solved at whatever budget the slider picks. Solving is the cheap half (core's solve_plan), so
// the plan, its allocation and the front redraw at once; while the slider moves the solve is coarser and a short
// timer re-solves at full resolution when it rests. The curves belong to the settings they were computed under
// (quantizer, group size, GPTQ options, calibration): when those change the controller says so, and Apply refuses.
#pragma once
#include <QObject>
#include <QPointer>
#include <QString>
#include <optional>
#include <vector>

#include "cloq/plan/planner.h"

class QTimer;

namespace cloq::ui {

class BackgroundJob;
class SessionController;

struct BudgetRequest {
    std::vector<int> bits = {2, 3, 4};
    std::vector<int> ranks = {0, 8, 16, 32, 64, 128};
    PlanMode mode = PlanMode::BitsAndRanks;
    int adapter_elem_bytes = 4;  // float32, as the export writes the adapter by default
};

class BudgetController : public QObject {
    Q_OBJECT
public:
    explicit BudgetController(SessionController* session, QObject* parent = nullptr);

    // Computes the curves under the session's current default settings (background; progress and cancel through
    // the status bar). Throws cloq::Error before any work when there is no model or the request is invalid.
    void compute(const BudgetRequest& request);
    void cancel();
    bool isRunning() const;
    bool hasPlan() const { return plan_.has_value(); }
    // The curves solved at budget(): exact allocation, greedy baseline, front, uniform settings, profile, loaders.
    const Plan& plan() const { return *plan_; }
    int64_t budget() const { return budget_; }
    std::pair<int64_t, int64_t> sizeRange() const;  // the smallest and the largest plan (whole export, bytes)
    // Solves at `bytes` (clamped to sizeRange): coarse at once, full resolution a moment later (planChanged twice).
    void setBudget(int64_t bytes);
    // Solves at full resolution now (what Apply uses; tests call it to skip the timer).
    void solveExact();
    // The budget of a uniform setting on the same cost model ("3-bit r16"), if it is on the grid.
    std::optional<int64_t> uniformBytes(int bits, int rank) const;
    // False when the session's settings (other than bits and ranks) differ from those the curves were made under.
    bool current() const;
    // Replaces the session's settings with the plan (exact solve first). Throws cloq::Error when there is no plan
    // or it is not current.
    void applyToSession();

Q_SIGNALS:
    void curvesReset();  // no plan (a new model, a new computation)
    void planChanged();  // the curves arrived or the budget moved
    void stateChanged(const QString& text, bool running);
    void finished(bool ok);

private:
    void solve(int64_t units);
    SessionController* session_;
    QPointer<BackgroundJob> job_;
    std::optional<Plan> plan_;
    int64_t budget_ = 0;
    QTimer* exactTimer_ = nullptr;
};

// "12.34 MiB"
QString format_mib(int64_t bytes);

}  // namespace cloq::ui
