// INT round-to-nearest quantizer against an independent float64 Eigen implementation of docs/design.md's rule.
#include <QtTest/QtTest>

#include "cloq/base/error.h"
#include "cloq/quant/quant_int.h"
#include "test_support.h"

using namespace cloq;
using cloq::test::MatrixXd;

namespace {
// Reference: per row and group, range widened to contain 0, zero = round-half-even(-xmin/scale).
struct RefResult {
    MatrixXd Q, codes;
};
RefResult reference_rtn(const MatrixXd& W, int bits, int group, bool sym) {
    const int64_t out = W.rows(), in = W.cols();
    const int64_t g = group < 0 ? in : group;
    const double maxq = (1 << bits) - 1;
    RefResult r{MatrixXd(out, in), MatrixXd(out, in)};
    for (int64_t i = 0; i < out; ++i) {
        for (int64_t c0 = 0; c0 < in; c0 += g) {
            const int64_t n = std::min(g, in - c0);
            // float32 arithmetic, as the reference GPTQ quantizer computes it
            float xmin = std::min(0.0f, static_cast<float>(W.row(i).segment(c0, n).minCoeff()));
            float xmax = std::max(0.0f, static_cast<float>(W.row(i).segment(c0, n).maxCoeff()));
            if (sym) {
                xmax = std::max(std::abs(xmin), xmax);
                if (xmin < 0) xmin = -xmax;
            }
            if (xmin == 0 && xmax == 0) {
                xmin = -1;
                xmax = 1;
            }
            const float scale = (xmax - xmin) / static_cast<float>(maxq);
            const float zero = sym ? static_cast<float>((maxq + 1) / 2) : std::nearbyint(-xmin / scale);
            for (int64_t j = c0; j < c0 + n; ++j) {
                const float w = static_cast<float>(W(i, j));
                const float q = std::clamp(std::nearbyint(w / scale) + zero, 0.0f, static_cast<float>(maxq));
                r.codes(i, j) = q;
                r.Q(i, j) = scale * (q - zero);
            }
        }
    }
    return r;
}
}  // namespace

