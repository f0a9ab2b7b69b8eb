// MagR: the ℓ1-ball projection against an optimality certificate and a bisection solution, the ℓ∞ prox against
// its definition, and the whole iteration against an independent float64 Eigen reference; then what MagR is for:
// smaller max |w| per channel/group at a small output change.
#include <QtTest/QtTest>

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <random>

#include "cloq/base/error.h"
#include "quant/magr.h"
#include "test_support.h"

using namespace cloq;
using cloq::test::MatrixXd;
using Eigen::VectorXd;

namespace {

// θ ≥ 0 with Σ max(|v_i| − θ, 0) = z, by bisection (for ‖v‖₁ > z): the projection is sign(v)·max(|v| − θ, 0) and
// the ℓ∞ prox is sign(v)·min(|v|, θ). Independent of the sort-based algorithm under test.
double threshold(const VectorXd& v, double z) {
    double lo = 0, hi = v.cwiseAbs().maxCoeff();
    for (int i = 0; i < 200; ++i) {
        const double mid = 0.5 * (lo + hi);
        ((v.cwiseAbs().array() - mid).max(0.0).sum() > z ? lo : hi) = mid;
    }
    return 0.5 * (lo + hi);
}

VectorXd ref_prox_linf(const VectorXd& v, double t) {
    if (v.cwiseAbs().sum() <= t) return VectorXd::Zero(v.size());
    const double th = threshold(v, t);
    VectorXd r(v.size());
    for (int64_t i = 0; i < v.size(); ++i) r(i) = std::copysign(std::min(std::abs(v(i)), th), v(i));
    return r;
}

// The MagR iteration, written out: W' ← prox(W' − (W' − W)·H/λmax), prox per row segment of g columns.
MatrixXd reference_magr(const MatrixXd& W, const MatrixXd& H, int group, double alpha, int iters) {
    const double lmax = Eigen::SelfAdjointEigenSolver<MatrixXd>(H).eigenvalues().maxCoeff();
    const MatrixXd Hn = H / lmax;
    const int64_t in = W.cols(), g = group < 0 ? in : group;
    MatrixXd Wp = W;
    for (int it = 0; it < iters; ++it) {
        const MatrixXd Y = Wp - (Wp - W) * Hn;
        for (int64_t r = 0; r < W.rows(); ++r)
            for (int64_t c0 = 0; c0 < in; c0 += g) {
                const int64_t n = std::min(g, in - c0);
                Wp.row(r).segment(c0, n) = ref_prox_linf(Y.row(r).segment(c0, n).transpose(), alpha).transpose();
            }
    }
    return Wp;
}

double linf_penalty(const MatrixXd& W, int group) {
    const int64_t in = W.cols(), g = group < 0 ? in : group;
    double s = 0;
    for (int64_t r = 0; r < W.rows(); ++r)
        for (int64_t c0 = 0; c0 < in; c0 += g) s += W.row(r).segment(c0, std::min(g, in - c0)).cwiseAbs().maxCoeff();
    return s;
}

}  // namespace

