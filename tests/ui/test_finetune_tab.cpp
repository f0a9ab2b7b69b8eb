// The Fine-tune tab on the demo model, through its real widgets: Start trains the chosen inits in the background and
// draws one loss line and one set of evaluation markers per init; its numbers equal `cloq finetune` run with the
// GUI's settings and calibration; the trained adapter exports as PEFT files; a settings change marks the curves as
// trained under earlier settings; Cancel stops a long run and keeps what was drawn.
#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QLabel>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtCharts/QLineSeries>
#include <QtCharts/QScatterSeries>
#include <QtTest/QtTest>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "background_job.h"
#include "cli.h"
#include "cloq/settings/profile.h"
#include "export/peft_export.h"
#include "finetune_controller.h"
#include "finetune_view.h"
#include "gui_fixture.h"
#include "main_window.h"
#include "model_session.h"
#include "session_controller.h"
#include "studio_options.h"
#include "test_support.h"
#include "theme.h"
#include "tolerances.h"

using namespace cloq;
using namespace cloq::ui;

class TestFinetuneTab : public QObject {
    Q_OBJECT
    QTemporaryDir home_;
    std::unique_ptr<MainWindow> w_;

public:
    // Environment before QtTest's watchdog thread starts (see test_profile_parity.cpp).
    TestFinetuneTab() { test::set_gui_environment(home_); }

private Q_SLOTS:
    void initTestCase() {
        w_ = test::show_main_window();
        QVERIFY(test::open_demo(*w_, /*analysed=*/true));
        w_->tabs()->setCurrentWidget(w_->finetune());
    }

    void cleanupTestCase() { test::close_main_window(w_); }

    void startDrawsCurvesThatEqualTheCli() {
        FinetuneView* v = w_->finetune();
        v->initBox("loftq")->setChecked(false);
        v->initBox("cloq-sqrt")->setChecked(true);
        v->stepsBox()->setValue(4);
        v->batchBox()->setValue(2);
        v->seqlenBox()->setValue(64);
        v->evalWindowsBox()->setValue(4);
        v->lrBox()->setValue(1e-3);
        QSignalSpy done(w_->finetuneController(), &FinetuneController::finished);
        QTest::mouseClick(v->startButton(), Qt::LeftButton);
        QVERIFY(v->cancelButton()->isEnabled());
        QVERIFY(done.wait(240000));
        QCOMPARE(done.front().front().toBool(), true);
        QVERIFY(v->startButton()->isEnabled());

        // Three runs (zero, CLoQ, CLoQ √S): a loss line of 4 steps and 5 evaluations (every step) each.
        QCOMPARE(v->table()->rowCount(), 3);
        for (int r = 0; r < 3; ++r) {
            QCOMPARE(v->lossSeries(r)->count(), 4);
            QCOMPARE(v->evalSeries(r)->count(), 5);
        }
        const auto& curves = w_->finetuneController()->curves();

        // The same runs through the CLI: the GUI's settings as a profile, its calibration, the tab's parts.
        const std::string profile = home_.path().toStdString() + "/gui.json";
        save_profile(profile, w_->controller()->currentProfile());
        const CalibSettings c = w_->session()->calib;
        const std::string out = home_.path().toStdString() + "/cli-ft";
        std::ostringstream o, e;
        const int code = cloq::cli::run({"finetune",
                                         "--model",
                                         w_->session()->dir.toStdString(),
                                         "--train",
                                         c.text_path,
                                         "--train-part",
                                         "0.25:0.75",
                                         "--eval",
                                         c.text_path,
                                         "--eval-part",
                                         "0:0.25",
                                         "--eval-windows",
                                         "4",
                                         "--profile",
                                         profile,
                                         "--calib",
                                         c.text_path,
                                         "--calib-nsamples",
                                         std::to_string(c.nsamples),
                                         "--calib-seqlen",
                                         std::to_string(c.seqlen),
                                         "--seed",
                                         std::to_string(c.seed),
                                         "--inits",
                                         "zero,cloq",
                                         "--splits",
                                         "default,sqrt",
                                         "--steps",
                                         "4",
                                         "--batch",
                                         "2",
                                         "--seqlen",
                                         "64",
                                         "--lr",
                                         "0.001",
                                         "--eval-every",
                                         "1",
                                         "--out",
                                         out},
                                        o, e);
        QVERIFY2(code == 0, e.str().c_str());
        std::ifstream in(out + "/curves.json");
        const nlohmann::json j = nlohmann::json::parse(in);
        QCOMPARE(j["runs"].size(), size_t(3));
        for (int r = 0; r < 3; ++r) {
            QCOMPARE(QString::fromStdString(j["runs"][r]["label"]), QString::fromStdString(curves[r].init.label()));
            for (int k = 0; k < 5; ++k) {
                const double cli = j["runs"][r]["eval"][k]["ppl"].get<double>();
                QVERIFY2(cloq::test::rel_diff(cli, curves[r].eval_ppl[k].second) < cloq::test::tol::kFloat32Reference,
                         qPrintable(QString("run %1 eval %2: GUI %3, CLI %4")
                                        .arg(r)
                                        .arg(k)
                                        .arg(curves[r].eval_ppl[k].second)
                                        .arg(cli)));
            }
        }
        // The table shows the first and last evaluation.
        QCOMPARE(v->table()->item(1, 1)->text(), format_number(curves[1].eval_ppl.front().second, 4));

        // Export of the selected row's adapter: PEFT files that read back with every module adapted.
        const QString dir = home_.path() + "/exported";
        w_->finetuneController()->exportAdapter(1, dir);
        QCOMPARE(read_peft_adapter(dir.toStdString()).modules.size(), w_->session()->layers.size());
    }

    // The precision box reaches the tuner's options: float32 (autocast off) by default, bfloat16 autocast on choice.
    void precisionBoxSetsAutocast() {
        FinetuneView* v = w_->finetune();
        QCOMPARE(v->precisionBox()->currentText(), QString("float32"));
        QCOMPARE(v->plan().options.autocast, Autocast::Off);
        v->precisionBox()->setCurrentIndex(v->precisionBox()->findText("bfloat16"));
        QCOMPARE(v->plan().options.autocast, Autocast::BFloat16);
        v->precisionBox()->setCurrentIndex(0);
    }

    void settingsChangeMarksCurvesStale() {
        // "To the whole model" with another rank.
        const QString first = QString::fromStdString(w_->session()->layers.front().name());
        LayerSettings s = w_->controller()->effectiveSettings(first);
        s.rank = s.rank == 8 ? 4 : 8;
        w_->controller()->setOverride(first, s);
        w_->controller()->applyToModel(first);
        QVERIFY2(w_->finetune()->stateLabel()->text().contains("earlier settings"),
                 qPrintable(w_->finetune()->stateLabel()->text()));
    }

    void cancelStopsAndKeepsTheCurves() {
        FinetuneView* v = w_->finetune();
        v->stepsBox()->setValue(100000);
        QSignalSpy done(w_->finetuneController(), &FinetuneController::finished);
        QTest::mouseClick(v->startButton(), Qt::LeftButton);
        QTRY_VERIFY_WITH_TIMEOUT(!w_->finetuneController()->curves().isEmpty(), 60000);
        QTest::mouseClick(v->cancelButton(), Qt::LeftButton);
        QVERIFY(done.wait(30000));
        QCOMPARE(done.front().front().toBool(), false);
        QVERIFY(v->stateLabel()->text().contains("cancelled"));
        QVERIFY(v->table()->rowCount() >= 1);
    }
};

QTEST_MAIN(TestFinetuneTab)
#include "test_finetune_tab.moc"
