// Every number the GUI shows or exports is current (issue 17), checked on the real widgets against a fresh
// `cloq analyze` of the same settings: after "To the whole model", after loading a profile and after switching to
// a differently shaped model, every explorer row and the Overview equal the CLI once recomputation ends; while it
// runs, no row marked current ever shows a number other than the final one for its settings; an export with charts
// waits for the explorer, and its overview (charts/overview.json, drawn into overview.png) equals its report.json;
// a rank above a layer's min(out, in) reaches the exporter clamped.
// cloq-test-labels: slow
// cloq-test-timeout: 600
#include <QBarSet>
#include <QLineSeries>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QtTest/QtTest>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "background_job.h"
#include "chart_panel.h"
#include "cli_run.h"
#include "cloq/settings/profile.h"
#include "export_dialog.h"
#include "gui_fixture.h"
#include "layer_table_model.h"
#include "main_window.h"
#include "model_session.h"
#include "overview_view.h"
#include "session_controller.h"
#include "studio_options.h"
#include "test_gguf_writer.h"
#include "test_support.h"
#include "theme.h"
#include "tolerances.h"

using namespace cloq;
using namespace cloq::ui;

namespace {
struct CliMetrics {
    int bits = 0, rank = 0;
    double zero = 0, loftq = 0, cloq = 0;
};
}  // namespace

class TestCurrentNumbers : public QObject {
    Q_OBJECT
    QTemporaryDir home_;
    std::unique_ptr<MainWindow> w_;
    // Every (layer → CLoQ value) a row showed while marked current during a recomputation.
    std::multimap<QString, std::pair<LayerSettings, double>> seenCurrent_;
    QMetaObject::Connection watch_;

public:
    TestCurrentNumbers() { test::set_gui_environment(home_); }

private:
    SessionController* controller() const { return w_->controller(); }
    LayerTableModel* rows() const { return w_->layerModel(); }

    // Waits until no analysis runs and every analysable row is current.
    bool waitAllCurrent(int timeout_ms = 300000) {
        QElapsedTimer t;
        t.start();
        while (t.elapsed() < timeout_ms) {
            QTest::qWait(50);
            if (rows()->currentCount() == rows()->analysableCount() && !controller()->currentJob()) return true;
        }
        return false;
    }

    // Records every row that is current after each model change: its value must be the final one.
    void startWatching() {
        seenCurrent_.clear();
        watch_ = connect(rows(), &QAbstractItemModel::dataChanged, this, [this] {
            for (const LayerRow& r : rows()->layers())
                if (r.current()) seenCurrent_.emplace(r.name, std::make_pair(r.settings, r.cloq.fro_rel));
        });
    }

    // `cloq analyze --profile` of the GUI's current settings on the open model, per layer.
    std::map<QString, CliMetrics> cliAnalysis(const QString& tag) {
        const std::string profile = home_.path().toStdString() + "/" + tag.toStdString() + "-profile.json";
        save_profile(profile, controller()->currentProfile());
        const std::string report = home_.path().toStdString() + "/" + tag.toStdString() + "-analyze.json";
        const CalibSettings c = w_->session()->calib;
        const cloq::test::CliRun r = cloq::test::cloq_run(
            {"analyze", "--model", w_->session()->dir.toStdString(), "--profile", profile, "--no-spectral", "--out",
             report, "--calib", c.text_path, "--calib-nsamples", std::to_string(c.nsamples), "--calib-seqlen",
             std::to_string(c.seqlen), "--seed", std::to_string(c.seed)});
        if (r.code != 0) qFatal("cloq analyze failed: %s", r.err.c_str());
        const auto j = nlohmann::json::parse(std::ifstream(report));
        std::map<QString, CliMetrics> out;
        for (const auto& l : j["layers"]) {
            CliMetrics m;
            m.bits = l["bits"].get<int>();
            m.rank = l["rank"].get<int>();
            m.zero = l["metrics"]["zero"]["fro_rel"].get<double>();
            m.loftq = l["metrics"]["loftq"]["fro_rel"].get<double>();
            m.cloq = l["metrics"]["cloq"]["fro_rel"].get<double>();
            out[QString::fromStdString(l["name"].get<std::string>())] = m;
        }
        return out;
    }

