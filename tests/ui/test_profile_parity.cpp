// The GUI computes nothing the CLI cannot: on the demo model (stories260K) under a profile with per-module
// overrides and a skipped module, the explorer's rows after "Analyze all layers" equal `cloq analyze --profile`'s
// report, and the overview's perplexities equal `cloq eval --profile` for each init. The CLI also finds the
// calibration the GUI cached (one cache folder for both front ends).
// cloq-test-labels: slow
// cloq-test-timeout: 600
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QtTest/QtTest>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "background_job.h"
#include "cli_run.h"
#include "cloq/settings/profile.h"
#include "gui_fixture.h"
#include "layer_table_model.h"
#include "main_window.h"
#include "model_session.h"
#include "session_controller.h"
#include "studio_options.h"
#include "test_support.h"
#include "theme.h"
#include "tolerances.h"

using namespace cloq;
using namespace cloq::ui;

namespace {

// The last line of `cloq eval --json`.
nlohmann::json last_json_line(const std::string& text) {
    std::istringstream in(text);
    std::string line, last;
    while (std::getline(in, line))
        if (!line.empty() && line[0] == '{') last = line;
    return nlohmann::json::parse(last);
}

}  // namespace

class TestProfileParity : public QObject {
    Q_OBJECT
    QTemporaryDir home_;
    std::unique_ptr<MainWindow> w_;
    std::string profile_path_;
    std::vector<std::string> calib_args_;

public:
    // The environment is set here, before QtTest starts its watchdog thread: setenv while another thread reads
    // the environment (the watchdog does, at every test function) is a data race that crashed a suite once.
    TestProfileParity() { test::set_gui_environment(home_); }

private Q_SLOTS:
    void initTestCase() {
        QVERIFY(!find_demo().model_dir.isEmpty());
        w_ = test::show_main_window();
        // A small model is analysed on opening (under the default settings); let that finish first.
        QVERIFY(test::open_demo(*w_, /*analysed=*/true));

        // Per-module settings of every kind a profile can hold: other bits and rank, a rank above a 32-wide
        // layer's min(out, in) (clamped by the engine), and a module left unquantized.
        SettingsProfile p;
        p.global.quant.bits = 2;
        p.global.quant.group = 32;
        p.global.rank = 8;
        LayerOverride down;
        down.match = "mlp\\.down_proj";
        down.settings = {{"bits", 3}, {"rank", 4}};
        LayerOverride kv;
        kv.match = "layers\\.0\\.self_attn\\.[kv]_proj";
        kv.settings = {{"rank", 40}};
        LayerOverride skip;
        skip.match = "layers\\.4\\.mlp\\.up_proj";
        skip.skip = true;
        p.overrides = {down, kv, skip};
        profile_path_ = home_.path().toStdString() + "/profile.json";
        save_profile(profile_path_, p);
        w_->loadProfile(QString::fromStdString(profile_path_));
        const CalibSettings c = w_->session()->calib;  // the GUI's calibration: the CLI is given the same
        calib_args_ = {"--calib",          c.text_path,
                       "--calib-nsamples", std::to_string(c.nsamples),
                       "--calib-seqlen",   std::to_string(c.seqlen),
                       "--seed",           std::to_string(c.seed)};
    }

    void cleanupTestCase() { test::close_main_window(w_); }

