// The Budget tab on the demo model, through its real widgets: Compute draws the size–objective front and the
// uniform settings; the plan at any budget equals core's planner (`cloq plan`) on the same curves; at the size of a
// uniform setting the plan is never worse than it; the allocation map shows every module with the plan's bits and
// rank; Apply makes the plan the session's settings (which the export reads); a settings change the curves do not
// cover disables Apply; a new model clears the tab.
// cloq-test-timeout: 600
#include <QCheckBox>
#include <QComboBox>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSemaphore>
#include <QSignalSpy>
#include <QSlider>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QThreadPool>
#include <QtCharts/QLineSeries>
#include <QtCharts/QScatterSeries>
#include <QtTest/QtTest>

#include "allocation_map.h"
#include "background_job.h"
#include "budget_controller.h"
#include "budget_view.h"
#include "cloq/plan/planner.h"
#include "gui_fixture.h"
#include "main_window.h"
#include "model_session.h"
#include "session_controller.h"
#include "theme.h"

using namespace cloq;
using namespace cloq::ui;

class TestBudgetTab : public QObject {
    Q_OBJECT
    QTemporaryDir home_;
    std::unique_ptr<MainWindow> w_;

    BudgetView* view() const { return w_->budget(); }
    BudgetController* ctl() const { return w_->budgetController(); }

    // The same curves computed by core alone, with the options the view's controls describe.
    Plan corePlan() const {
        const auto session = w_->controller()->sessionPtr();
        PlanOptions o;
        o.base = ctl()->plan().options.base;
        o.bits = ctl()->plan().options.bits;
        o.ranks = ctl()->plan().options.ranks;
        o.mode = ctl()->plan().options.mode;
        o.adapter_elem_bytes = ctl()->plan().options.adapter_elem_bytes;
        o.budget_like = std::make_pair(o.bits.front(), o.ranks.front());
        return plan_curves(session->files, session->calibration_data(), o);
    }

public:
    // Environment before QtTest's watchdog thread starts (see test_profile_parity.cpp).
    TestBudgetTab() { test::set_gui_environment(home_); }

private Q_SLOTS:
    void initTestCase() {
        w_ = test::show_main_window();
        QVERIFY(test::open_demo(*w_));
        w_->controller()->setAutoAnalysis(false);  // the planner's own quantizer runs are what this suite times
        w_->tabs()->setCurrentWidget(view());
    }

    void cleanupTestCase() { test::close_main_window(w_); }

    void nothingToApplyBeforeCompute() {
        QVERIFY(!ctl()->hasPlan());
        QVERIFY(!view()->applyButton()->isEnabled());
        QVERIFY(!view()->budgetSlider()->isEnabled());
        QVERIFY_THROWS_EXCEPTION(Error, ctl()->applyToSession());
    }

    void badRanksAreRefusedBeforeWork() {
        view()->ranksEdit()->setText("0,eight");
        view()->computeButton()->click();
        QVERIFY(!ctl()->isRunning());
        QVERIFY2(view()->stateLabel()->text().contains("'eight' is not a rank"),
                 qPrintable(view()->stateLabel()->text()));
    }

    void computeDrawsTheFrontAndTheUniformSettings() {
        view()->ranksEdit()->setText("0,4,8,16");
        view()->bitsBox(2)->setChecked(true);
        view()->bitsBox(3)->setChecked(true);
        view()->bitsBox(4)->setChecked(false);
        view()->bitsBox(8)->setChecked(false);
        QSignalSpy done(ctl(), &BudgetController::finished);
        view()->computeButton()->click();
        QVERIFY(ctl()->isRunning());
        QVERIFY(view()->cancelButton()->isEnabled());
        QVERIFY(done.wait(300000));
        QCOMPARE(done.first().first().toBool(), true);
        QVERIFY(ctl()->hasPlan());
        const Plan& p = ctl()->plan();
        QCOMPARE(p.options.bits, (std::vector<int>{2, 3}));
        QCOMPARE(p.options.ranks, (std::vector<int>{0, 4, 8, 16}));
        QCOMPARE(static_cast<int>(p.layers.size()), 35);  // stories260K: 5 blocks × 7 modules
        QVERIFY(view()->frontSeries()->count() >= 2);
        // 2 bit widths × 4 ranks, less the full-rank points a log axis cannot show (none at rank ≤ 16 here).
        QCOMPARE(view()->uniformSeries()[0]->count() + view()->uniformSeries()[1]->count(), 8);
        QCOMPARE(view()->likeBox()->count(), 8);
        QVERIFY(view()->budgetSlider()->isEnabled());
        QCOMPARE(view()->chosenSeries()->count(), 1);
        QVERIFY(view()->applyButton()->isEnabled());
        // The front falls: a larger budget never has a larger optimum.
        const auto pts = view()->frontSeries()->points();
        for (int i = 1; i < pts.size(); ++i) QVERIFY(pts[i].y() <= pts[i - 1].y() * (1 + 1e-12));
    }

    // The GUI's plan at a budget is core's: the same curves (one quantizer run per layer and width), the same
    // exact allocation.
    void planEqualsCoreAtEveryBudget() {
        Plan core = corePlan();
        const auto [lo, hi] = ctl()->sizeRange();
        QCOMPARE(plan_size_range(core), std::make_pair(lo, hi));
        for (double f : {0.1, 0.5, 0.9}) {
            const int64_t budget = lo + static_cast<int64_t>(f * double(hi - lo));
            ctl()->setBudget(budget);
            ctl()->solveExact();
            solve_plan(core, budget);
            const Plan& p = ctl()->plan();
            QCOMPARE(p.exact.choice, core.exact.choice);
            QCOMPARE(p.exact.objective, core.exact.objective);
            QVERIFY(p.fixed_bytes + p.exact.bytes <= budget);
            QVERIFY(p.exact.objective <= p.greedy.objective * (1 + 1e-12));
            QVERIFY(p.exact.lower_bound <= p.exact.objective * (1 + 1e-12));
        }
    }