    // Every explorer row and the Overview's series equal a fresh `cloq analyze`, and every value a row showed as
    // current while recomputing was its final value.
    void checkAgainstCli(const QString& tag) {
        QVERIFY2(waitAllCurrent(), qPrintable(tag + ": recomputation did not end"));
        disconnect(watch_);
        const auto cli = cliAnalysis(tag);
        QCOMPARE(int(cli.size()), rows()->analysableCount());
        for (const LayerRow& r : rows()->layers()) {
            if (r.skipped) continue;
            const auto it = cli.find(r.name);
            QVERIFY2(it != cli.end(), qPrintable(r.name));
            const CliMetrics& m = it->second;
            QVERIFY2(r.current(), qPrintable(r.name));
            QCOMPARE(r.settings.rank, m.rank);
            QCOMPARE(r.settings.quant.bits, m.bits);
            QVERIFY2(test::rel_diff(r.zero.fro_rel, m.zero) < test::tol::kSamePath, qPrintable(tag + " " + r.name));
            QVERIFY2(test::rel_diff(r.loftq.fro_rel, m.loftq) < test::tol::kSamePath, qPrintable(tag + " " + r.name));
            QVERIFY2(test::rel_diff(r.cloq.fro_rel, m.cloq) < test::tol::kSamePath, qPrintable(tag + " " + r.name));
        }
        for (const auto& [name, seen] : seenCurrent_) {
            const CliMetrics& m = cli.at(name);
            if (seen.first.rank != m.rank || seen.first.quant.bits != m.bits) continue;  // earlier settings
            QVERIFY2(test::rel_diff(seen.second, m.cloq) < test::tol::kSamePath,
                     qPrintable(tag + ": " + name + " showed an older number while marked current"));
        }
        // The Overview draws exactly the current rows, in model order, with the CLI's values.
        QApplication::processEvents();
        OverviewView* ov = w_->overviewView();
        QCOMPARE(ov->analysedCount(), int(cli.size()));
        const QList<QPointF> pts = ov->cloqSeries()->points();
        QCOMPARE(int(pts.size()), int(cli.size()));
        int i = 0;
        double sum = 0;
        for (const LayerRow& r : rows()->layers()) {
            if (r.skipped) continue;
            QVERIFY2(test::rel_diff(pts[i].y(), cli.at(r.name).cloq) < test::tol::kSamePath, qPrintable(r.name));
            sum += cli.at(r.name).cloq;
            ++i;
        }
        QVERIFY2(ov->caption().contains(QString("%1 of %1 layers current").arg(cli.size())), qPrintable(ov->caption()));
        QVERIFY2(ov->caption().contains(format_number(sum / cli.size())), qPrintable(ov->caption()));
        qInfo("%s: %zu rows equal cloq analyze; %zu current values seen while recomputing", qPrintable(tag), cli.size(),
              seenCurrent_.size());
    }

private Q_SLOTS:
    void initTestCase() {
        w_ = test::show_main_window();
        QVERIFY(test::open_demo(*w_));
        QVERIFY(waitAllCurrent());
    }

    void cleanupTestCase() { test::close_main_window(w_); }

    // "To the whole model": every row goes stale at once (none shows its old number as current), the selected
    // layer is solved by its worker, the rest in the background; at the end all equal the CLI.
    void wholeModelChange() {
        const QString q = "model.layers.0.self_attn.q_proj";
        QVERIFY(w_->selectLayer(q));
        LayerSettings s = controller()->effectiveSettings(q);
        s.quant.bits = 2;
        s.quant.group = 32;
        s.rank = 6;
        startWatching();
        controller()->setOverride(q, s);
        controller()->applyToModel(q);
        // At once: no row is current (every row's settings changed), and the overview draws none of them.
        QCOMPARE(rows()->currentCount(), 0);
        QApplication::processEvents();
        QCOMPARE(w_->overviewView()->analysedCount(), 0);
        const QModelIndex cell = rows()->indexOfLayer("model.layers.3.mlp.up_proj", LayerTableModel::Cloq);
        QVERIFY(rows()->data(cell, LayerTableModel::StaleRole).toBool());
        checkAgainstCli("whole-model");
    }

