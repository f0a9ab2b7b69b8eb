// NF4/NF2 against LoftQ's create_normal_map formula (recomputed here with an independent inverse normal CDF) and
// against a plain-loop nearest-value reference on the flattened weight.
#include <QtTest/QtTest>

#include <algorithm>
#include <cmath>

#include "cloq/error.h"
#include "cloq/nf_quant.h"
#include "test_support.h"

using namespace cloq;

namespace {

// Φ⁻¹(p) by bisection on Φ(x) = ½·erfc(−x/√2), to float64 precision (independent of any library ppf).
double norm_ppf(double p) {
    double lo = -40, hi = 40;
    for (int i = 0; i < 200; ++i) {
        const double mid = 0.5 * (lo + hi);
        (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
    }
    return 0.5 * (lo + hi);
}

// LoftQ's NFQuantizer.create_normal_map(offset=0.9677083, symmetric=False), transcribed: torch.linspace in float32,
// scipy's norm.ppf in float64, the table as float32 sorted and divided by its max.
std::vector<float> create_normal_map(int bits, double offset = 0.9677083) {
    const int64_t variations = int64_t(1) << bits;
    auto lin = [&](int64_t steps) { return torch::linspace(offset, 0.5, steps, torch::kFloat32); };
    std::vector<float> v;
    const auto l1 = lin(variations / 2 + 1);
    for (int64_t i = 0; i + 1 < l1.numel(); ++i) v.push_back(static_cast<float>(norm_ppf(l1[i].item<float>())));
    v.push_back(0.0f);
    const auto l3 = lin(variations / 2);
    for (int64_t i = 0; i + 1 < l3.numel(); ++i) v.push_back(static_cast<float>(-norm_ppf(l3[i].item<float>())));
    std::sort(v.begin(), v.end());
    const float mx = v.back();
    for (auto& x : v) x /= mx;
    return v;
}

// Plain loops: absmax per block of the row-major flattened weight, first nearest table value.
struct Ref {
    std::vector<int> codes;
    std::vector<float> Q, absmax;
};
Ref reference_nf(const torch::Tensor& W, const std::vector<float>& table, int64_t block) {
    const auto flat = W.to(torch::kFloat32).contiguous().view({-1});
    const float* w = flat.data_ptr<float>();
    const int64_t n = flat.numel();
    Ref r;
    for (int64_t b0 = 0; b0 < n; b0 += block) {
        const int64_t b1 = std::min(n, b0 + block);
        float amax = 0;
        for (int64_t i = b0; i < b1; ++i) amax = std::max(amax, std::abs(w[i]));
        r.absmax.push_back(amax);
        for (int64_t i = b0; i < b1; ++i) {
            const float x = amax == 0 ? 0.0f : w[i] / amax;
            int best = 0;
            for (int k = 1; k < static_cast<int>(table.size()); ++k)
                if (std::abs(x - table[k]) < std::abs(x - table[best])) best = k;
            r.codes.push_back(best);
            r.Q.push_back(table[best] * amax);
        }
    }
    return r;
}

}  // namespace

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
            QVERIFY2(std::abs(t[i] - f[i]) <= 2e-7f * std::max(1.0f, std::abs(f[i])),
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
