// Calibration: the documented window RNG, H = XᵀX per input group against the float64 reference forward in this
// test, the on-disk cache (reuse, invalid entries recomputed, keys that change with the settings), seqlen capping,
// sequential mode, cancellation, and the demo's 32 × 256 timing.
#include <QtTest/QtTest>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>

#include "cloq/analysis/calibration.h"
#include "cloq/base/error.h"
#include "cloq/model/model_files.h"
#include "cloq/model/perplexity.h"
#include "demo_calibration.h"
#include "reference_llama.h"
#include "test_support.h"

using namespace cloq;
using cloq::test::MatrixXd;
using cloq::test::to_eigen;
namespace fs = std::filesystem;

namespace {
double rel(const MatrixXd& a, const MatrixXd& b) { return (a - b).norm() / b.norm(); }
bool same(const Calibration& a, const Calibration& b, int layers) {
    for (int l = 0; l < layers; ++l)
        for (InputGroup g : kInputGroups)
            if (!torch::equal(a.hessian(l, g), b.hessian(l, g))) return false;
    return true;
}
}  // namespace

class TestCalibration : public QObject {
    Q_OBJECT
    ModelFiles files_;
    std::vector<int32_t> tokens_;

private Q_SLOTS:
    void initTestCase() {
        files_ = open_model(cloq::test::demo_model_dir());
        tokens_ = tokenize_file(*files_.tokenizer, cloq::test::tinystories_path());
    }

    void windowStartsFollowTheDocumentedRng() {
        // The C++ standard fixes mt19937_64: the 10000th output for the default seed 5489 is 9981545732273789042.
        const int64_t N = 1000003, L = 3;
        const auto s = calibration_window_starts(N, L, 10000, 5489);
        QCOMPARE(s.back(), static_cast<int64_t>(9981545732273789042ull % static_cast<uint64_t>(N - L + 1)));
        QCOMPARE(calibration_window_starts(N, L, 50, 0), calibration_window_starts(N, L, 50, 0));
        QVERIFY(calibration_window_starts(N, L, 50, 0) != calibration_window_starts(N, L, 50, 1));
        for (auto x : calibration_window_starts(20, 10, 500, 3)) QVERIFY(x >= 0 && x <= 10);
        QVERIFY_THROWS_EXCEPTION(cloq::Error, calibration_window_starts(10, 10, 1, 0));
    }

    void hessiansEqualReferenceGram() {
        LlamaModel model(files_);
        CalibrationRequest req;
        req.settings.nsamples = 3;
        req.settings.seqlen = 20;
        req.settings.seed = 11;
        const auto cal = calibrate_tokens(model, tokens_, "tinystories", req);
        QCOMPARE(cal.tokens, int64_t(60));
        QVERIFY(!cal.from_cache);
        const auto starts = calibration_window_starts(static_cast<int64_t>(tokens_.size()), 20, 3, 11);
        for (int layer : {0, 3}) {
            cloq::test::ReferenceLlama ref{files_};
            ref.probe_layer = layer;
            std::map<InputGroup, MatrixXd> H;
            for (auto s : starts) {
                std::vector<int> ids(tokens_.begin() + s, tokens_.begin() + s + 20);
                ref.logits(ids);
                const std::pair<InputGroup, const MatrixXd*> xs[] = {{InputGroup::AttnIn, &ref.probe_attn_in},
                                                                     {InputGroup::OProj, &ref.probe_o},
                                                                     {InputGroup::MlpIn, &ref.probe_mlp_in},
                                                                     {InputGroup::DownProj, &ref.probe_down}};
                for (const auto& [g, X] : xs) {
                    const MatrixXd G = X->transpose() * *X;
                    if (H.count(g))
                        H[g] += G;
                    else
                        H[g] = G;
                }
            }
            for (const auto& [g, want] : H) {
                const auto got = cal.hessian(layer, g);
                QCOMPARE(got.scalar_type(), torch::kFloat64);
                const double e = rel(to_eigen(got), want);
                QVERIFY2(e < 1e-5, qPrintable(QString("layer %1 %2: rel error %3")
                                                  .arg(layer)
                                                  .arg(QString::fromStdString(to_string(g)))
                                                  .arg(e)));
            }
        }
        QCOMPARE(cal.hessian(0, InputGroup::DownProj).size(0), int64_t(172));
        QCOMPARE(cal.hessian(0, InputGroup::OProj).size(0), int64_t(64));
    }