    // A second change while the first recomputation runs: the running pass restarts, nothing stale survives.
    void changeDuringRecomputation() {
        const QString v = "model.layers.2.self_attn.v_proj";
        startWatching();
        LayerSettings s = controller()->effectiveSettings(v);
        s.rank = 3;
        controller()->setOverride(v, s);
        controller()->applyToModel(v);
        QTest::qWait(300);  // the pass is under way
        controller()->applyToKind("model.layers.1.mlp.down_proj");
        LayerSettings d = controller()->effectiveSettings("model.layers.1.mlp.down_proj");
        d.quant.bits = 3;
        d.rank = 5;
        controller()->setOverride("model.layers.1.mlp.down_proj", d);
        controller()->applyToKind("model.layers.1.mlp.down_proj");
        checkAgainstCli("change-during");
    }

    // A loaded profile (per-kind overrides, a skipped module) is recomputed in full.
    void profileLoad() {
        SettingsProfile p;
        p.global.quant.bits = 3;
        p.global.quant.group = 64;
        p.global.rank = 10;
        LayerOverride kv;
        kv.match = "self_attn\\.[kv]_proj";
        kv.settings = {{"bits", 4}, {"rank", 40}};  // above the 32-wide k/v: clamped
        LayerOverride skip;
        skip.match = "layers\\.1\\.mlp\\.gate_proj";
        skip.skip = true;
        p.overrides = {kv, skip};
        const std::string path = home_.path().toStdString() + "/loaded.json";
        save_profile(path, p);
        startWatching();
        w_->loadProfile(QString::fromStdString(path));
        QVERIFY(rows()->layer("model.layers.1.mlp.gate_proj")->skipped);
        QCOMPARE(rows()->analysableCount(), rows()->layerCount() - 1);
        QCOMPARE(rows()->layer("model.layers.0.self_attn.k_proj")->settings.rank, 32);
        checkAgainstCli("profile");
    }

