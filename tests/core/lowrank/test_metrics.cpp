// Discrepancy metrics from H alone against the definition on X itself (‖X·Dᵀ‖ by Eigen's SVD of X·Dᵀ), on both
// the exact (small) and the Lanczos (large) spectral path, and the Lanczos eigenvalue routine on known spectra.
#include <QtTest/QtTest>

#include <Eigen/SVD>

#include "cloq/base/error.h"
#include "cloq/lowrank/metrics.h"
#include "test_support.h"

using namespace cloq;
using cloq::test::from_eigen;
using cloq::test::MatrixXd;
using cloq::test::rel_diff;
using cloq::test::to_eigen;

namespace {
double spectral_norm(const MatrixXd& M) {
    Eigen::BDCSVD<Eigen::MatrixXd> svd(M);
    return svd.singularValues()(0);
}
}  // namespace

class TestMetrics : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void matchesDefinitionOnX_data() {
        QTest::addColumn<int>("out");
        QTest::addColumn<int>("in");
        QTest::addColumn<int>("tokens");
        QTest::newRow("small (dense path)") << 40 << 60 << 100;
        QTest::newRow("large out (Lanczos)") << 500 << 120 << 300;
        QTest::newRow("large, rank-deficient X") << 400 << 300 << 50;
    }
    void matchesDefinitionOnX() {
        QFETCH(int, out);
        QFETCH(int, in);
        QFETCH(int, tokens);
        const auto X = cloq::test::anisotropic_acts(tokens, in, 100.0, 3 + out);
        torch::manual_seed(out);
        const auto W = torch::randn({out, in}, torch::kFloat64);
        const auto D = 0.1 * torch::randn({out, in}, torch::kFloat64);
        const auto H = X.t().mm(X);
        const MatrixXd Xe = to_eigen(X), De = to_eigen(D), We = to_eigen(W);
        const MatrixXd XD = Xe * De.transpose(), XW = Xe * We.transpose();
        const auto d = discrepancy(D, H, W);
        QVERIFY2(rel_diff(d.fro, XD.norm()) < 1e-10, qPrintable(QString("%1 vs %2").arg(d.fro).arg(XD.norm())));
        QVERIFY2(rel_diff(d.spec, spectral_norm(XD)) < 1e-9,
                 qPrintable(QString("%1 vs %2").arg(d.spec).arg(spectral_norm(XD))));
        QVERIFY(rel_diff(d.fro_rel, XD.norm() / XW.norm()) < 1e-10);
        QVERIFY(rel_diff(d.spec_rel, spectral_norm(XD) / spectral_norm(XW)) < 1e-9);
        QVERIFY(rel_diff(fro_discrepancy(D, H), d.fro) < 1e-13);
        QVERIFY(rel_diff(spec_discrepancy(D.to(torch::kFloat32), H.to(torch::kFloat32)), d.spec) < 1e-5);
    }
    void adapterForm() {
        // discrepancy(W, Q, adapter, H) is the metric of D = Q + B·A − W.
        const auto X = cloq::test::anisotropic_acts(80, 50, 10.0, 9);
        const auto H = X.t().mm(X);
        torch::manual_seed(1);
        const auto W = torch::randn({30, 50}, torch::kFloat64), Q = W + 0.1 * torch::randn({30, 50}, torch::kFloat64);
        const LowRank lr{0.1 * torch::randn({4, 50}), 0.1 * torch::randn({30, 4})};
        const auto a = discrepancy(W, Q, lr, H);
        const MatrixXd D = to_eigen(Q) + to_eigen(lr.B) * to_eigen(lr.A) - to_eigen(W);
        const MatrixXd XD = to_eigen(X) * D.transpose();
        QVERIFY(rel_diff(a.fro, XD.norm()) < 1e-10);
        QVERIFY(rel_diff(a.spec, spectral_norm(XD)) < 1e-9);
        QVERIFY(a.fro_rel > 0 && a.spec_rel > 0);
        // Frobenius only: the same fro values, the spectral ones marked as not computed.
        const auto f = discrepancy(W, Q, lr, H, /*spectral=*/false);
        QCOMPARE(f.fro, a.fro);
        QCOMPARE(f.fro_rel, a.fro_rel);
        QCOMPARE(f.spec, -1.0);
        QCOMPARE(f.spec_rel, -1.0);
        // A zero-rank adapter is the plain quantization error.
        const auto z = discrepancy(W, Q, LowRank{torch::zeros({0, 50}), torch::zeros({30, 0})}, H);
        QVERIFY(rel_diff(z.fro, (to_eigen(X) * (to_eigen(Q) - to_eigen(W)).transpose()).norm()) < 1e-10);
    }
    void lanczosKnownSpectra() {
        const auto opts = torch::TensorOptions().dtype(torch::kFloat64);
        // A rotated diagonal operator of size 1000 with a separated top, and one with a double top eigenvalue.
        const int64_t n = 1000;
        torch::manual_seed(4);
        const auto Qm = std::get<0>(torch::linalg::qr(torch::randn({n, n}, opts), "reduced"));
        for (bool clustered : {false, true}) {
            auto ev = torch::linspace(0, 1, n, opts);
            ev[n - 1] = 2.0;
            if (clustered) ev[n - 2] = 2.0;
            const auto op = [&](const torch::Tensor& x) { return Qm.mm(ev.unsqueeze(1) * Qm.t().mm(x)); };
            QVERIFY(rel_diff(lambda_max_psd(op, n, opts), 2.0) < 1e-10);
        }
        // Zero operator and low-rank operators terminate early at the exact value.
        QCOMPARE(lambda_max_psd([](const torch::Tensor& x) { return torch::zeros_like(x); }, 800, opts), 0.0);
        const auto u = torch::randn({800, 3}, opts);
        const auto lowrank = [&](const torch::Tensor& x) { return u.mm(u.t().mm(x)); };
        const double exact = torch::linalg::eigvalsh(u.t().mm(u), "L").max().item<double>();
        QVERIFY(rel_diff(lambda_max_psd(lowrank, 800, opts), exact) < 1e-12);
    }
    void badShapes() {
        try {
            discrepancy(torch::zeros({3, 4}), torch::zeros({5, 5}));
            QFAIL("no error");
        } catch (const Error& e) {
            QVERIFY(std::string(e.what()).find("H must be [in, in] with in = 4, got [5, 5]") != std::string::npos);
        }
        QVERIFY_THROWS_EXCEPTION(Error, discrepancy(torch::zeros({3, 4}), torch::eye(4), torch::zeros({3, 5})));
        QVERIFY_THROWS_EXCEPTION(Error,
                                 discrepancy(torch::zeros({3, 4}), torch::zeros({3, 4}),
                                             LowRank{torch::zeros({2, 5}), torch::zeros({3, 2})}, torch::eye(4)));
    }
};

QTEST_APPLESS_MAIN(TestMetrics)
#include "test_metrics.moc"
