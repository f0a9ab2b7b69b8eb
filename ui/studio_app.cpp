#include "studio_app.h"

#include <QApplication>
#include <QDir>
#include <QFileInfo>
#include <QFontDatabase>
#include <QIcon>
#include <QSettings>
#include <QTextStream>
#include <QThreadPool>
#include <QTimer>

#include <QLabel>
#include <QPushButton>
#include "background_job.h"
#include "cloq/base/error.h"
#include "layer_report.h"
#include "main_window.h"
#include "model_session.h"

#include "budget_controller.h"
#include "budget_view.h"
#include "finetune_controller.h"
#include "finetune_view.h"
#include "playground_view.h"
#include "studio_options.h"
#include "theme.h"

namespace cloq::ui {
namespace {

// Drives a --screenshot run: open, select, wait for the view to be computed, save, quit. Exits non-zero with a
// message on any failure or after the timeout.
class ScreenshotRunner : public QObject {
public:
    ScreenshotRunner(MainWindow* w, const StudioOptions& o) : QObject(w), w_(w), o_(o) {}

    void start() {
        auto* timeout = new QTimer(this);
        timeout->setSingleShot(true);
        connect(timeout, &QTimer::timeout, this,
                [this] { fail(QString("timed out after %1 s waiting for the analysis").arg(o_.timeout_s)); });
        timeout->start(o_.timeout_s * 1000);
        if (o_.tab == "playground" && o_.model_dir.isEmpty() && !o_.demo) {
            w_->showWorkspace();
            w_->setTab("playground");
            connect(w_->playground(), &PlaygroundView::reportShown, this, [this] { settle(); });
            w_->playground()->start();
            return;
        }
        connect(w_, &MainWindow::modelOpenFailed, this,
                [this](const QString& m) { fail("cannot open the model: " + m); });
        connect(w_, &MainWindow::layerFailed, this, [this](const QString& l, const QString& m) { fail(l + ": " + m); });
        connect(w_, &MainWindow::modelOpened, this, [this] { opened(); });
        connect(w_, &MainWindow::layerReportShown, this, [this](const QString& l, bool final) {
            if (final && l == w_->currentLayer()) layerDone_ = true;
            check();
        });
        connect(w_, &MainWindow::analysisFinished, this, [this](bool) {
            analysisDone_ = true;
            check();
        });
        connect(w_, &MainWindow::perplexityFinished, this, [this](bool) {
            perplexityDone_ = true;
            check();
        });
        if (o_.demo) {
            if (!w_->openDemo()) return;
        } else {
            w_->openModel(QFileInfo(o_.model_dir).absoluteFilePath(), calibrationFor(o_.model_dir));
        }
    }

    CalibSettings calibrationFor(const QString&) const {
        CalibSettings c = default_calibration(find_demo().text_path);
        if (!o_.calib_text.isEmpty()) c.text_path = o_.calib_text.toStdString();
        if (o_.nsamples > 0) c.nsamples = o_.nsamples;
        if (o_.seqlen > 0) c.seqlen = o_.seqlen;
        return c;
    }

private:
    void opened() {
        if (!o_.profile.isEmpty()) {
            try {
                w_->loadProfile(o_.profile);
            } catch (const std::exception& e) {
                fail(QString::fromStdString(cloq::error_message(e)));
                return;
            }
        }
        if (!o_.layer.isEmpty() && o_.layer != w_->currentLayer() && !w_->selectLayer(o_.layer)) {
            fail("no linear layer named '" + o_.layer + "' (e.g. " + w_->currentLayer() + ")");
            return;
        }
        const QString tab = o_.tab.isEmpty() ? QString("discrepancy") : o_.tab;
        w_->setTab(tab);
        // Small models are analysed automatically after opening: wait for it so the explorer's colours are in.
        needAnalysis_ = tab == "overview" || w_->session()->files.config.num_parameters() <= 50'000'000;
        needPerplexity_ = tab == "overview";
        if (tab == "playground") {
            needPlayground_ = true;
            connect(w_->playground(), &PlaygroundView::reportShown, this, [this] {
                playgroundDone_ = true;
                check();
            });
            w_->playground()->start();
        }
        if (tab == "finetune") {
            // The tab's default plan (zero, LoftQ, CLoQ; 100 steps): the picture shows finished curves.
            needFinetune_ = true;
            connect(w_->finetuneController(), &FinetuneController::finished, this, [this](bool ok) {
                if (!ok) {
                    fail("fine-tuning did not finish: " + w_->finetune()->stateLabel()->text());
                    return;
                }
                finetuneDone_ = true;
                check();
            });
            w_->finetune()->startButton()->click();
        }
        if (tab == "budget") {
            // The curves under the default candidates, the budget at the settings' uniform size.
            needBudget_ = true;
            connect(w_->budgetController(), &BudgetController::finished, this, [this](bool ok) {
                if (!ok) {
                    fail("budget planning did not finish: " + w_->budget()->stateLabel()->text());
                    return;
                }
                budgetDone_ = true;
                check();
            });
            w_->budget()->computeButton()->click();
        }
        if (needAnalysis_) {
            w_->analyzeAll();  // no-op when the automatic analysis already runs
        }
        if (needPerplexity_) w_->computePerplexity();
        started_ = true;
        check();
    }