class TestMagr : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void projectionIsOptimal() {
        std::mt19937 rng(3);
        std::normal_distribution<double> nd;
        for (int trial = 0; trial < 60; ++trial) {
            const int d = 1 + trial % 17;
            MatrixXd X(3, d);
            for (int64_t i = 0; i < X.size(); ++i) X.data()[i] = nd(rng) * (trial % 3 == 0 ? 10 : 1);
            X(1, 0) = X(1, d - 1);                             // ties
            X.row(2).setZero();                                // the zero vector is inside every ball
            const double z = std::pow(10.0, (trial % 7) - 3);  // 1e-3 .. 1e3: inside and outside the ball
            const MatrixXd P = cloq::test::to_eigen(project_l1_ball(cloq::test::from_eigen(X), z));
            for (int r = 0; r < 3; ++r) {
                const VectorXd x = X.row(r).transpose(), p = P.row(r).transpose();
                const double tol = 1e-12 * std::max(1.0, x.cwiseAbs().sum());
                QVERIFY(p.cwiseAbs().sum() <= z + tol);  // feasible
                if (x.cwiseAbs().sum() <= z) {
                    QVERIFY((p - x).cwiseAbs().maxCoeff() == 0.0);  // inside: unchanged
                    continue;
                }
                QVERIFY(std::abs(p.cwiseAbs().sum() - z) <= tol);  // outside: on the boundary
                // Certificate: P is the projection onto the convex ball iff (x−P)·(y−P) ≤ 0 for every y in it;
                // the left side is linear in y, so checking the 2d vertices ±z·e_i suffices: z‖x−P‖∞ ≤ (x−P)·P.
                const VectorXd res = x - p;
                QVERIFY2(z * res.cwiseAbs().maxCoeff() <= res.dot(p) + tol, qPrintable(QString("trial %1").arg(trial)));
                // and the closed form with θ found by bisection
                const double th = threshold(x, z);
                for (int i = 0; i < d; ++i)
                    QVERIFY(std::abs(p(i) - std::copysign(std::max(std::abs(x(i)) - th, 0.0), x(i))) <=
                            1e-9 * (1 + std::abs(x(i))));
            }
        }
    }

    void proxMinimizesItsObjective() {
        // prox_{t‖·‖∞}(x) = argmin_u t‖u‖∞ + ½‖u − x‖²: no random nearby point does better.
        std::mt19937 rng(5);
        std::normal_distribution<double> nd;
        for (double t : {0.05, 0.5, 5.0, 50.0}) {
            MatrixXd X(1, 12);
            for (int64_t i = 0; i < X.size(); ++i) X.data()[i] = nd(rng);
            const VectorXd x = X.row(0).transpose();
            const VectorXd u = cloq::test::to_eigen(prox_linf(cloq::test::from_eigen(X), t)).row(0).transpose();
            auto f = [&](const VectorXd& v) { return t * v.cwiseAbs().maxCoeff() + 0.5 * (v - x).squaredNorm(); };
            for (int k = 0; k < 2000; ++k) {
                VectorXd delta(12);
                for (int i = 0; i < 12; ++i) delta(i) = nd(rng) * 1e-3 * (1 + k % 5);
                QVERIFY(f(u) <= f(u + delta) + 1e-14);
            }
            QVERIFY((u - ref_prox_linf(x, t)).cwiseAbs().maxCoeff() <= 1e-9);
            // the CPU heap path and the sort-based projection (used on other devices) agree
            const VectorXd via_projection =
                x - cloq::test::to_eigen(project_l1_ball(cloq::test::from_eigen(X), t)).row(0).transpose();
            QVERIFY((u - via_projection).cwiseAbs().maxCoeff() <= 1e-12);
            if (x.cwiseAbs().sum() <= t) QCOMPARE(u.cwiseAbs().maxCoeff(), 0.0);
        }
    }

    void matchesReference_data() {
        QTest::addColumn<int>("group");
        QTest::addColumn<double>("alpha");
        QTest::newRow("per channel, default alpha") << -1 << -1.0;
        QTest::newRow("group 32, default alpha") << 32 << -1.0;
        QTest::newRow("ragged group 40") << 40 << 1e-3;
    }
    void matchesReference() {
        QFETCH(int, group);
        QFETCH(double, alpha);
        const int64_t out = 24, in = 96;
        torch::manual_seed(42 + group);
        const auto W = torch::randn({out, in}, torch::kFloat64) * 0.02;
        const auto X = cloq::test::anisotropic_acts(256, in, 10.0, 8);
        const auto H = X.t().mm(X);
        MagrOptions opt;
        opt.alpha = alpha;
        const auto Wp = magr_preprocess(W, H, group, opt);
        QCOMPARE(Wp.scalar_type(), torch::kFloat64);
        const double a = alpha >= 0 ? alpha : (group < 0 ? 1e-3 : 1e-4);
        const MatrixXd ref = reference_magr(cloq::test::to_eigen(W), cloq::test::to_eigen(H), group, a, 200);
        const MatrixXd got = cloq::test::to_eigen(Wp);
        const double diff = (got - ref).cwiseAbs().maxCoeff();
        const double moved = (got - cloq::test::to_eigen(W)).cwiseAbs().maxCoeff();
        qInfo("max |W' - ref| = %.3g (MagR moved weights by up to %.3g)", diff, moved);
        QVERIFY(moved > 1e-4);  // the comparison is not vacuous
        QVERIFY(diff <= 1e-10);
        // float32 weights run in float32 and stay close to the float64 result
        const auto Wp32 = magr_preprocess(W.to(torch::kFloat32), H, group, opt);
        QCOMPARE(Wp32.scalar_type(), torch::kFloat32);
        QVERIFY((cloq::test::to_eigen(Wp32) - ref).cwiseAbs().maxCoeff() <= 1e-5);
    }

    void reducesMagnitudeKeepsOutput_data() {
        QTest::addColumn<int>("group");
        QTest::newRow("per channel") << -1;
        QTest::newRow("group 64") << 64;
    }
    void reducesMagnitudeKeepsOutput() {
        QFETCH(int, group);
        const int64_t out = 32, in = 256;
        torch::manual_seed(7);
        auto W = torch::randn({out, in}, torch::kFloat64) * 0.02;
        W.index_put_({torch::randint(out, {40}), torch::randint(in, {40})}, 0.15);  // outliers, like real LLMs
        // Correlated inputs give H small eigen-directions that MagR can move weights along at little cost.
        const auto X = cloq::test::anisotropic_acts(1024, in, 100.0, 9);
        const auto H = X.t().mm(X);
        const auto Wp = magr_preprocess(W, H, group, MagrOptions{});
        const MatrixXd We = cloq::test::to_eigen(W), Wpe = cloq::test::to_eigen(Wp), He = cloq::test::to_eigen(H);
        const int64_t g = group < 0 ? in : group;
        double ratio_sum = 0;
        int64_t segments = 0;
        for (int64_t r = 0; r < out; ++r)
            for (int64_t c0 = 0; c0 < in; c0 += g) {
                const double before = We.row(r).segment(c0, g).cwiseAbs().maxCoeff();
                const double after = Wpe.row(r).segment(c0, g).cwiseAbs().maxCoeff();
                QVERIFY(after <= before * (1 + 1e-12));
                ratio_sum += after / before;
                ++segments;
            }
        const MatrixXd D = Wpe - We;
        const double out_change = std::sqrt((D * He * D.transpose()).trace() / (We * He * We.transpose()).trace());
        const double mean_ratio = ratio_sum / segments;
        qInfo("mean max|w'|/max|w| = %.3f, ‖X(W'−W)ᵀ‖/‖XWᵀ‖ = %.4f", mean_ratio, out_change);
        QVERIFY(mean_ratio < 0.9);
        QVERIFY(out_change < 0.05);
        // proximal gradient with step 1/L descends: the objective is below its value at the start (W' = W)
        const double alpha = group < 0 ? 1e-3 : 1e-4;
        const double lmax = Eigen::SelfAdjointEigenSolver<MatrixXd>(He).eigenvalues().maxCoeff();
        const double f_end = 0.5 * (D * He * D.transpose()).trace() / lmax + alpha * linf_penalty(Wpe, group);
        QVERIFY(f_end < alpha * linf_penalty(We, group));
    }

    // Cost on demand (CLOQ_BENCH=1, size CLOQ_BENCH_N, default 1024): MagR is `iters` GEMMs [out,in]x[in,in].
    void speed() {
        if (qEnvironmentVariableIsEmpty("CLOQ_BENCH")) QSKIP("set CLOQ_BENCH=1 to time MagR");
        const int64_t n =
            qEnvironmentVariableIntValue("CLOQ_BENCH_N") > 0 ? qEnvironmentVariableIntValue("CLOQ_BENCH_N") : 1024;
        const auto W = torch::randn({n, n}) * 0.02;
        const auto V = torch::randn({n, 256}, torch::kFloat64);
        const auto H = V.mm(V.t()) + torch::diag(torch::rand({n}, torch::kFloat64) * 256);
        const auto t0 = std::chrono::steady_clock::now();
        const std::clock_t c0 = std::clock();
        const auto Wp = magr_preprocess(W, H, 128, MagrOptions{});
        const double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        qInfo("MagR %dx%d g128, 200 iterations: %.2f s wall, %.2f s CPU (all threads)", int(n), int(n), s, cpu);
        QVERIFY(torch::isfinite(Wp).all().item<bool>());
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
        const auto H = torch::eye(8, torch::kFloat64);
        expect([&] { magr_preprocess(W, torch::eye(6), -1, {}); }, "H must be [8, 8]");
        expect([&] { magr_preprocess(W, H, 0, {}); }, "group size 0");
        MagrOptions bad;
        bad.iters = 0;
        expect([&] { magr_preprocess(W, H, -1, bad); }, "at least 1");
        auto Wn = W.clone();
        Wn[0][0] = INFINITY;
        expect([&] { magr_preprocess(Wn, H, -1, {}); }, "NaN or Inf");
        expect([&] { magr_preprocess(W, torch::zeros({8, 8}), -1, {}); }, "no positive eigenvalue");
        expect([&] { project_l1_ball(torch::ones({2, 2}), 0.0); }, "radius must be positive");
    }
};

QTEST_APPLESS_MAIN(TestMagr)
#include "test_magr.moc"
