// The teaching playground and the layer worker, with real widgets (offscreen): the numbers on screen are the
// engine's (checked against an independent LayerSolver and an Eigen float64 reference of the discrepancy), a long
// job can be cancelled, and the event loop stays responsive while one runs.
#include <QComboBox>
#include <QElapsedTimer>
#include <QLabel>
#include <QPushButton>
#include <QSignalSpy>
#include <QSlider>
#include <QSpinBox>
#include <QtCharts/QLineSeries>
#include <QtTest/QtTest>
#include <algorithm>

#include "cloq/lowrank/hessian_factor.h"
#include "cloq/lowrank/layer_solver.h"
#include "discrepancy_chart.h"
#include "event_latency_probe.h"
#include "gradient_fit_chart.h"
#include "layer_worker.h"
#include "playground_view.h"
#include "rank_sweep_chart.h"
#include "synthetic_layer.h"
#include "test_support.h"
#include "theme.h"

using namespace cloq;
using namespace cloq::ui;

class TestPlayground : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase() { apply_theme(*qApp, Theme::Light); }

    // The report the playground shows equals a fresh engine solve, and the discrepancy of zero init equals an
    // independent float64 Eigen evaluation of ‖X(Q−W)ᵀ‖_F / ‖XWᵀ‖_F from H.
    void showsTheEnginesNumbers() {
        PlaygroundView pg;
        pg.resize(1200, 700);
        SyntheticSpec spec;
        spec.out = spec.in = 128;
        spec.cond = 1000;
        spec.outliers = 3;
        spec.seed = 7;
        pg.setSpec(spec);
        QSignalSpy shown(&pg, &PlaygroundView::reportShown);
        pg.start();
        QVERIFY(shown.wait(120000));
        const LayerReport& r = pg.report();
        QCOMPARE(r.out, 128);
        QVERIFY(!r.loftq_pending);

        const LayerSettings s = pg.settings();
        const torch::Tensor W = synthetic_weight(pg.spec());
        const torch::Tensor H = synthetic_hessian(pg.spec());
        LayerSolver solver(W, H, "reference");
        solver.update(s);
        solver.ensure(InitMethod::Svd);
        solver.ensure(InitMethod::Loftq);
        for (InitMethod m : {InitMethod::Zero, InitMethod::Svd, InitMethod::Loftq, InitMethod::Cloq}) {
            const Discrepancy d = solver.metrics(m);
            QVERIFY2(test::rel_diff(d.fro_rel, r.metrics(m).fro_rel) < 1e-12, qPrintable(method_label(m)));
            QVERIFY2(test::rel_diff(d.spec_rel, r.metrics(m).spec_rel) < 1e-9, qPrintable(method_label(m)));
        }
        // Independent reference of the zero-init discrepancy: sqrt(tr(D H Dᵀ)) / sqrt(tr(W H Wᵀ)), D = Q − W.
        const auto We = test::to_eigen(W), Qe = test::to_eigen(solver.quantized().Q), He = test::to_eigen(H);
        const test::MatrixXd D = Qe - We;
        const double ref = std::sqrt((D * He * D.transpose()).trace() / (We * He * We.transpose()).trace());
        QVERIFY2(test::rel_diff(ref, r.zero.fro_rel) < 1e-9,
                 qPrintable(QString("%1 vs %2").arg(ref).arg(r.zero.fro_rel)));
        // Theory on the same Q: CLoQ is the H_λ-optimal rank-r correction, so it beats no correction and plain SVD
        // there; on this strongly anisotropic layer it also beats LoftQ on the unregularized H.
        QVERIFY(solver.hlambda_discrepancy(InitMethod::Cloq) <=
                solver.hlambda_discrepancy(InitMethod::Svd) * (1 + 1e-12));
        QVERIFY(r.cloq.fro_rel < r.zero.fro_rel);
        QVERIFY(r.cloq.fro_rel < r.loftq.fro_rel);
        QVERIFY(pg.explanation().contains("smaller than LoftQ"));

        // The rank sweep series are the engine's sweep divided by ‖XWᵀ‖_F, point for point.
        auto* chart = pg.findChild<RankSweepChart*>();
        QVERIFY(chart);
        const auto sweep = solver.rank_sweep(InitMethod::Cloq, r.r_max);
        const auto pts = chart->cloqSeries()->points();
        QCOMPARE(pts.size(), static_cast<qsizetype>(sweep.size()));
        for (int k = 0; k < pts.size(); ++k) {
            QCOMPARE(pts[k].x(), double(k));
            QVERIFY(test::rel_diff(pts[k].y(), sweep[k] / solver.output_fro()) < 1e-12);
        }
        auto* bars = pg.findChild<DiscrepancyChart*>();
        QVERIFY(bars);
        QVERIFY(test::rel_diff(bars->barValue(3, InitMethod::Cloq), r.cloq.fro_rel) < 1e-12);
    }

    // Isotropic activations: calibration cannot help, CLoQ ≈ SVD, and the explanation says so.
    // Fit by gradient steps: one line per init, LoftQ's and CLoQ's starting errors are the report's, every step lowers
    // the error, and a control change greys the fit as stale.
    void gradientFitStartsAtTheReportAndDescends() {
        PlaygroundView pg;
        pg.resize(1200, 800);
        SyntheticSpec spec;
        spec.out = spec.in = 64;
        spec.seed = 3;
        pg.setSpec(spec);
        QSignalSpy shown(&pg, &PlaygroundView::reportShown);
        pg.start();
        QVERIFY(shown.wait(120000));
        GradientFitChart* fit = pg.gradientFit();
        QSignalSpy fitted(fit, &GradientFitChart::fitShown);
        QTest::mouseClick(fit->fitButton(), Qt::LeftButton);
        QVERIFY(fitted.wait(120000));
        for (InitMethod m : {InitMethod::Zero, InitMethod::Loftq, InitMethod::Cloq}) {
            const auto pts = fit->series(m)->points();
            QCOMPARE(pts.size(), 201);
            for (int t = 1; t < pts.size(); ++t) QVERIFY(pts[t].y() <= pts[t - 1].y() * (1 + 1e-12));
            if (m != InitMethod::Zero)
                QVERIFY2(test::rel_diff(pts.front().y(), pg.report().metrics(m).fro_rel) < 1e-9,
                         qPrintable(method_label(m)));
        }
        QVERIFY(fit->series(InitMethod::Zero)->points().back().y() <
                fit->series(InitMethod::Zero)->points().front().y());
        QVERIFY(!fit->isStale());
        pg.rankSpin()->setValue(pg.rankSpin()->value() / 2);
        QVERIFY(fit->isStale());
        QVERIFY(fit->stateLabel()->text().contains("Press Fit again"));
    }

    void isotropicInputsExplainTheTie() {
        PlaygroundView pg;
        SyntheticSpec spec;
        spec.out = spec.in = 64;
        spec.cond = 1;
        spec.outliers = 0;
        pg.setSpec(spec);
        QSignalSpy shown(&pg, &PlaygroundView::reportShown);
        pg.start();
        QVERIFY(shown.wait(60000));
        QVERIFY(pg.explanation().contains("nearly isotropic"));
        QVERIFY(pg.report().cloq.fro_rel <= pg.report().svd.fro_rel * 1.05);
    }

    // A long job on the worker thread can be cancelled; the worker stays usable afterwards.
    void cancelRunningJob() {
        LayerWorker worker;
        SyntheticSpec big;
        big.out = big.in = 1536;
        big.cond = 100;
        LayerSettings s;
        s.method = QuantMethod::Gptq;
        s.rank = 32;
        QSignalSpy busy(&worker, &LayerWorker::busyChanged);
        QSignalSpy cancelled(&worker, &LayerWorker::cancelled);
        QSignalSpy reports(&worker, &LayerWorker::reportReady);
        worker.request(synthetic_source(big), s);
        QVERIFY(busy.wait(10000));
        QVERIFY(busy.first().at(0).toBool());
        QTest::qWait(200);
        QElapsedTimer t;
        t.start();
        worker.cancel();
        QVERIFY(cancelled.wait(30000));
        qInfo("cancel honoured after %lld ms", static_cast<long long>(t.elapsed()));
        QCOMPARE(reports.count(), 0);
        // Still works: a small request after the cancelled one is answered.
        SyntheticSpec small;
        small.out = small.in = 64;
        worker.request(synthetic_source(small), s);
        QVERIFY(reports.wait(60000));
    }

    // While a long solve runs on the worker, the UI thread keeps delivering events (latencies printed, not asserted:
    // they depend on the machine and its load).
    void eventLoopStaysResponsive() {
        LayerWorker worker;
        SyntheticSpec big;
        big.out = big.in = 1536;
        LayerSettings s;
        s.method = QuantMethod::Gptq;
        s.rank = 32;
        QSignalSpy busy(&worker, &LayerWorker::busyChanged);
        worker.request(synthetic_source(big), s);
        QVERIFY(busy.wait(10000));
        EventLatencyProbe probe;
        probe.run(2000, 20);
        QVERIFY(worker.isBusy());  // the measurement really overlapped the job
        qInfo("event loop latency during a 1536x1536 GPTQ+CLoQ solve: max %.1f ms, p95 %.1f ms over %d events",
              probe.maxMs(), probe.percentileMs(95), probe.samples());
        QVERIFY2(probe.loopAnsweredThroughout(), qPrintable(QString("%1 of %2 events delivered during the solve")
                                                                .arg(probe.deliveredDuringRun())
                                                                .arg(probe.posted())));
        worker.cancel();
    }
};

QTEST_MAIN(TestPlayground)
#include "test_playground.moc"
