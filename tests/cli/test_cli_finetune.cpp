// `cloq finetune` in-process on stories260K: the output folder (curves.json, curves.csv, one PEFT adapter per run),
// step 0 equal to `cloq eval` of the same quantized model, and bad arguments failing before any work without leaving
// an output folder.
#include <QtTest/QtTest>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_run.h"
#include "export/peft_export.h"
#include "test_support.h"
#include "tolerances.h"

using nlohmann::json;
namespace fs = std::filesystem;
using cloq::test::cloq_run;
using cloq::test::last_line;
using Run = cloq::test::CliRun;

namespace {
// Calibration, training and evaluation from disjoint parts of TinyStories, small enough for a unit test.
std::vector<std::string> base_args(const std::string& out, const std::string& steps = "4") {
    const std::string text = cloq::test::tinystories_path();
    return {"finetune",
            "--model",
            cloq::test::demo_model_dir(),
            "--train",
            text,
            "--train-part",
            "0.25:0.75",
            "--eval",
            text,
            "--eval-part",
            "0:0.25",
            "--calib-part",
            "0.75:1",
            "--calib-nsamples",
            "8",
            "--calib-seqlen",
            "64",
            "--no-cache",
            "--bits",
            "2",
            "--group",
            "64",
            "--rank",
            "8",
            "--steps",
            steps,
            "--batch",
            "2",
            "--seqlen",
            "64",
            "--eval-windows",
            "4",
            "--out",
            out};
}
}  // namespace

class TestCliFinetune : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void writesCurvesAndAdapters() {
        QTemporaryDir tmp;
        const std::string out = tmp.filePath("ft").toStdString();
        auto args = base_args(out);
        for (const char* a : {"--inits", "zero,cloq", "--splits", "default,sqrt", "--json"}) args.push_back(a);
        const Run r = cloq_run(args);
        QVERIFY2(r.code == 0, r.err.c_str());
        const json summary = json::parse(last_line(r.out));
        QCOMPARE(summary["final_ppl"].size(), size_t(3));  // zero, cloq, cloq-sqrt

        std::ifstream in(out + "/curves.json");
        const json j = json::parse(in);
        QCOMPARE(j["format"].get<std::string>(), std::string("cloq-finetune"));
        QCOMPARE(j["train"]["part"].get<std::string>(), std::string("0.25:0.75"));
        QCOMPARE(j["eval"]["part"].get<std::string>(), std::string("0:0.25"));
        QCOMPARE(j["calibration"]["part"].get<std::string>(), std::string("0.75:1"));
        QCOMPARE(j["eval"]["windows_evaluated"].get<int>(), 4);
        QCOMPARE(j["runs"].size(), size_t(3));
        for (const auto& run : j["runs"]) {
            QCOMPARE(run["train_loss"].size(), size_t(4));
            QCOMPARE(run["eval"].size(), size_t(5));  // every step: --eval-every defaults to steps / 4 = 1
            QVERIFY(run["seconds_per_step"].get<double>() > 0);
            QVERIFY(run["peak_rss_bytes"].get<int64_t>() > 0);
            const std::string adir = out + "/" + run["adapter"].get<std::string>();
            const auto adapter = cloq::read_peft_adapter(adir);
            QCOMPARE(adapter.modules.size(), size_t(35));
        }
        // The two CLoQ splits start from the same model (same product), so their step 0 agrees.
        const double c0 = j["runs"][1]["eval"][0]["ppl"].get<double>();
        const double s0 = j["runs"][2]["eval"][0]["ppl"].get<double>();
        QVERIFY(cloq::test::rel_diff(c0, s0) < cloq::test::tol::kFloat32Reference);
        // One CSV row per run and step 0..4, plus the header.
        std::ifstream csv(out + "/curves.csv");
        int rows = 0;
        for (std::string line; std::getline(csv, line);) ++rows;
        QCOMPARE(rows, 1 + 3 * 5);

