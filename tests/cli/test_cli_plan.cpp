// `cloq plan` in-process on stories260K: the output folder (profile.json, plan.json, plan.csv, one profile per
// further budget), a plan that `cloq quantize --profile` exports to exactly the predicted number of stored bytes
// (the budget counts the real storage), and bad arguments failing before any work without leaving an output folder.
#include <QtTest/QtTest>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_run.h"
#include "cloq/io/safetensors.h"
#include "cloq/settings/profile.h"
#include "test_support.h"

using nlohmann::json;
namespace fs = std::filesystem;
using cloq::test::cloq_run;

namespace {
std::vector<std::string> calib_args() {
    return {"--calib",
            cloq::test::tinystories_path(),
            "--calib-nsamples",
            "8",
            "--calib-seqlen",
            "128",
            "--no-cache",
            "--group",
            "32"};
}

std::vector<std::string> plan_args(const std::string& out, std::vector<std::string> more) {
    std::vector<std::string> a = {
        "plan", "--model", cloq::test::demo_model_dir(), "--bits", "2,4", "--ranks", "0,4,8,16", "--out", out};
    for (const auto& c : calib_args()) a.push_back(c);
    for (auto& m : more) a.push_back(std::move(m));
    return a;
}

// Data bytes of every tensor of a safetensors file (the header aside).
int64_t tensor_bytes(const std::string& path) {
    cloq::SafetensorsFile f(path);
    int64_t b = 0;
    for (const auto& n : f.names()) b += f.tensor(n).numel() * static_cast<int64_t>(f.tensor(n).element_size());
    return b;
}

json read(const fs::path& p) { return json::parse(std::ifstream(p)); }
}  // namespace

class TestCliPlan : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    fs::path p(const std::string& rel) const { return fs::path(tmp_.path().toStdString()) / rel; }

private Q_SLOTS:
    void plansAndExportsToThePredictedSize() {
        const std::string out = p("plan").string();
        const auto r = cloq_run(plan_args(out, {"--budget-like", "4:8,2:16"}));
        QVERIFY2(r.code == 0, r.err.c_str());
        for (const char* f : {"profile.json", "plan.json", "plan.csv", "profile-2r16.json"})
            QVERIFY2(fs::is_regular_file(fs::path(out) / f), f);
        const json plan = read(fs::path(out) / "plan.json");
        QVERIFY(plan["exact"]["bytes"].get<int64_t>() <= plan["budget_bytes"].get<int64_t>());
        QVERIFY(plan["exact"]["objective"].get<double>() <= plan["greedy"]["objective"].get<double>() + 1e-12);
        QCOMPARE(plan["more_budgets"].size(), size_t(1));
        QVERIFY(plan["more_budgets"][0]["objective"].get<double>() <=
                plan["more_budgets"][0]["uniform_objective"].get<double>() + 1e-12);
        QVERIFY(r.out.find("loads in:") != std::string::npos);
        // The profile is an ordinary settings profile.
        const cloq::SettingsProfile prof = cloq::load_profile((fs::path(out) / "profile.json").string());
        QVERIFY(!prof.overrides.empty());

        // Exported with that profile, the stored tensors take exactly the bytes the plan predicted.
        const std::string exp = p("export").string();
        std::vector<std::string> q = {"quantize",
                                      "--model",
                                      cloq::test::demo_model_dir(),
                                      "--profile",
                                      (fs::path(out) / "profile.json").string(),
                                      "--format",
                                      "gptq_v2",
                                      "--no-compare",
                                      "--no-spectral",
                                      "--out",
                                      exp};
        for (const auto& c : calib_args()) q.push_back(c);
        const auto e = cloq_run(q);
        QVERIFY2(e.code == 0, e.err.c_str());
        int64_t stored = tensor_bytes(exp + "/base/model.safetensors");
        if (fs::exists(exp + "/adapter/adapter_model.safetensors"))
            stored += tensor_bytes(exp + "/adapter/adapter_model.safetensors");
        qInfo("plan predicted %lld bytes, the export stores %lld",
              static_cast<long long>(plan["exact"]["bytes"].get<int64_t>()), static_cast<long long>(stored));
        QCOMPARE(stored, plan["exact"]["bytes"].get<int64_t>());
    }

    // Bad arguments: one line naming the problem, exit 2, no OUT; an unreachable budget fails too and leaves none.
    void badArgumentsLeaveNothing() {
        const std::string out = p("bad").string();
        struct Case {
            std::vector<std::string> extra;
            const char* needle;
        };
        const std::vector<Case> cases = {
            {{"--budget-mib", "1", "--budget-bits", "3"}, "exactly one"},
            {{}, "exactly one"},
            {{"--budget-like", "3:8"}, "not on the grid"},
            {{"--budget-like", "4"}, "BITS:RANK"},
            {{"--budget-mib", "1", "--mode", "ranks"}, "one bit width"},  // --bits 2,4 from plan_args
            {{"--budget-mib", "1", "--mode", "all"}, "--mode"},
        };
        for (const auto& c : cases) {
            auto a = plan_args(out, c.extra);
            const auto r = cloq_run(a);
            QVERIFY2(r.code == 2, r.err.c_str());
            QVERIFY2(r.err.find(c.needle) != std::string::npos, r.err.c_str());
            QVERIFY(!fs::exists(out));
        }
        const auto tiny = cloq_run(plan_args(out, {"--budget-mib", "0.01"}));
        QVERIFY(tiny.code != 0);
        QVERIFY2(tiny.err.find("below the smallest plan") != std::string::npos, tiny.err.c_str());
        QVERIFY(!fs::exists(out));
    }
};

QTEST_MAIN(TestCliPlan)
#include "test_cli_plan.moc"
