// CLoQ Studio opens the second demo model, SmolLM2-135M-Instruct as a GGUF file (issue 9), like a user would:
// its layer explorer lists all 30 decoder blocks with their 7 linear modules each, and the selected layer's charts
// show the engine's numbers for that model. Calibration is cut to 2 × 32 tokens: what is checked here is opening,
// listing and solving a real-size layer, not the calibration itself (core_test_gguf_smollm2 covers the model).
// The GGUF is fetched by packaging/fetch-smollm2.sh (the README's commands run it; CLOQ_SMOLLM2_GGUF points at it).
// cloq-test-labels: slow
// cloq-test-timeout: 600
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QtTest/QtTest>

#include "background_job.h"
#include "cloq/lowrank/layer_solver.h"
#include "gui_fixture.h"
#include "layer_table_model.h"
#include "layer_worker.h"
#include "main_window.h"
#include "model_session.h"
#include "session_controller.h"
#include "studio_options.h"
#include "test_support.h"
#include "theme.h"

using namespace cloq;
using namespace cloq::ui;

class TestGgufModel : public QObject {
    Q_OBJECT
    QTemporaryDir home_;
    std::unique_ptr<MainWindow> w_;

public:
    // The environment is set here, before QtTest starts its watchdog thread: setenv while another thread reads
    // the environment (the watchdog does, at every test function) is a data race that crashed a suite once.
    TestGgufModel() { test::set_gui_environment(home_); }

private Q_SLOTS:
    void initTestCase() {
        if (!QFileInfo::exists(QString::fromStdString(test::smollm2_path())))
            QFAIL(qPrintable(QString::fromStdString("SmolLM2 GGUF not found at " + test::smollm2_path() +
                                                    "; run packaging/fetch-smollm2.sh (the README's commands do)")));
        w_ = test::show_main_window();
        // What is checked is opening and one real-size layer: the background fill of the other 209 rows (the
        // default) would only compete for the two cores (ui_test_current_numbers covers the fill).
        w_->controller()->setAutoAnalysis(false);
    }

    void cleanupTestCase() {
        if (w_) w_->cancelJobs();
        BackgroundJob::jobPool()->waitForDone();
        w_.reset();
    }

    void opensTheGgufAndListsEveryBlock() {
        CalibSettings calib = default_calibration(find_demo().text_path);
        calib.nsamples = 2;
        calib.seqlen = 32;
        QSignalSpy opened(w_.get(), &MainWindow::modelOpened);
        QSignalSpy failed(w_.get(), &MainWindow::modelOpenFailed);
        w_->openModel(QString::fromStdString(test::smollm2_path()), calib);
        QVERIFY(opened.wait(300000) || !failed.isEmpty());
        QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed.last().at(0).toString()));
        QVERIFY(w_->isWorkspaceShown());
        LayerTableModel* layers = w_->layerModel();
        QCOMPARE(layers->layerCount(), 210);  // 30 blocks × q/k/v/o/gate/up/down
        QCOMPARE(layers->rowCount(), 30);     // the tree's top level: one row per decoder block
        for (int b = 0; b < 30; ++b) QCOMPARE(layers->rowCount(layers->index(b, 0)), 7);
    }

    // The selected layer is a real-size one (q_proj 576 × 576; the MLP's down_proj 576 × 1536) and its report is the
    // engine's solve of the GGUF's dequantized weight on the session's calibration H.
    void solvesARealSizeLayer() {
        const QString name = "model.layers.3.mlp.down_proj";
        QVERIFY(w_->selectLayer(name));
        QTRY_VERIFY_WITH_TIMEOUT(
            !w_->layerWorker()->isBusy() && w_->hasFinalReport() && !w_->chartsPending() && w_->currentLayer() == name,
            240000);
        const auto& report = w_->currentReport();
        QCOMPARE(report.out, int64_t(576));
        QCOMPARE(report.in, int64_t(1536));
        LayerSettings s = w_->controller()->effectiveSettings(name);
        const LinearLayer* l = w_->session()->layer(name.toStdString());
        QVERIFY(l);
        LayerSolver ref(w_->session()->weight(l->name()), w_->session()->hessian(*l), "reference");
        ref.update(s);
        QVERIFY(test::rel_diff(report.cloq.fro_rel, ref.metrics(InitMethod::Cloq, false).fro_rel) < 1e-9);
        QVERIFY(report.cloq.fro_rel <= report.zero.fro_rel);
    }
};

QTEST_MAIN(TestGgufModel)
#include "test_gguf_model.moc"
