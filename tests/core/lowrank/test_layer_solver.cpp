// LayerSolver: the cached update equals a fresh solve, every init and metric equals the one-shot functions and the
// dense definitions, the rank sweep equals re-solving at each rank, and the theorem checks hold.
#include <QtTest/QtTest>

#include <Eigen/SVD>

#include "cloq/base/error.h"
#include "cloq/lowrank/layer_solver.h"
#include "test_support.h"

using namespace cloq;
using cloq::test::MatrixXd;
using cloq::test::rel_diff;
using cloq::test::to_eigen;

namespace {
struct Setup {
    torch::Tensor W, H;
};
Setup make(int64_t out, int64_t in, uint64_t seed, double cond = 100.0) {
    auto gen = at::detail::createCPUGenerator(seed);
    Setup s;
    s.W = (torch::randn({out, in}, gen, torch::kFloat64) * 0.04).to(torch::kFloat32);
    const auto X = cloq::test::anisotropic_acts(2 * in, in, cond, seed + 7);
    s.H = X.t().mm(X);
    return s;
}
LayerSettings rtn(int bits, int group, int rank, Split split = Split::Default) {
    LayerSettings s;
    s.method = QuantMethod::Rtn;
    s.quant = IntQuantSpec{bits, group, false};
    s.rank = rank;
    s.split = split;
    return s;
}
double rel_fro(const torch::Tensor& a, const torch::Tensor& b) {
    return (to_eigen(a) - to_eigen(b)).norm() / std::max(to_eigen(b).norm(), 1e-300);
}
void expect_same(const LayerSolver& a, const LayerSolver& b, InitMethod m) {
    QVERIFY(torch::equal(a.base(m), b.base(m)));
    const double d = rel_fro(a.init(m, torch::kFloat64).product(), b.init(m, torch::kFloat64).product());
    QVERIFY2(d < 1e-10, qPrintable(QString("%1: products differ by %2").arg(to_string(m).c_str()).arg(d)));
    const auto ma = a.metrics(m), mb = b.metrics(m);
    QVERIFY(rel_diff(ma.fro, mb.fro) < 1e-10);
    QVERIFY(rel_diff(ma.spec, mb.spec) < 1e-8);
}
}  // namespace

