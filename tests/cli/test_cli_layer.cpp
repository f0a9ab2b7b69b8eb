// `cloq layer` in-process through cloq::cli::run: the files and metrics.json it writes (checked against the solver
// and the dense definitions), --acts = --gram of XᵀX, --json, and one-line errors for wrong flags and bad files.
#include <QtTest/QtTest>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli.h"
#include "cloq/io/npy.h"
#include "cloq/lowrank/layer_solver.h"
#include "cloq/lowrank/metrics.h"
#include "test_support.h"

using namespace cloq;
using cloq::test::rel_diff;
namespace fs = std::filesystem;

namespace {
struct Result {
    int code;
    std::string out, err;
};
Result run_cli(std::vector<std::string> args) {
    std::ostringstream out, err;
    args.insert(args.begin(), "layer");
    const int code = cloq::cli::run(args, out, err);
    return {code, out.str(), err.str()};
}
nlohmann::json read_json(const std::string& path) {
    std::ifstream f(path);
    return nlohmann::json::parse(f);
}
}  // namespace

class TestCliLayer : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    std::string w_, h_, x_;
    torch::Tensor W_, X_, H_;
    std::string p(const std::string& name) { return tmp_.filePath(QString::fromStdString(name)).toStdString(); }

    // The last line of stderr is the error; it must be one line naming `what`.
    void expect_fail(const std::vector<std::string>& args, int code, const std::string& what) {
        const auto r = run_cli(args);
        QVERIFY2(r.code == code, qPrintable(QString("exit %1, want %2: %3").arg(r.code).arg(code).arg(r.err.c_str())));
        QVERIFY2(r.err.find(what) != std::string::npos, (r.err + " (want: " + what + ")").c_str());
        QCOMPARE(std::count(r.err.begin(), r.err.end(), '\n'), std::ptrdiff_t(1));
        QVERIFY(r.err.rfind("cloq layer: ", 0) == 0);
    }