    // At the size of each uniform setting, the plan is at least as good: the uniform allocation is one of the
    // allocations it chooses from. The slider and the label follow.
    void planIsNeverWorseThanTheUniformSettingOfTheSameSize() {
        QComboBox* like = view()->likeBox();
        for (int i = 0; i < like->count(); ++i) {
            const qlonglong bytes = like->itemData(i).toLongLong();
            ctl()->setBudget(bytes);
            ctl()->solveExact();
            const Plan& p = ctl()->plan();
            double uniform = -1;
            for (const PlanPoint& u : p.uniform)
                if (u.bytes == bytes && (uniform < 0 || u.objective < uniform)) uniform = u.objective;
            QVERIFY(uniform >= 0);
            QVERIFY2(
                p.exact.objective <= uniform * (1 + 1e-9) + 1e-15,
                qPrintable(
                    QString("%1: plan %2 > uniform %3").arg(like->itemText(i)).arg(p.exact.objective).arg(uniform)));
            QCOMPARE(like->currentIndex(), i);
            QVERIFY(view()->summaryLabel()->text().contains("Plan:"));
        }
        // The slider moves the budget (a coarse solve at once, the exact one when it rests).
        QSignalSpy changed(ctl(), &BudgetController::planChanged);
        view()->budgetSlider()->setValue(700);
        QVERIFY(changed.count() >= 1);
        QVERIFY(changed.wait(5000));  // the full-resolution solve after the slider rests
        const auto [lo, hi] = ctl()->sizeRange();
        QCOMPARE(ctl()->budget(), lo + static_cast<int64_t>(std::llround(double(hi - lo) * 0.7)));
    }

    void mapShowsTheAllocation() {
        const Plan& p = ctl()->plan();
        const auto& cells = view()->allocationMap()->cells();
        QCOMPARE(cells.size(), p.layers.size());
        size_t k = 0;
        for (size_t i = 0; i < p.layers.size(); ++i) {
            const LayerCurve& l = p.layers[i];
            QCOMPARE(cells[i].block, l.layer.layer);
            if (!l.plannable) {
                QCOMPARE(cells[i].bits, 0);
                continue;
            }
            const PlanOption& o = l.options[static_cast<size_t>(p.exact.choice[k++])];
            QCOMPARE(cells[i].bits, o.bits);
            QCOMPARE(cells[i].rank, o.rank);
        }
    }

    // Apply: the session's settings become the plan, module by module, so the explorer, the overview and the export
    // use it.
    void applyMakesThePlanTheSessionsSettings() {
        QSignalSpy settings(w_->controller(), &SessionController::settingsChanged);
        view()->applyButton()->click();
        QCOMPARE(settings.count(), 1);
        const Plan& p = ctl()->plan();
        const ResolvedProfile r = w_->controller()->resolvedProfile();
        for (const LayerCurve& l : p.layers) {
            const std::string name = l.layer.name();
            QCOMPARE(r.is_skipped(name), p.profile.is_skipped(name));
            if (r.is_skipped(name)) continue;
            QCOMPARE(r.settings_for(name).quant.bits, p.profile.settings_for(name).quant.bits);
            QCOMPARE(r.settings_for(name).rank, p.profile.settings_for(name).rank);
        }
        // The curves still describe the current settings (the plan chose only bits and ranks).
        QVERIFY(ctl()->current());
        QVERIFY(view()->applyButton()->isEnabled());
    }

    // A change the curves do not cover (group size) makes them stale: Apply is refused with a reason.
    void otherQuantizerSettingsDisableApply() {
        LayerSettings d = w_->controller()->defaults();
        d.quant.group = d.quant.group == 32 ? 64 : 32;
        ResolvedProfile other(d);
        w_->controller()->applyProfile(other);
        QVERIFY(!ctl()->current());
        QVERIFY(!view()->applyButton()->isEnabled());
        QVERIFY(view()->stateLabel()->text().contains("other quantizer settings"));
        QVERIFY_THROWS_EXCEPTION(Error, ctl()->applyToSession());
    }

    // Cancel: the job is held in the pool until Cancel was clicked, so the outcome does not race the (fast) work.
    void cancelLeavesNoCurves() {
        QThreadPool* pool = BackgroundJob::jobPool();
        QSemaphore release, started;
        for (int i = 0; i < pool->maxThreadCount(); ++i)
            pool->start([&] {
                started.release();
                release.acquire();
            });
        started.acquire(pool->maxThreadCount());
        QSignalSpy done(ctl(), &BudgetController::finished);
        view()->ranksEdit()->setText("0,8,16,32");
        view()->bitsBox(4)->setChecked(true);
        view()->computeButton()->click();
        QVERIFY(ctl()->isRunning());
        view()->cancelButton()->click();
        release.release(pool->maxThreadCount());
        QVERIFY(done.wait(60000));
        QCOMPARE(done.first().first().toBool(), false);
        QVERIFY(!ctl()->hasPlan());
        QVERIFY(!view()->applyButton()->isEnabled());
        QCOMPARE(view()->frontSeries()->count(), 0);
    }
};

QTEST_MAIN(TestBudgetTab)
#include "test_budget_tab.moc"