    void check() {
        if (!started_ || settling_) return;
        if (!layerDone_ && !w_->hasFinalReport()) return;
        if (needAnalysis_ && !analysisDone_) return;
        if (needPerplexity_ && !perplexityDone_) return;
        if (needPlayground_ && !playgroundDone_ && !w_->playground()->hasReport()) return;
        if (needFinetune_ && !finetuneDone_) return;
        if (needBudget_ && !budgetDone_) return;
        settle();
    }

    void settle() {
        if (settling_) return;
        settling_ = true;
        // Let queued repaints and layouts run before grabbing.
        QTimer::singleShot(400, this, [this] { save(); });
    }

    void save() {
        QDir().mkpath(QFileInfo(o_.screenshot).absolutePath());
        const QPixmap pix = w_->grab();
        if (!pix.save(o_.screenshot, "PNG")) {
            fail("cannot write " + o_.screenshot);
            return;
        }
        QTextStream(stdout) << o_.screenshot << " (" << pix.width() << "x" << pix.height() << ")\n";
        w_->cancelJobs();
        QCoreApplication::exit(0);
    }

    void fail(const QString& message) {
        if (failed_) return;
        failed_ = true;
        QTextStream(stderr) << "cloq-studio: screenshot failed: " << message << "\n";
        w_->cancelJobs();
        QCoreApplication::exit(1);
    }

    MainWindow* w_;
    StudioOptions o_;
    bool started_ = false, settling_ = false, failed_ = false;
    bool layerDone_ = false, analysisDone_ = false, perplexityDone_ = false, playgroundDone_ = false;
    bool needFinetune_ = false, finetuneDone_ = false;
    bool needBudget_ = false, budgetDone_ = false;
    bool needAnalysis_ = false, needPerplexity_ = false, needPlayground_ = false;
};

}  // namespace

int run_studio(QApplication& app) {
    int code = 0;
    const auto opts = parse_studio_options(app.arguments(), &code);
    if (!opts) return code;
    app.setWindowIcon(QIcon(":/cloq/icons/cloq-studio.svg"));
    apply_theme(app, parse_theme(opts->theme.isEmpty() ? QSettings().value("theme", "light").toString() : opts->theme));

    int result = 0;
    {
        MainWindow window;
        if (opts->size.isValid()) window.resize(opts->size);
        if (!opts->screenshot.isEmpty()) {
            window.show();
            auto* runner = new ScreenshotRunner(&window, *opts);
            QTimer::singleShot(0, runner, [runner] { runner->start(); });
        } else {
            window.show();
            if (opts->demo) {
                window.openDemo();
            } else if (!opts->model_dir.isEmpty()) {
                window.openModel(QFileInfo(opts->model_dir).absoluteFilePath());
            } else if (!opts->tab.isEmpty()) {
                window.showWorkspace();
                window.setTab(opts->tab);
            }
        }
        result = app.exec();
        window.cancelJobs();
        // Jobs hold the session; let them stop before the window (and the engine state it points to) goes away.
        BackgroundJob::jobPool()->waitForDone();
    }
    return result;
}

}  // namespace cloq::ui
