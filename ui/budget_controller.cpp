#include "budget_controller.h"

#include <QMetaObject>
#include <QTimer>
#include <algorithm>

#include "background_job.h"
#include "cloq/base/error.h"
#include "model_session.h"
#include "session_controller.h"

namespace cloq::ui {

namespace {
// While the slider moves: a coarse DP (a few ms on SmolLM2's 210 layers); the Lagrangian gap shown with the
// plan bounds what the coarseness can cost, and the full-resolution solve follows when the slider rests.
constexpr int64_t kCoarseUnits = 1 << 12;
// Everything the curves depend on, i.e. the settings with the two that the plan chooses taken out.
LayerSettings without_choice(LayerSettings s) {
    s.quant.bits = 0;
    s.rank = 0;
    return s;
}
}  // namespace

QString format_mib(int64_t bytes) { return QString::number(double(bytes) / (1024.0 * 1024.0), 'f', 2) + " MiB"; }

BudgetController::BudgetController(SessionController* session, QObject* parent)
    : QObject(parent), session_(session), exactTimer_(new QTimer(this)) {
    exactTimer_->setSingleShot(true);
    exactTimer_->setInterval(200);
    connect(exactTimer_, &QTimer::timeout, this, &BudgetController::solveExact);
    connect(session_, &SessionController::sessionOpened, this, [this] {
        cancel();
        plan_.reset();
        Q_EMIT curvesReset();
        Q_EMIT stateChanged(QString(), false);
    });
    connect(session_, &SessionController::settingsChanged, this, [this] {
        if (plan_ && !isRunning() && !current())
            Q_EMIT stateChanged(
                "These curves were computed under other quantizer settings (group, quantizer, GPTQ "
                "options); Compute plans again under the current ones.",
                false);
    });
}

bool BudgetController::isRunning() const { return job_ && job_->isRunning(); }

void BudgetController::cancel() {
    if (job_) job_->cancel();
}

bool BudgetController::current() const {
    return plan_ && session_->session() && plan_->model == session_->session()->files.path &&
           without_choice(plan_->options.base) == without_choice(session_->defaults());
}

std::pair<int64_t, int64_t> BudgetController::sizeRange() const {
    if (!plan_) return {0, 0};
    return plan_size_range(*plan_);
}

std::optional<int64_t> BudgetController::uniformBytes(int bits, int rank) const {
    if (!plan_) return std::nullopt;
    const std::string label = std::to_string(bits) + "-bit r" + std::to_string(rank);
    for (const PlanPoint& u : plan_->uniform)
        if (u.label == label) return u.bytes;
    return std::nullopt;
}

void BudgetController::solve(int64_t units) {
    if (!plan_) return;
    solve_plan(*plan_, budget_, units);
    // The plan's options say the budget it was solved at (not the placeholder the curves were computed with).
    plan_->options.budget_like.reset();
    plan_->options.budget_bits.reset();
    plan_->options.budget_mib = double(budget_) / (1024.0 * 1024.0);
    Q_EMIT planChanged();
}

void BudgetController::setBudget(int64_t bytes) {
    if (!plan_) return;
    const auto [lo, hi] = sizeRange();
    budget_ = std::clamp(bytes, lo, hi);
    solve(kCoarseUnits);
    exactTimer_->start();
}

void BudgetController::solveExact() {
    exactTimer_->stop();
    solve(0);  // the options' resolution: what `cloq plan --budget-mib` solves with
}

void BudgetController::applyToSession() {
    if (!plan_) throw Error("compute the per-layer curves first");
    if (!current())
        throw Error("the curves were computed under other settings or another model; compute them again first");
    solveExact();
    session_->applyProfile(plan_->profile,
                           QString("Applied the planned settings: %1 for a budget of %2")
                               .arg(format_mib(plan_->fixed_bytes + plan_->exact.bytes), format_mib(budget_)));
}

void BudgetController::compute(const BudgetRequest& request) {
    const auto session = session_->sessionPtr();
    if (!session) throw Error("open a model first");
    if (isRunning()) throw Error("the curves are being computed");
    PlanOptions opt;
    opt.base = session_->defaults();
    opt.bits = request.mode == PlanMode::RanksOnly ? std::vector<int>{opt.base.quant.bits} : request.bits;
    opt.ranks = request.ranks;
    opt.mode = request.mode;
    opt.adapter_elem_bytes = request.adapter_elem_bytes;
    opt.budget_like = std::make_pair(opt.bits.front(), request.ranks.empty() ? 0 : request.ranks.front());
    validate_plan_options(opt);  // throws before the job starts
    cancel();
    plan_.reset();
    Q_EMIT curvesReset();

    BackgroundJob* job = session_->newJob("Budget curves");
    connect(job, &BackgroundJob::progressed, this, [this](double f, const QString& step) {
        Q_EMIT stateChanged(QString("Computing per-layer curves… %1 % (%2)").arg(f * 100, 0, 'f', 0).arg(step), true);
    });
    connect(job, &BackgroundJob::cancelled, this, [this] {
        Q_EMIT stateChanged("Cancelled; no curves.", false);
        Q_EMIT finished(false);
    });
    connect(job, &BackgroundJob::failed, this, [this](const QString& m) {
        Q_EMIT stateChanged("Planning failed: " + m, false);
        Q_EMIT finished(false);
    });
    auto result = std::make_shared<Plan>();
    connect(job, &BackgroundJob::succeeded, this, [this, result] {
        plan_ = std::move(*result);
        // Start at the size of the session's uniform setting when it is on the grid, else in the middle.
        const LayerSettings d = session_->defaults();
        const auto [lo, hi] = sizeRange();
        budget_ = uniformBytes(d.quant.bits, d.rank).value_or(lo + (hi - lo) / 2);
        const auto& s = plan_->seconds;
        Q_EMIT stateChanged(QString("Curves of %1 layers in %2 s (front %3 s); drag the budget.")
                                .arg(plan_->layers.size())
                                .arg(s.count("curves") ? s.at("curves") : 0.0, 0, 'f', 1)
                                .arg(s.count("front") ? s.at("front") : 0.0, 0, 'f', 2),
                            false);
        solveExact();
        Q_EMIT finished(true);
    });
    job_ = job;
    Q_EMIT stateChanged("Computing per-layer curves…", true);
    job->start([session, opt, result](const Progress& p) {
        *result = plan_curves(session->files, session->calibration_data(), opt, p);
    });
}

}  // namespace cloq::ui