        // Step 0 is the model `cloq eval` measures with the same settings, calibration and windows.
        const std::string text = cloq::test::tinystories_path();
        const Run e = cloq_run({"eval",
                                "--model",
                                cloq::test::demo_model_dir(),
                                "--data",
                                text,
                                "--part",
                                "0:0.25",
                                "--seqlen",
                                "64",
                                "--nsamples",
                                "4",
                                "--calib",
                                text,
                                "--calib-part",
                                "0.75:1",
                                "--calib-nsamples",
                                "8",
                                "--calib-seqlen",
                                "64",
                                "--no-cache",
                                "--bits",
                                "2",
                                "--group",
                                "64",
                                "--rank",
                                "8",
                                "--init",
                                "cloq",
                                "--json"});
        QVERIFY2(e.code == 0, e.err.c_str());
        const double expected = json::parse(last_line(e.out))["ppl"].get<double>();
        QVERIFY2(cloq::test::rel_diff(c0, expected) < cloq::test::tol::kFloat32Reference,
                 qPrintable(QString("step 0 %1 vs cloq eval %2").arg(c0).arg(expected)));
    }

    void badArgumentsFailBeforeWork() {
        QTemporaryDir tmp;
        const std::string out = tmp.filePath("ft").toStdString();
        auto with = [&](std::vector<std::string> extra, const std::string& steps = "4") {
            auto a = base_args(out, steps);
            for (size_t i = 0; i + 1 < extra.size(); i += 2) {  // replace an option the base already gives
                const auto it = std::find(a.begin(), a.end(), extra[i]);
                if (it != a.end()) {
                    *(it + 1) = extra[i + 1];
                } else {
                    a.push_back(extra[i]);
                    a.push_back(extra[i + 1]);
                }
            }
            return cloq_run(a);
        };
        Run r = with({}, "0");
        QCOMPARE(r.code, 2);
        QVERIFY2(r.err.find("--steps 0") != std::string::npos, r.err.c_str());
        r = with({"--init", "loftq"});
        QCOMPARE(r.code, 2);
        QVERIFY2(r.err.find("--inits") != std::string::npos, r.err.c_str());
        r = with({"--inits", "cloq,nonsense"});
        QVERIFY(r.code != 0);
        QVERIFY2(r.err.find("nonsense") != std::string::npos, r.err.c_str());
        r = with({"--autocast", "float16", "--device", "cpu"});
        QCOMPARE(r.code, 2);
        QVERIFY2(r.err.find("float16") != std::string::npos && r.err.find("cuda") != std::string::npos, r.err.c_str());
        r = with({"--autocast", "half-ish"});
        QCOMPARE(r.code, 2);
        QVERIFY2(r.err.find("half-ish") != std::string::npos, r.err.c_str());
        r = with({"--batch", "1000000"});
        QCOMPARE(r.code, 1);
        QVERIFY2(
            r.err.find("tinystories") != std::string::npos && r.err.find("fewer than one batch") != std::string::npos,
            r.err.c_str());
        r = with({"--train", tmp.filePath("missing.txt").toStdString()});
        QCOMPARE(r.code, 1);
        QVERIFY2(r.err.find("missing.txt") != std::string::npos, r.err.c_str());
        QVERIFY(!fs::exists(out));
        for (const auto& e : fs::directory_iterator(tmp.path().toStdString()))
            QFAIL(qPrintable("left behind: " + QString::fromStdString(e.path().string())));
        // An existing non-empty folder is refused, and left as it was.
        fs::create_directories(out);
        std::ofstream(out + "/keep.txt") << "mine";
        r = with({});
        QCOMPARE(r.code, 1);
        QVERIFY2(r.err.find("not empty") != std::string::npos, r.err.c_str());
        QVERIFY(fs::exists(out + "/keep.txt"));
    }
};

QTEST_GUILESS_MAIN(TestCliFinetune)
#include "test_cli_finetune.moc"