private Q_SLOTS:
    void initTestCase() {
        torch::manual_seed(3);
        W_ = 0.05 * torch::randn({48, 128});
        X_ = cloq::test::anisotropic_acts(300, 128, 50.0, 4).to(torch::kFloat32);
        H_ = X_.to(torch::kFloat64).t().mm(X_.to(torch::kFloat64));
        w_ = p("W.npy");
        h_ = p("H.npy");
        x_ = p("X.npy");
        write_npy(w_, W_);
        write_npy(h_, H_);
        write_npy(x_, X_);
    }
    void helpAndVersion() {
        std::ostringstream out, err;
        QCOMPARE(cloq::cli::run({"layer", "--help"}, out, err), 0);
        for (const char* opt : {"--weight", "--gram", "--acts", "--out", "--bits", "--group", "--rank", "--init",
                                "--split", "--quantizer", "--magr", "--loftq-iters", "--loftq-quant", "--damp",
                                "--act-order", "--static-groups", "--blocksize", "--device", "--json"})
            QVERIFY2(out.str().find(opt) != std::string::npos, opt);
        std::ostringstream top;
        QCOMPARE(cloq::cli::run({"--help"}, top, err), 0);
        QVERIFY(top.str().find("layer") != std::string::npos);
    }
    void writesFilesAndMetrics() {
        const auto dir = p("out1");
        const auto r = run_cli({"--weight", w_, "--gram", h_, "--out", dir, "--bits", "2", "--group", "32", "--rank",
                                "8", "--quantizer", "rtn", "--json", "--save-codes"});
        QVERIFY2(r.code == 0, r.err.c_str());
        const auto Q = read_npy(dir + "/Q.npy"), A = read_npy(dir + "/lora_A.npy"), B = read_npy(dir + "/lora_B.npy");
        QCOMPARE(Q.sizes(), W_.sizes());
        QCOMPARE(A.sizes(), (torch::IntArrayRef{8, 128}));
        QCOMPARE(B.sizes(), (torch::IntArrayRef{48, 8}));
        QCOMPARE(A.scalar_type(), torch::kFloat32);
        const auto j = read_json(dir + "/metrics.json");
        QCOMPARE(nlohmann::json::parse(r.out), j);  // --json prints the same object
        for (const char* k : {"fro", "spec", "fro_rel", "spec_rel"}) {
            QVERIFY(j.contains(k) && j["zero"].contains(k) && j["svd"].contains(k));
            QVERIFY(j[k].get<double>() > 0);
        }
        QCOMPARE(j["init"].get<std::string>(), std::string("cloq"));
        QVERIFY(j["timings_s"].contains("quantize") && j["timings_s"].contains("total"));
        // The written files reproduce the metrics (dense definition on the float32 factors), and the order holds.
        const auto d = discrepancy(W_, Q, LowRank{A, B}, H_);
        QVERIFY2(rel_diff(d.fro_rel, j["fro_rel"].get<double>()) < 1e-5,
                 qPrintable(QString("%1 vs %2").arg(d.fro_rel).arg(j["fro_rel"].get<double>())));
        QVERIFY(rel_diff(d.spec_rel, j["spec_rel"].get<double>()) < 1e-4);
        QVERIFY(j["fro"].get<double>() < j["svd"]["fro"].get<double>());
        QVERIFY(j["svd"]["fro"].get<double>() < j["zero"]["fro"].get<double>());
        const auto z = discrepancy(W_ - Q, H_, W_);  // zero init: D = Q − W
        QVERIFY(rel_diff(z.fro, j["zero"]["fro"].get<double>()) < 1e-9);
        QVERIFY(rel_diff(z.spec_rel, j["zero"]["spec_rel"].get<double>()) < 1e-8);
        // Same as the solver in-process; codes/scales/zeros rebuild Q.
        LayerSolver s(W_, H_);
        LayerSettings st;
        st.method = QuantMethod::Rtn;
        st.quant.group = 32;
        st.rank = 8;
        s.update(st);
        QVERIFY(torch::equal(s.quantized().Q, Q));
        QVERIFY(torch::equal(read_npy(dir + "/codes.npy"), s.quantized().codes));
        QuantizedWeight qw{Q,
                           read_npy(dir + "/codes.npy"),
                           read_npy(dir + "/scales.npy"),
                           read_npy(dir + "/zeros.npy"),
                           read_npy(dir + "/g_idx.npy"),
                           st.quant};
        QVERIFY(torch::allclose(dequantize(qw), Q));
        // No temporary siblings are left behind.
        for (const auto& e : fs::directory_iterator(tmp_.path().toStdString()))
            QVERIFY2(e.path().string().find(".tmp-") == std::string::npos, e.path().c_str());
    }
    void actsEqualsGram() {
        const auto a = p("out_acts"), g = p("out_gram");
        const std::vector<std::string> common = {"--weight",    w_,    "--rank",  "4",
                                                 "--quantizer", "rtn", "--split", "sqrt"};
        auto args = common;
        args.insert(args.end(), {"--acts", x_, "--out", a});
        QCOMPARE(run_cli(args).code, 0);
        args = common;
        args.insert(args.end(), {"--gram", h_, "--out", g});
        QCOMPARE(run_cli(args).code, 0);
        const auto ja = read_json(a + "/metrics.json"), jg = read_json(g + "/metrics.json");
        QVERIFY(rel_diff(ja["fro_rel"].get<double>(), jg["fro_rel"].get<double>()) < 1e-10);
        QVERIFY(torch::allclose(read_npy(a + "/lora_B.npy"), read_npy(g + "/lora_B.npy"), 1e-4, 1e-6) ||
                torch::allclose(read_npy(a + "/lora_B.npy").mm(read_npy(a + "/lora_A.npy")),
                                read_npy(g + "/lora_B.npy").mm(read_npy(g + "/lora_A.npy")), 1e-4, 1e-6));
    }
    void everyInitRuns() {
        for (const char* init : {"zero", "svd", "loftq", "eora"}) {
            const auto dir = p(std::string("out_") + init);
            const auto r = run_cli({"--weight", w_, "--gram", h_, "--out", dir, "--rank", "4", "--init", init,
                                    "--loftq-iters", "2", "--quantizer", "rtn", "--json"});
            QVERIFY2(r.code == 0, r.err.c_str());
            const auto j = nlohmann::json::parse(r.out);
            QCOMPARE(j["init"].get<std::string>(), std::string(init));
            const auto Q = read_npy(dir + "/Q.npy");
            const auto d =
                discrepancy(W_, Q, LowRank{read_npy(dir + "/lora_A.npy"), read_npy(dir + "/lora_B.npy")}, H_);
            QVERIFY(rel_diff(d.fro, j["fro"].get<double>()) < 1e-5);
        }
        // LoftQ with NF sits on its own Q; the baselines in metrics.json use that same Q.
        const auto dir = p("out_nf");
        const auto r = run_cli({"--weight", w_, "--gram", h_, "--out", dir, "--rank", "4", "--init", "loftq",
                                "--loftq-quant", "nf", "--loftq-iters", "1", "--quantizer", "rtn", "--json"});
        QVERIFY2(r.code == 0, r.err.c_str());
        const auto j = nlohmann::json::parse(r.out);
        const auto Q = read_npy(dir + "/Q.npy");
        const double mine = discrepancy(W_ - Q, H_, W_).fro, theirs = j["zero"]["fro"].get<double>();
        QVERIFY2(rel_diff(mine, theirs) < 1e-9, (std::to_string(mine) + " vs " + std::to_string(theirs)).c_str());
    }
    void existingFolder() {
        const auto empty = p("empty");
        fs::create_directory(empty);
        QCOMPARE(run_cli({"--weight", w_, "--gram", h_, "--out", empty, "--quantizer", "rtn", "--rank", "2"}).code, 0);
        QVERIFY(fs::exists(empty + "/Q.npy"));
        // Now it is not empty: refused, and nothing in it changes.
        const auto before = fs::last_write_time(empty + "/Q.npy");
        expect_fail({"--weight", w_, "--gram", h_, "--out", empty, "--rank", "2", "--quantizer", "rtn"}, 1,
                    "folder exists and is not empty");
        QCOMPARE(fs::last_write_time(empty + "/Q.npy"), before);
        expect_fail({"--weight", w_, "--gram", h_, "--out", w_, "--rank", "2"}, 1, "exists and is not a folder");
    }
    void wrongFlagsAndBadFiles() {
        const auto out = p("never");
        // Every case would otherwise run (rank 4 fits, RTN), so the error is the one named.
        const auto with = [&](std::vector<std::string> a) {
            a.insert(a.end(), {"--rank", "4", "--quantizer", "rtn"});
            return a;
        };
        expect_fail(with({"--gram", h_, "--out", out}), 2, "missing required option --weight");
        expect_fail(with({"--weight", w_, "--out", out}), 2, "give exactly one of --gram H.npy or --acts X.npy");
        expect_fail(with({"--weight", w_, "--gram", h_, "--acts", x_, "--out", out}), 2, "exactly one of");
        expect_fail(with({"--weight", w_, "--gram", h_, "--out", out, "--bogus"}), 2, "unknown option --bogus");
        expect_fail(with({"--weight", w_, "--gram", h_, "--out", out, "--bits", "5"}), 2,
                    "bit width 5 is not supported");
        expect_fail(with({"--weight", w_, "--gram", h_, "--out", out, "--group", "0"}), 2, "group size 0");
        expect_fail(with({"--weight", w_, "--gram", h_, "--out", out, "--init", "magic"}), 2, "unknown init 'magic'");
        expect_fail(with({"--weight", w_, "--gram", h_, "--out", out, "--device", "tpu"}), 2, "unknown device 'tpu'");
        expect_fail({"--weight", w_, "--gram", h_, "--out", out, "--rank", "49"}, 2,
                    "--rank 49 exceeds min(out, in) = 48");
        expect_fail(with({"--weight", p("missing.npy"), "--gram", h_, "--out", out}), 1, "missing.npy: cannot open");
        // A .npy with a broken header, a wrong shape, NaN values, integers, an asymmetric H.
        const auto junk = p("junk.npy");
        std::ofstream(junk) << "not numpy";
        expect_fail(with({"--weight", junk, "--gram", h_, "--out", out}), 1, "junk.npy: not a .npy file");
        expect_fail(with({"--weight", w_, "--gram", w_, "--out", out}), 1,
                    "W.npy: the Gram matrix must be [in, in] = [128, 128] for the weight");
        const auto wt = p("Wt.npy");
        write_npy(wt, W_.t());
        expect_fail(with({"--weight", w_, "--acts", wt, "--out", out}), 1,
                    "Wt.npy: the activations must be [tokens, 128] for the weight");
        const auto vec = p("vec.npy");
        write_npy(vec, torch::zeros({5}));
        expect_fail(with({"--weight", vec, "--gram", h_, "--out", out}), 1, "vec.npy: the weight must be a 2-D array");
        const auto nan = p("nan.npy");
        auto Wn = W_.clone();
        Wn[1][1] = std::numeric_limits<float>::quiet_NaN();
        write_npy(nan, Wn);
        expect_fail(with({"--weight", nan, "--gram", h_, "--out", out}), 1, "nan.npy: the weight contains NaN or Inf");
        const auto asym = p("asym.npy");
        auto Ha = H_.clone();
        Ha[0][1] += 1e3;
        write_npy(asym, Ha);
        expect_fail(with({"--weight", w_, "--gram", asym, "--out", out}), 1, "asym.npy: H is not symmetric");
        const auto ints = p("ints.npy");
        write_npy(ints, torch::zeros({48, 128}, torch::kInt32));
        expect_fail(with({"--weight", ints, "--gram", h_, "--out", out}), 1, "must be float32 or float64");
        QVERIFY(!fs::exists(out));
    }
};

QTEST_APPLESS_MAIN(TestCliLayer)
#include "test_cli_layer.moc"