    // Every explorer row after "Analyze all layers" equals `cloq analyze --profile` (same code, same numbers), and
    // the CLI's calibration comes from the cache the GUI wrote.
    void analyzeMatchesTheCli() {
        QSignalSpy done(w_.get(), &MainWindow::analysisFinished);
        w_->analyzeAll();
        if (done.isEmpty()) QVERIFY(done.wait(300000));
        QVERIFY(done.last().at(0).toBool());

        const std::string report = home_.path().toStdString() + "/analyze.json";
        std::vector<std::string> args = {"analyze",   "--model",     find_demo().model_dir.toStdString(),
                                         "--profile", profile_path_, "--no-spectral",
                                         "--out",     report};
        args.insert(args.end(), calib_args_.begin(), calib_args_.end());
        const cloq::test::CliRun r = cloq::test::cloq_run(args);
        QVERIFY2(r.code == 0, r.err.c_str());
        const auto j = nlohmann::json::parse(std::ifstream(report));
        QVERIFY2(j["calibration"]["from_cache"].get<bool>(), "cloq analyze did not reuse the GUI's calibration");
        QCOMPARE(j["layers"].size(), size_t(34));  // 35 linear layers, one skipped by the profile
        int compared = 0;
        for (const auto& l : j["layers"]) {
            const QString name = QString::fromStdString(l["name"].get<std::string>());
            const LayerRow* row = w_->layerModel()->layer(name);
            QVERIFY2(row && row->has_metrics, qPrintable(name));
            QCOMPARE(row->settings.rank, l["rank"].get<int>());
            const auto& m = l["metrics"];
            QVERIFY2(test::rel_diff(row->zero.fro_rel, m["zero"]["fro_rel"].get<double>()) < test::tol::kSamePath,
                     qPrintable(name));
            QVERIFY2(test::rel_diff(row->loftq.fro_rel, m["loftq"]["fro_rel"].get<double>()) < test::tol::kSamePath,
                     qPrintable(name));
            QVERIFY2(test::rel_diff(row->cloq.fro_rel, m["cloq"]["fro_rel"].get<double>()) < test::tol::kSamePath,
                     qPrintable(name));
            ++compared;
        }
        QCOMPARE(compared, 34);
        // The clamped layers: rank 40 on a 32-wide k_proj is solved at 32 by both.
        QCOMPARE(w_->layerModel()->layer("model.layers.0.self_attn.k_proj")->settings.rank, 32);
    }

    // The overview's perplexities equal `cloq eval --profile` with each init.
    void perplexityMatchesTheCli() {
        QSignalSpy done(w_.get(), &MainWindow::perplexityFinished);
        w_->computePerplexity();
        QVERIFY(done.wait(300000));
        QVERIFY(done.last().at(0).toBool());
        const auto& gui = *w_->perplexity();
        const CalibSettings c = w_->session()->calib;
        for (const auto& [init, value] : std::vector<std::pair<std::string, double>>{
                 {"zero", gui.zero}, {"loftq", gui.loftq}, {"cloq", gui.cloq}}) {
            std::vector<std::string> args = {"eval",
                                             "--model",
                                             find_demo().model_dir.toStdString(),
                                             "--data",
                                             c.text_path,
                                             "--seqlen",
                                             std::to_string(c.seqlen),
                                             "--nsamples",
                                             "32",
                                             "--profile",
                                             profile_path_,
                                             "--init",
                                             init,
                                             "--json"};
            args.insert(args.end(), calib_args_.begin(), calib_args_.end());
            const cloq::test::CliRun r = cloq::test::cloq_run(args);
            QVERIFY2(r.code == 0, r.err.c_str());
            const double cli = last_json_line(r.out)["ppl"].get<double>();
            qInfo("%s: GUI %.6f, cloq eval --profile %.6f", init.c_str(), value, cli);
            QVERIFY2(test::rel_diff(cli, value) < test::tol::kSameForward, init.c_str());
        }
    }

    // "To the whole model" with rank 40 on a model whose k/v projections are 32 wide: the settings every consumer
    // reads (export, profile file) carry the clamped rank, and `cloq quantize` runs on the saved profile.
    void rankAboveLayerWidthIsClampedForExport() {
        const QString q = "model.layers.0.self_attn.q_proj";
        LayerSettings s = w_->controller()->effectiveSettings(q);
        s.rank = 40;
        w_->controller()->setOverride(q, s);
        w_->controller()->applyToModel(q);
        const ResolvedProfile r = w_->controller()->resolvedProfile();
        int clamped = 0;
        for (const auto& l : w_->session()->layers) {
            const int rank = r.settings_for(l.name()).rank;
            QVERIFY2(rank <= std::min(l.in, l.out), qPrintable(QString::fromStdString(l.name())));
            clamped += rank < 40;
        }
        QVERIFY(clamped > 0);  // the 32-wide k/v projections
        const std::string path = home_.path().toStdString() + "/rank40.json";
        save_profile(path, w_->controller()->currentProfile());
        const std::string out = home_.path().toStdString() + "/rank40-export";
        std::vector<std::string> args = {"quantize",      "--model", w_->session()->dir.toStdString(),
                                         "--profile",     path,      "--no-compare",
                                         "--no-spectral", "--out",   out};
        args.insert(args.end(), calib_args_.begin(), calib_args_.end());
        const cloq::test::CliRun res = cloq::test::cloq_run(args);
        QVERIFY2(res.code == 0, res.err.c_str());
    }
};

QTEST_MAIN(TestProfileParity)
#include "test_profile_parity.moc"
