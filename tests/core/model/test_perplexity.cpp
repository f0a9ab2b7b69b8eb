// Perplexity of the float stories260K model on the shared texts, as issue 4 defines it, against SOURCE.md's
// reference numbers (an independent PyTorch float64 implementation) and against this test's own float64 forward on
// short windows.
#include <QtTest/QtTest>

#include <chrono>
#include <cmath>

#include "cloq/base/error.h"
#include "cloq/model/llama_model.h"
#include "cloq/model/model_files.h"
#include "cloq/model/perplexity.h"
#include "reference_llama.h"
#include "test_support.h"

using namespace cloq;

class TestPerplexity : public QObject {
    Q_OBJECT
    ModelFiles files_;
    std::vector<int32_t> tiny_, wiki_;

private Q_SLOTS:
    void initTestCase() {
        files_ = open_model(cloq::test::demo_model_dir());
        QVERIFY(files_.tokenizer);
        tiny_ = tokenize_file(*files_.tokenizer, cloq::test::tinystories_path());
        wiki_ = tokenize_file(*files_.tokenizer, cloq::test::wikitext_path());
    }

    void tokenCountsMatchSource() {
        // SOURCE.md: tokens in file with BOS
        QCOMPARE(tiny_.size(), size_t(393013));
        QCOMPARE(wiki_.size(), size_t(815066));
        QCOMPARE(tiny_[0], 1);
    }

    void floatPerplexityMatchesSource() {
        LlamaModel model(files_);
        const auto t0 = std::chrono::steady_clock::now();
        const auto ts = perplexity(model, tiny_, {256, 32});
        const auto wt = perplexity(model, wiki_, {256, 32});
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        qInfo("tinystories 32x256: ppl %.5f (mean NLL %.6f, %lld tokens); wikitext: ppl %.4f (NLL %.6f); %.1f s",
              ts.ppl, ts.mean_nll, static_cast<long long>(ts.tokens), wt.ppl, wt.mean_nll, secs);
        QCOMPARE(ts.tokens, int64_t(8160));  // 32 windows × 255 predictions
        QCOMPARE(ts.windows, int64_t(32));
        QCOMPARE(ts.available_windows, int64_t(393013 / 256));
        // SOURCE.md: 4.0791 (mean NLL 1.40589) and 104.02 (mean NLL 4.64459), float64 reference.
        QVERIFY(std::abs(ts.mean_nll - 1.40589) < 2e-5);
        QVERIFY(std::abs(ts.ppl - 4.0791) < 1e-4);
        QVERIFY(std::abs(wt.mean_nll - 4.64459) < 2e-5);
        QVERIFY(std::abs(wt.ppl - 104.02) < 0.01);
    }

    void agreesWithIndependentForwardOnShortWindows() {
        // Two consecutive windows of 48 tokens from each text, the NLL from the float64 reference in this test.
        LlamaModel model(files_);
        for (const auto* toks : {&tiny_, &wiki_}) {
            cloq::test::ReferenceLlama ref{files_};
            double nll = 0;
            for (int w = 0; w < 2; ++w) {
                std::vector<int> ids(toks->begin() + w * 48, toks->begin() + (w + 1) * 48);
                nll += cloq::test::reference_mean_nll(ref, ids);
            }
            nll /= 2;
            const auto r = perplexity(model, *toks, {48, 2});
            qInfo("48x2: ppl %.6f, reference %.6f", r.ppl, std::exp(nll));
            QCOMPARE(r.tokens, int64_t(94));
            QVERIFY(std::abs(r.mean_nll - nll) < 1e-5);
        }
    }

    void rejectsBadWindows() {
        LlamaModel model(files_);
        try {
            perplexity(model, tiny_, {1024, 1});
            QFAIL("seqlen above the context must throw");
        } catch (const cloq::Error& e) {
            QVERIFY(std::string(e.what()).find("exceeds the model's context of 512") != std::string::npos);
        }
        const std::vector<int32_t> few(tiny_.begin(), tiny_.begin() + 100);
        QVERIFY_THROWS_EXCEPTION(cloq::Error, perplexity(model, few, {256, 1}));
        // nsamples beyond what the text has: all windows are used
        QCOMPARE(perplexity(model, few, {50, 10}).windows, int64_t(2));
    }
};

QTEST_APPLESS_MAIN(TestPerplexity)
#include "test_perplexity.moc"