    void cacheIsReusedAndNeverTrustedBlindly() {
        QTemporaryDir dir;
        LlamaModel model(files_);
        CalibrationRequest req;
        req.settings.nsamples = 4;
        req.settings.seqlen = 32;
        req.settings.cache_dir = dir.path().toStdString();
        const auto a = calibrate_tokens(model, tokens_, "t", req);
        QVERIFY(!a.from_cache);
        QVERIFY(fs::exists(a.cache_path + "/manifest.json"));
        QVERIFY(fs::exists(a.cache_path + "/block_004.safetensors"));
        const auto b = calibrate_tokens(model, tokens_, "t", req);
        QVERIFY(b.from_cache);
        QCOMPARE(b.key, a.key);
        QVERIFY(same(a, b, 5));

        // A damaged block file: recomputed (with a notice), same result, cache repaired.
        fs::resize_file(a.cache_path + "/block_002.safetensors", 100);
        const auto c = calibrate_tokens(model, tokens_, "t", req);
        QVERIFY(!c.from_cache);
        QVERIFY(!c.notices.empty() && c.notices.back().find("invalid") != std::string::npos);
        QVERIFY(same(a, c, 5));
        QVERIFY(calibrate_tokens(model, tokens_, "t", req).from_cache);

        // A manifest from another format version: recomputed.
        {
            std::ifstream in(a.cache_path + "/manifest.json");
            std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            text.replace(text.find("\"format_version\": 1"), 19, "\"format_version\": 0");
            std::ofstream(a.cache_path + "/manifest.json") << text;
        }
        QVERIFY(!calibrate_tokens(model, tokens_, "t", req).from_cache);

        // Everything the Hs depend on changes the key.
        auto other = req;
        other.settings.seed = 1;
        QVERIFY(calibrate_tokens(model, tokens_, "t", other).key != a.key);
        QVERIFY(calibrate_tokens(model, tokens_, "another text", req).key != a.key);
        other = req;
        other.settings.nsamples = 5;
        QVERIFY(calibrate_tokens(model, tokens_, "t", other).key != a.key);
        // Nothing but committed entries in the cache folder (no temporaries).
        for (const auto& e : fs::directory_iterator(dir.path().toStdString()))
            QVERIFY(e.path().filename().string().find(".tmp-") == std::string::npos);
    }

    void seqlenIsCappedAtContext() {
        LlamaModel model(files_);
        CalibrationRequest req;
        req.settings.nsamples = 1;
        req.settings.seqlen = 2048;
        const auto cal = calibrate_tokens(model, tokens_, "t", req);
        QCOMPARE(cal.seqlen, int64_t(512));
        QVERIFY(!cal.notices.empty() &&
                cal.notices[0].find("capped at the model's context of 512") != std::string::npos);
    }

    void sequentialModeFeedsQuantizedBlocks() {
        LlamaModel model(files_);
        CalibrationRequest req;
        req.settings.nsamples = 2;
        req.settings.seqlen = 24;
        const auto plain = calibrate_tokens(model, tokens_, "t", req);
        // An identity "quantizer": same Hs as the plain mode.
        req.settings.sequential = true;
        req.quantizer = [](int, const BlockHessians&, BlockWeights&) {};
        req.quantizer_key = "identity";
        QVERIFY(same(plain, calibrate_tokens(model, tokens_, "t", req), 5));
        // A quantizer that halves every down_proj: block l's Hs must equal the plain calibration of the model whose
        // blocks 0..l-1 are halved (and block l is not yet: its Hs come before it is changed).
        int calls = 0;
        req.quantizer = [&](int, const BlockHessians& H, BlockWeights& w) {
            ++calls;
            QCOMPARE(H[static_cast<size_t>(InputGroup::DownProj)].size(0), int64_t(172));
            w.down = w.down * 0.5;
        };
        req.quantizer_key = "half down";
        const auto seq = calibrate_tokens(model, tokens_, "t", req);
        QCOMPARE(calls, 5);
        QVERIFY(!torch::equal(seq.hessian(3, InputGroup::AttnIn), plain.hessian(3, InputGroup::AttnIn)));
        for (int l : {0, 2, 4}) {
            LlamaModel halved(files_);
            halved.set_weight_transform([l](const LinearLayer& lin, const torch::Tensor& W) {
                return lin.module == "mlp.down_proj" && lin.layer < l ? W * 0.5 : torch::Tensor();
            });
            req.settings.sequential = false;
            const auto want = calibrate_tokens(halved, tokens_, "t", req);
            for (InputGroup g : kInputGroups)
                QVERIFY(rel(to_eigen(seq.hessian(l, g)), to_eigen(want.hessian(l, g))) < 1e-6);
            req.settings.sequential = true;
        }
        req.quantizer = nullptr;
        QVERIFY_THROWS_EXCEPTION(cloq::Error, calibrate_tokens(model, tokens_, "t", req));
    }

    void cancellationLeavesNoCacheEntry() {
        QTemporaryDir dir;
        LlamaModel model(files_);
        CalibrationRequest req;
        req.settings.nsamples = 4;
        req.settings.seqlen = 32;
        req.settings.cache_dir = dir.path().toStdString();
        Progress p;
        int calls = 0;
        p.report = [&](double, const std::string&) {
            if (++calls == 3) p.cancel.cancel();
        };
        QVERIFY_THROWS_EXCEPTION(cloq::Cancelled, calibrate_tokens(model, tokens_, "t", req, p));
        QCOMPARE(std::distance(fs::directory_iterator(dir.path().toStdString()), fs::directory_iterator()), 0L);
    }

    void demoCalibration() {
        // The demo setting: 32 windows of 256 tokens, from the text file (tokenizing included); the time is printed.
        LlamaModel model(files_);
        const CalibrationRequest req = cloq::test::tinystories_calibration();
        const auto t0 = std::chrono::steady_clock::now();
        const auto cal = calibrate(model, req);
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        qInfo("calibration 32 x 256 on stories260K: %.2f s (Hs: %.2f s)", secs, cal.seconds);
        QCOMPARE(cal.tokens, int64_t(8192));
    }
};

QTEST_APPLESS_MAIN(TestCalibration)
#include "test_calibration.moc"
