// NF4/NF2 against LoftQ's create_normal_map formula (recomputed here with an independent inverse normal CDF) and
// against a plain-loop nearest-value reference on the flattened weight.
#include <QtTest/QtTest>

#include <algorithm>
#include <cmath>

#include "cloq/base/error.h"
#include "nf_reference.h"
#include "quant/nf_quant.h"
#include "test_support.h"

using namespace cloq;

using cloq::test::create_normal_map;
using cloq::test::reference_nf;

class TestNfQuant : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void tableIsLoftqFormula_data() {
        QTest::addColumn<int>("bits");
        QTest::newRow("NF2") << 2;
        QTest::newRow("NF4") << 4;
    }
    void tableIsLoftqFormula() {
        QFETCH(int, bits);
        const auto& t = nf_table(bits);
        const auto f = create_normal_map(bits);
        QCOMPARE(t.size(), size_t(1) << bits);
        QCOMPARE(f.size(), t.size());
        for (size_t i = 0; i < t.size(); ++i)
            QVERIFY2(
                std::abs(t[i] - f[i]) <= 2e-7f * std::max(1.0f, std::abs(f[i])),
                qPrintable(QString("entry %1: table %2, formula %3").arg(i).arg(t[i], 0, 'g', 9).arg(f[i], 0, 'g', 9)));
        QCOMPARE(t.front(), -1.0f);
        QCOMPARE(t.back(), 1.0f);
        QCOMPARE(std::count(t.begin(), t.end(), 0.0f), std::ptrdiff_t(1));
        QVERIFY(std::is_sorted(t.begin(), t.end()));
    }
    void nf2IsSubsetOfNf4Levels() {
        // Same offset and probability grid: NF2's positive inner level is NF4's level at the same quantile.
        QCOMPARE(nf_table(2)[2], nf_table(4)[11]);
    }

    void matchesReference_data() {
        QTest::addColumn<int>("bits");
        QTest::addColumn<int>("block");
        QTest::newRow("NF4 b64") << 4 << 64;
        QTest::newRow("NF2 b64") << 2 << 64;
        QTest::newRow("NF4 b32") << 4 << 32;
        QTest::newRow("NF2 b7") << 2 << 7;
    }
    void matchesReference() {
        QFETCH(int, bits);
        QFETCH(int, block);
        torch::manual_seed(bits * 31 + block);
        auto W = torch::randn({40, 100}) * 0.03;  // 4000 values: the last block of 64 is ragged (32)
        W[3].zero_();                             // 100 zeros: contains an all-zero block for small blocks
        const auto nf = quantize_nf(W, bits, block);
        const auto ref = reference_nf(W, nf_table(bits), block);
        QCOMPARE(nf.codes.sizes(), W.sizes());
        QCOMPARE(nf.codes.scalar_type(), torch::kUInt8);
        QCOMPARE(nf.absmax.numel(), int64_t(ref.absmax.size()));
        const auto codes = nf.codes.reshape({-1}).to(torch::kInt32).contiguous();
        const auto Q = nf.Q.reshape({-1}).contiguous();
        for (int64_t i = 0; i < W.numel(); ++i) {
            QCOMPARE(codes.data_ptr<int>()[i], ref.codes[i]);
            QCOMPARE(Q.data_ptr<float>()[i], ref.Q[i]);
        }
        for (size_t b = 0; b < ref.absmax.size(); ++b) QCOMPARE(nf.absmax[b].item<float>(), ref.absmax[b]);
        QVERIFY(torch::equal(dequantize_nf(nf), nf.Q));
    }

    void zeroBlockAndTies() {
        // [-0.5, 1] in NF2: -0.5 is exactly between -1 and 0 -> the lower index (argmin's first minimum).
        auto W = torch::tensor({{-0.5f, 1.0f, 0.0f, 0.0f}});
        auto nf = quantize_nf(W, 2, 2);
        QCOMPARE(nf.codes[0][0].item<int>(), 0);
        QCOMPARE(nf.codes[0][1].item<int>(), 3);
        // the second block is all zero: code of 0.0, dequantized 0, absmax 0
        QCOMPARE(nf.codes[0][2].item<int>(), 1);
        QCOMPARE(nf.absmax[1].item<float>(), 0.0f);
        QCOMPARE(nf.Q[0][3].item<float>(), 0.0f);
        QVERIFY(torch::isfinite(nf.Q).all().item<bool>());
    }

    void moreBitsLessError() {
        torch::manual_seed(11);
        const auto W = torch::randn({64, 256});
        const double e4 = (quantize_nf(W, 4).Q - W).norm().item<double>() / W.norm().item<double>();
        const double e2 = (quantize_nf(W, 2).Q - W).norm().item<double>() / W.norm().item<double>();
        qInfo("relative Frobenius error on N(0,1): NF4 %.4f, NF2 %.4f", e4, e2);
        // NF4 on Gaussian blocks of 64 is known to give about 10% relative error; NF2 several times more.
        QVERIFY(e4 < 0.13);
        QVERIFY(e2 > 2.5 * e4);
    }

    void rejectsBadInput() {
        auto expect = [](const std::function<void()>& f, const char* needle) {
            try {
                f();
                QFAIL("expected cloq::Error");
            } catch (const cloq::Error& e) {
                QVERIFY2(QString(e.what()).contains(needle), e.what());
            }
        };
        const auto W = torch::randn({4, 8});
        expect([&] { quantize_nf(W, 3); }, "2 or 4 bits, not 3");
        expect([&] { quantize_nf(W, 4, 0); }, "block size must be positive");
        expect([&] { quantize_nf(torch::randn({8}), 4); }, "2-D");
        auto Wn = W.clone();
        Wn[1][1] = NAN;
        expect([&] { quantize_nf(Wn, 4); }, "NaN or Inf");
        auto nf = quantize_nf(W, 2);
        nf.codes[0][0] = 7;
        expect([&] { dequantize_nf(nf); }, "exceeds the 4-entry NF2 table");
    }
};

QTEST_APPLESS_MAIN(TestNfQuant)
#include "test_nf_quant.moc"