class TestLayerSolver : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void cachedUpdateEqualsFreshSolve() {
        for (auto [out, in] : {std::pair{96, 160}, std::pair{200, 120}}) {
            const auto su = make(out, in, 1 + out);
            LayerSolver cached(su.W, su.H, "cached");
            // A sequence of changes: rank up and down, split, bits, group, back.
            std::vector<LayerSettings> seq = {
                rtn(2, 32, 8),  rtn(2, 32, 40), rtn(2, 32, 3, Split::Sqrt), rtn(3, 32, 3, Split::UVs),
                rtn(3, -1, 60), rtn(2, 32, 8)};
            for (const auto& s : seq) {
                cached.update(s);
                cached.ensure(InitMethod::Svd);
                LayerSolver fresh(su.W, su.H, "fresh");
                fresh.update(s);
                fresh.ensure(InitMethod::Svd);
                for (InitMethod m : {InitMethod::Zero, InitMethod::Cloq, InitMethod::Svd})
                    expect_same(cached, fresh, m);
                QVERIFY(rel_diff(cached.cloq_optimal_value(), fresh.cloq_optimal_value()) < 1e-12);
            }
        }
    }
    void rankChangeReusesTheSpectrum() {
        const auto su = make(120, 200, 3);
        LayerSolver s(su.W, su.H);
        s.update(rtn(2, 64, 16));
        QVERIFY(s.timings().count("quantize") && s.timings().count("eigensolve") && s.timings().count("gram"));
        const auto S = s.cloq_singular_values();
        s.update(rtn(2, 64, 100, Split::Sqrt));
        QVERIFY(!s.timings().count("quantize") && !s.timings().count("eigensolve"));  // nothing heavy reran
        QCOMPARE(s.cloq_singular_values().data_ptr(), S.data_ptr());
        s.update(rtn(4, 64, 100, Split::Sqrt));
        QVERIFY(s.timings().count("quantize"));
    }
    void matchesOneShotFunctionsAndDenseMetrics() {
        const auto su = make(80, 144, 5);
        LayerSolver s(su.W, su.H);
        auto st = rtn(2, 16, 12);
        st.loftq_iters = 2;
        s.update(st);
        for (InitMethod m :
             {InitMethod::Svd, InitMethod::Eora, InitMethod::QeraExact, InitMethod::QeraApprox, InitMethod::Loftq})
            s.ensure(m);
        const auto Q = s.quantized().Q;
        QVERIFY(torch::equal(Q, quantize_rtn(su.W, st.quant).Q));
        QVERIFY(rel_fro(s.init(InitMethod::Cloq, torch::kFloat64).product(),
                        cloq_init(su.W, Q, su.H, 12, Split::Default, torch::kFloat64).product()) < 1e-10);
        QVERIFY(rel_fro(s.init(InitMethod::Svd, torch::kFloat64).product(),
                        svd_init(su.W, Q, 12, Split::Default, torch::kFloat64).product()) < 1e-10);
        QVERIFY(rel_fro(s.init(InitMethod::Eora, torch::kFloat64).product(),
                        eora_init(su.W, Q, su.H, 12, torch::kFloat64).product()) < 1e-10);
        for (bool exact : {true, false})
            QVERIFY(rel_fro(s.init(exact ? InitMethod::QeraExact : InitMethod::QeraApprox, torch::kFloat64).product(),
                            qera_init(su.W, Q, su.H, 12, exact, Split::Default, torch::kFloat64).product()) < 1e-10);
        const auto lq = loftq_init(su.W, su.H, st);
        QVERIFY(torch::equal(s.base(InitMethod::Loftq), lq.Q));
        QVERIFY(rel_fro(s.init(InitMethod::Loftq).product(), lq.adapter.product()) < 1e-6);
        // Structured metrics = the dense definition on D = base + B·A − W.
        for (InitMethod m : {InitMethod::Zero, InitMethod::Cloq, InitMethod::Svd, InitMethod::Eora,
                             InitMethod::QeraExact, InitMethod::QeraApprox, InitMethod::Loftq}) {
            const auto got = s.metrics(m);
            const auto want = discrepancy(su.W, s.base(m), s.init(m, torch::kFloat64), su.H);
            QVERIFY2(rel_diff(got.fro, want.fro) < 1e-9 && rel_diff(got.fro_rel, want.fro_rel) < 1e-9,
                     qPrintable(QString("%1: fro %2 vs %3").arg(to_string(m).c_str()).arg(got.fro).arg(want.fro)));
            QVERIFY2(rel_diff(got.spec, want.spec) < 1e-8 && rel_diff(got.spec_rel, want.spec_rel) < 1e-8,
                     qPrintable(QString("%1: spec %2 vs %3").arg(to_string(m).c_str()).arg(got.spec).arg(want.spec)));
            const auto cheap = s.metrics(m, false);
            QCOMPARE(cheap.spec, -1.0);
            QVERIFY(rel_diff(cheap.fro, got.fro) < 1e-13);
        }
    }
    void theoremChecks() {
        const auto su = make(100, 128, 7, 1e3);
        LayerSolver s(su.W, su.H);
        for (int r : {0, 4, 32, 80}) {
            s.update(rtn(2, 32, r));
            s.ensure(InitMethod::Svd);
            const double opt = s.cloq_optimal_value();
            const double c = s.hlambda_discrepancy(InitMethod::Cloq), v = s.hlambda_discrepancy(InitMethod::Svd),
                         z = s.hlambda_discrepancy(InitMethod::Zero);
            QVERIFY2(rel_diff(c, opt) < 1e-9, qPrintable(QString("r=%1: %2 vs optimal %3").arg(r).arg(c).arg(opt)));
            QVERIFY(c <= v * (1 + 1e-12) && v <= z * (1 + 1e-12));
            // Singular values: of R·ΔWᵀ (checked through the optimum) and of ΔW (against Eigen's SVD).
            const auto dS = s.delta_singular_values();
            Eigen::BDCSVD<Eigen::MatrixXd> svd(to_eigen(su.W) - to_eigen(s.quantized().Q));
            for (int i = 0; i < 100; ++i)
                QVERIFY(std::abs(dS[i].item<double>() - svd.singularValues()(i)) < 1e-9 * svd.singularValues()(0));
        }
        const auto S = s.cloq_singular_values();
        QCOMPARE(S.size(0), int64_t(100));
        QVERIFY((S.narrow(0, 0, 99) >= S.narrow(0, 1, 99)).all().item<bool>());
    }
    void rankSweepEqualsResolving() {
        const auto su = make(72, 96, 9);
        LayerSolver s(su.W, su.H);
        auto st = rtn(2, 32, 5);
        st.loftq_iters = 1;
        s.update(st);
        s.ensure(InitMethod::Svd);
        s.ensure(InitMethod::Eora);
        s.ensure(InitMethod::Loftq);
        const int r_max = 40;
        for (InitMethod m : {InitMethod::Zero, InitMethod::Cloq, InitMethod::Svd, InitMethod::Eora}) {
            const auto fro = s.rank_sweep(m, r_max);
            const auto spec = s.rank_sweep(m, 12, true);
            QCOMPARE(fro.size(), size_t(r_max + 1));
            for (int r = 0; r <= r_max; ++r) {
                LayerSolver fresh(su.W, su.H);
                fresh.update(rtn(2, 32, r));
                fresh.ensure(m);
                const auto d = fresh.metrics(m, r <= 12);
                QVERIFY2(
                    rel_diff(fro[r], d.fro) < 1e-9,
                    qPrintable(QString("%1 r=%2: %3 vs %4").arg(to_string(m).c_str()).arg(r).arg(fro[r]).arg(d.fro)));
                if (r <= 12) QVERIFY(rel_diff(spec[r], d.spec) < 1e-8);
            }
        }
        // LoftQ's sweep truncates the SVD of W − Q_loftq (its Q is not re-solved per rank); at its own rank it is
        // exact.
        const auto lf = s.rank_sweep(InitMethod::Loftq, 10);
        const MatrixXd dW = to_eigen(su.W) - to_eigen(s.base(InitMethod::Loftq));
        Eigen::BDCSVD<Eigen::MatrixXd> svd(dW, Eigen::ComputeThinU | Eigen::ComputeThinV);
        for (int r : {0, 3, 10}) {
            const MatrixXd D = svd.matrixU().leftCols(r) * svd.singularValues().head(r).asDiagonal() *
                                   svd.matrixV().leftCols(r).transpose() -
                               dW;
            const double want = std::sqrt((D * to_eigen(su.H) * D.transpose()).trace());
            QVERIFY(rel_diff(lf[r], want) < 1e-9);
        }
        QVERIFY(rel_diff(lf[5], s.metrics(InitMethod::Loftq, false).fro) < 1e-6);
        // r_max beyond min(out, in) is capped.
        QCOMPARE(s.rank_sweep(InitMethod::Cloq, 1000).size(), size_t(73));
    }
    void sharedHessianFactor() {
        const auto su = make(64, 96, 11);
        auto hf = std::make_shared<const HessianFactor>(su.H, "qkv");
        torch::manual_seed(2);
        const auto Wk = 0.04 * torch::randn({32, 96});
        LayerSolver q(su.W, hf, "q_proj"), k(Wk, hf, "k_proj");
        q.update(rtn(2, 32, 8));
        k.update(rtn(2, 32, 8));
        QCOMPARE(q.hessian_ptr().get(), k.hessian_ptr().get());
        LayerSolver k2(Wk, su.H, "k alone");
        k2.update(rtn(2, 32, 8));
        expect_same(k, k2, InitMethod::Cloq);
    }
    void cancellationLeavesItNotReady() {
        const auto su = make(64, 96, 13);
        LayerSolver s(su.W, su.H);
        s.update(rtn(2, 32, 8));
        Progress p;
        p.cancel.cancel();
        QVERIFY_THROWS_EXCEPTION(Cancelled, s.update(rtn(3, 32, 8), p));
        QVERIFY(!s.ready(InitMethod::Cloq));
        QVERIFY_THROWS_EXCEPTION(Error, s.init(InitMethod::Cloq));
        s.update(rtn(3, 32, 8));
        QVERIFY(s.ready(InitMethod::Cloq));
        QVERIFY(!s.ready(InitMethod::Svd));
        // Progress runs from 0 to 1.
        double last = -1;
        bool monotone = true;
        Progress watch;
        watch.report = [&](double f, const std::string&) {
            monotone = monotone && f >= last - 1e-12;
            last = f;
        };
        s.update(rtn(4, 32, 8), watch);
        QVERIFY(monotone);
        QCOMPARE(last, 1.0);
    }
    void errors() {
        const auto su = make(20, 48, 15);
        const auto expect = [](const std::function<void()>& f, const std::string& what) {
            try {
                f();
                QFAIL(qPrintable(QString::fromStdString("no error: " + what)));
            } catch (const Error& e) {
                QVERIFY2(std::string(e.what()).find(what) != std::string::npos, e.what());
            }
        };
        expect([&] { LayerSolver(su.W.narrow(1, 0, 40), su.H, "W.npy"); },
               "W.npy: the weight has 40 input features but H (W.npy (H)) is 48 x 48");
        expect([&] { LayerSolver(su.W, su.H, "W.npy").update(rtn(2, 32, 21)); },
               "W.npy: rank 21 exceeds min(out, in) = 20");
        expect([&] { LayerSolver(su.W, su.H, "W.npy").init(InitMethod::Cloq); }, "call update first");
        expect(
            [&] {
                LayerSolver s(su.W, su.H, "W.npy");
                s.update(rtn(2, 32, 4));
                s.init(InitMethod::Loftq);
            },
            "W.npy: the loftq init is not computed");
        auto bad = su.W.clone();
        bad[0][0] = std::numeric_limits<float>::infinity();
        expect([&] { LayerSolver(bad, su.H, "W.npy"); }, "W.npy: the weight contains NaN or Inf");
        auto s0 = rtn(2, 0, 4);
        expect([&] { LayerSolver(su.W, su.H).update(s0); }, "group size 0 is invalid");
    }
};

QTEST_APPLESS_MAIN(TestLayerSolver)
#include "test_layer_solver.moc"