class TestQuantInt : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void matchesReference_data() {
        QTest::addColumn<int>("bits");
        QTest::addColumn<int>("group");
        QTest::addColumn<bool>("sym");
        QTest::addColumn<int>("in");
        for (int bits : {2, 3, 4, 8})
            for (int group : {32, 64, -1})
                for (bool sym : {false, true})
                    QTest::newRow(qPrintable(QString("b%1 g%2 %3").arg(bits).arg(group).arg(sym ? "sym" : "asym")))
                        << bits << group << sym << 172;  // 172 = 64 + 64 + 44: a ragged last group
    }
    void matchesReference() {
        QFETCH(int, bits);
        QFETCH(int, group);
        QFETCH(bool, sym);
        QFETCH(int, in);
        torch::manual_seed(bits * 100 + group);
        auto W = torch::randn({48, in}) * 0.05;
        W.index_put_({0}, torch::zeros({in}));  // an all-zero row: every group gets the range [-1, 1]
        W.index_put_({1}, W[1].abs());          // all positive: range widened down to 0
        const IntQuantSpec spec{bits, group, sym};
        const auto qw = quantize_rtn(W, spec);
        const auto ref = reference_rtn(cloq::test::to_eigen(W), bits, group, sym);
        QCOMPARE(qw.codes.sizes(), W.sizes());
        QCOMPARE(qw.scales.size(1), spec.num_groups(in));
        const MatrixXd codes = cloq::test::to_eigen(qw.codes.to(torch::kFloat64));
        QCOMPARE((codes - ref.codes).cwiseAbs().maxCoeff(), 0.0);
        QVERIFY((cloq::test::to_eigen(qw.Q) - ref.Q).cwiseAbs().maxCoeff() <= 1e-7);
        // dequantize() rebuilds the same Q from codes, scales, zeros and g_idx
        QVERIFY(torch::equal(dequantize(qw), qw.Q));
        QVERIFY(qw.codes.max().item<int>() <= spec.maxq());
    }
    void zeroFromOneKeepsEveryZeroStorableAsV1() {
        // Checkpoint format gptq (v1) stores zero − 1: a zero point of 0 cannot be written. With zero_from_one the
        // groups whose zero would be 0 (nearly one-sided: −xmin < scale/2) get zero 1 and scale xmax/(maxq − 1);
        // every other group keeps its parameters and codes bit for bit, and nothing is clipped.
        for (int bits : {2, 3, 4, 8}) {
            torch::manual_seed(bits);
            const int64_t out = 64, in = 256;
            auto W = torch::randn({out, in}) * 0.05;
            // Rows 0..31: shifted up so most groups are one-sided, some with a tiny negative tail.
            W.slice(0, 0, 32).add_(0.12);
            W.slice(0, 0, 8).clamp_min_(-1e-3);
            const IntQuantSpec plain{bits, 64, false}, v1{bits, 64, false, true};
            const auto a = quantize_rtn(W, plain), b = quantize_rtn(W, v1);
            const auto moved = a.zeros == 0;
            const int64_t n_moved = moved.sum().item<int64_t>();
            QVERIFY2(n_moved > 0, qPrintable(QString("bits %1: no group with zero 0 to test").arg(bits)));
            QCOMPARE(b.zeros.min().item<int>(), 1);
            QVERIFY(torch::equal(b.zeros.masked_select(~moved), a.zeros.masked_select(~moved)));
            QVERIFY(torch::equal(b.scales.masked_select(~moved), a.scales.masked_select(~moved)));
            // Independent float64 check, group by group: moved groups span [xmin, xmax] (error ≤ scale/2, the top
            // code lands on xmax), and the rest of the codes are unchanged.
            const MatrixXd We = cloq::test::to_eigen(W), Qb = cloq::test::to_eigen(b.Q), Qa = cloq::test::to_eigen(a.Q);
            const auto sb = b.scales.to(torch::kFloat64), mv = moved.to(torch::kInt32);
            const double maxq = (1 << bits) - 1;
            for (int64_t i = 0; i < out; ++i)
                for (int64_t g = 0; g < in / 64; ++g) {
                    const auto Wg = We.row(i).segment(g * 64, 64), Qg = Qb.row(i).segment(g * 64, 64);
                    if (!mv[i][g].item<int>()) {
                        QCOMPARE((Qg - Qa.row(i).segment(g * 64, 64)).cwiseAbs().maxCoeff(), 0.0);
                        continue;
                    }
                    const double s = sb[i][g].item<double>(), xmax = std::max(0.0, Wg.maxCoeff());
                    QVERIFY(std::abs(s - xmax / (maxq - 1)) <= 1e-6 * s);
                    QVERIFY((Qg - Wg).cwiseAbs().maxCoeff() <= 0.5 * s * (1 + 1e-5));
                }
        }
    }
    void roundsHalfToEven() {
        // w/scale lands exactly on .5: 0.5 -> 0 and 1.5 -> 2 (std::nearbyint / torch.round semantics)
        auto W = torch::tensor({{0.0f, 0.5f, 1.5f, 3.0f}});
        const auto qw = quantize_rtn(W, IntQuantSpec{2, -1, false});  // scale = 1, zero = 0
        QCOMPARE(qw.codes[0][1].item<int>(), 0);
        QCOMPARE(qw.codes[0][2].item<int>(), 2);
    }
    void rejectsBadSpecs() {
        auto W = torch::randn({4, 8});
        QVERIFY_THROWS_EXCEPTION(cloq::Error, quantize_rtn(W, IntQuantSpec{5, 64, false}));
        QVERIFY_THROWS_EXCEPTION(cloq::Error, quantize_rtn(W, IntQuantSpec{2, 0, false}));
        QVERIFY_THROWS_EXCEPTION(cloq::Error, quantize_rtn(W, IntQuantSpec{2, -2, false}));
    }
};

QTEST_APPLESS_MAIN(TestQuantInt)
#include "test_quant_int.moc"
