// cloq-test-labels: slow
// cloq-test-timeout: 900
// Issue 4's acceptance on the real stories260K model: at 2-bit g64 and 3-bit g64, ranks 8 and 16, the perplexity of
// the quantized model with CLoQ's adapter folded in is below LoftQ's (T = 5) and below zero init's, and on every
// linear layer CLoQ's discrepancy ‖X Dᵀ‖_F is at most LoftQ's. Also: the whole-model analysis covers all 35 layers
// (its time is printed, never asserted: timings belong to tests/bench). Prints the bits × init → ppl table
// (docs/results.md records it).
#include <QtTest/QtTest>

#include <chrono>

#include "cloq/analysis/analysis.h"
#include "cloq/analysis/calibration.h"
#include "cloq/analysis/quantized_eval.h"
#include "cloq/model/model_files.h"
#include "cloq/model/perplexity.h"
#include "demo_calibration.h"
#include "test_support.h"

using namespace cloq;

class TestQuantQuality : public QObject {
    Q_OBJECT
    ModelFiles files_;
    std::vector<int32_t> tokens_;
    std::unique_ptr<Calibration> cal_;

    static double seconds_since(std::chrono::steady_clock::time_point t) {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
    }

private Q_SLOTS:
    void initTestCase() {
        files_ = open_model(cloq::test::demo_model_dir());
        tokens_ = tokenize_file(*files_.tokenizer, cloq::test::tinystories_path());
        LlamaModel model(files_);
        cal_ = std::make_unique<Calibration>(
            calibrate_tokens(model, tokens_, "tinystories-valid", cloq::test::tinystories_calibration()));
    }

    void perplexityOrder_data() {
        QTest::addColumn<int>("bits");
        QTest::addColumn<int>("rank");
        for (int bits : {2, 3})
            for (int rank : {8, 16})
                QTest::newRow(qPrintable(QString("%1-bit g64 r%2").arg(bits).arg(rank))) << bits << rank;
    }
    void perplexityOrder() {
        QFETCH(int, bits);
        QFETCH(int, rank);
        LayerSettings s;
        s.quant.bits = bits;
        s.quant.group = 64;
        s.rank = rank;
        s.loftq_iters = 5;
        std::map<InitMethod, double> ppl, secs;
        for (InitMethod init : {InitMethod::Zero, InitMethod::Loftq, InitMethod::Cloq}) {
            const auto t0 = std::chrono::steady_clock::now();
            ppl[init] = quantized_perplexity(files_, s, init, *cal_, tokens_, {256, 32}).ppl;
            secs[init] = seconds_since(t0);
        }
        qInfo("| %d-bit g64 | r%-2d | zero %.4f (%.1f s) | LoftQ T=5 %.4f (%.1f s) | CLoQ %.4f (%.1f s) |", bits, rank,
              ppl[InitMethod::Zero], secs[InitMethod::Zero], ppl[InitMethod::Loftq], secs[InitMethod::Loftq],
              ppl[InitMethod::Cloq], secs[InitMethod::Cloq]);
        QVERIFY(ppl[InitMethod::Cloq] < ppl[InitMethod::Loftq]);
        QVERIFY(ppl[InitMethod::Cloq] < ppl[InitMethod::Zero]);
    }

    void everyLayerCloqBeatsLoftq_data() {
        QTest::addColumn<int>("bits");
        QTest::addColumn<int>("rank");
        for (int bits : {2, 3})
            for (int rank : {8, 16})
                QTest::newRow(qPrintable(QString("%1-bit g64 r%2").arg(bits).arg(rank))) << bits << rank;
    }
    void everyLayerCloqBeatsLoftq() {
        QFETCH(int, bits);
        QFETCH(int, rank);
        LlamaModel model(files_);
        AnalysisOptions opt;
        opt.profile.defaults.quant.bits = bits;
        opt.profile.defaults.rank = rank;
        opt.inits = {InitMethod::Zero, InitMethod::Svd, InitMethod::Loftq, InitMethod::Cloq};
        opt.spectral = false;
        const auto a = analyze_model(model, *cal_, opt);
        QCOMPARE(a.layers.size(), size_t(35));
        int worst = -1;
        double worst_ratio = 0;
        for (size_t i = 0; i < a.layers.size(); ++i) {
            const auto& l = a.layers[i];
            const double c = l.metrics.at(InitMethod::Cloq).fro, lq = l.metrics.at(InitMethod::Loftq).fro;
            if (c / lq > worst_ratio) worst_ratio = c / lq, worst = static_cast<int>(i);
            QVERIFY2(c <= lq, qPrintable(QString::fromStdString(l.layer.name())));
            // The theorems on the same Q (w.r.t. H_λ): CLoQ ≤ svd ≤ ... and CLoQ ≤ zero; CLoQ hits its optimum.
            QVERIFY(l.hlambda.at(InitMethod::Cloq) <= l.hlambda.at(InitMethod::Svd) * (1 + 1e-9));
            QVERIFY(l.hlambda.at(InitMethod::Cloq) <= l.hlambda.at(InitMethod::Zero) * (1 + 1e-9));
            QVERIFY(std::abs(l.hlambda.at(InitMethod::Cloq) - l.cloq_optimal) <= 1e-6 * l.cloq_optimal);
        }
        qInfo("%d-bit r%d: largest CLoQ/LoftQ discrepancy ratio %.3f at %s", bits, rank, worst_ratio,
              a.layers[static_cast<size_t>(worst)].layer.name().c_str());
    }

    void wholeModelAnalysis() {
        // `cloq analyze` defaults: 2-bit g64, rank 64 (capped per layer), all four inits, spectral norms included.
        LlamaModel model(files_);
        AnalysisOptions opt;
        const auto t0 = std::chrono::steady_clock::now();
        const auto a = analyze_model(model, *cal_, opt);
        const double secs = seconds_since(t0);
        qInfo("whole-model analysis (35 layers, zero/svd/loftq/cloq, spectral): %.1f s; calibration %.1f s", secs,
              cal_->seconds);
        QCOMPARE(a.layers.size(), size_t(35));
    }
};

QTEST_APPLESS_MAIN(TestQuantQuality)
#include "test_quant_quality.moc"