    // An export with charts started while rows are stale waits for them; its overview equals its report.json, and
    // the rank above a layer's width reaches the exporter clamped (rank 40 to the whole model).
    void exportChartsEqualTheReport() {
        const QString q = "model.layers.0.self_attn.q_proj";
        LayerSettings s = controller()->effectiveSettings(q);
        s.quant.bits = 2;
        s.quant.group = 32;
        s.rank = 40;
        controller()->setOverride(q, s);
        controller()->applyToModel(q);
        QVERIFY(rows()->currentCount() < rows()->analysableCount());
        w_->showExportDialog();
        ExportDialog* d = w_->exportDialog();
        QVERIFY(d->summaryText().contains("kept in float"));
        QVERIFY2(d->summaryText().contains("k_proj: 2-bit, group 32, rank 32"), qPrintable(d->summaryText()));
        QTemporaryDir out;
        ExportRequest req = d->request();
        req.folder = out.path() + "/export";
        req.base_format = "gptq";
        req.charts = true;
        req.zip = false;
        d->setRequest(req);
        QSignalSpy finished(d, &ExportDialog::exportFinished);
        d->startExport();
        QVERIFY2(d->statusText().contains("Waiting for"), qPrintable(d->statusText()));
        QVERIFY(finished.wait(300000));
        QVERIFY2(finished.last().at(0).toBool(), qPrintable(finished.last().at(1).toString()));
        const auto report = nlohmann::json::parse(std::ifstream((req.folder + "/report.json").toStdString()));
        const auto drawn = nlohmann::json::parse(std::ifstream((req.folder + "/charts/overview.json").toStdString()));
        QVERIFY(QFile::exists(req.folder + "/charts/overview.png"));
        std::map<std::string, nlohmann::json> modules;
        double sum = 0;
        int quantized = 0;
        for (const auto& m : report["modules"])
            if (m["quantized"].get<bool>()) {
                modules[m["module"].get<std::string>()] = m;
                sum += m["metrics"]["cloq"]["fro_rel"].get<double>();
                ++quantized;
            }
        QCOMPARE(int(drawn["layers"].size()), quantized);  // the float modules are not drawn as quantized
        for (const auto& l : drawn["layers"]) {
            const std::string name = l["name"].get<std::string>();
            QVERIFY2(modules.count(name), name.c_str());
            const auto& m = modules[name];
            QCOMPARE(l["rank"].get<int>(), m["settings"]["rank"].get<int>());
            const LayerRow* row = rows()->layer(QString::fromStdString(name));
            QVERIFY2(l["rank"].get<int>() <= std::min(row->out, row->in), name.c_str());  // k/v: 40 → 32
            QVERIFY2(test::rel_diff(l["cloq_fro_rel"].get<double>(), m["metrics"]["cloq"]["fro_rel"].get<double>()) <
                         test::tol::kSamePath,
                     name.c_str());
            if (m["metrics"].contains("zero"))
                QVERIFY2(test::rel_diff(l["zero_fro_rel"].get<double>(),
                                        m["metrics"]["zero"]["fro_rel"].get<double>()) < test::tol::kSamePath,
                         name.c_str());
        }
        const QString caption = QString::fromStdString(drawn["caption"].get<std::string>());
        QVERIFY2(caption.contains(format_number(sum / quantized)), qPrintable(caption));
        QVERIFY2(caption.contains("kept in float"), qPrintable(caption));
        d->close();
        // Reopened, the dialog does not show the previous outcome.
        w_->showExportDialog();
        QVERIFY(d->statusText().isEmpty());
        d->close();
    }

    // A perplexity belongs to its settings: a change withdraws it at once (bars emptied, the reason shown).
    void perplexityIsWithdrawnOnChange() {
        QSignalSpy done(w_.get(), &MainWindow::perplexityFinished);
        w_->computePerplexity();
        QVERIFY(done.wait(300000));
        QVERIFY(done.last().at(0).toBool());
        QVERIFY(w_->perplexity().has_value());
        QVERIFY(w_->overviewView()->perplexityBar(0) > 0);
        const QString q = "model.layers.1.self_attn.q_proj";
        LayerSettings s = controller()->effectiveSettings(q);
        s.rank = 2;
        controller()->setOverride(q, s);
        QVERIFY(!w_->perplexity().has_value());
        QCOMPARE(w_->overviewView()->perplexityBar(0), 0.0);
        QVERIFY(waitAllCurrent());
    }

    // A model switch: rows, ranks and numbers all come from the new model (no rank clamped for the old one).
    void modelSwitch() {
        const QString gguf = home_.path() + "/wide.gguf";
        {
            std::ofstream f(gguf.toStdString(), std::ios::binary);
            const std::string bytes = test::wide_random_llama_gguf();
            f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        }
        QSignalSpy opened(w_.get(), &MainWindow::modelOpened);
        startWatching();
        w_->openModel(gguf);
        QVERIFY(opened.wait(120000));
        QCOMPARE(rows()->layerCount(), 14);
        for (const LayerRow& r : rows()->layers()) {
            QVERIFY2(!r.overridden && !r.skipped, qPrintable(r.name));
            QCOMPARE(r.settings.rank, controller()->defaults().rank);  // 128 / 4 = 32 everywhere, none clamped
        }
        QCOMPARE(controller()->defaults().rank, 32);
        checkAgainstCli("model-switch");
    }
};

QTEST_MAIN(TestCurrentNumbers)
#include "test_current_numbers.moc"
