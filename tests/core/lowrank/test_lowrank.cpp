// Low-rank inits against independent float64 Eigen implementations written here: Algorithm 1 of the CLoQ paper
// (eigendecomposition root R = Σ^½Uᵀ, pseudo-inverse, full SVD), plain SVD, EoRA, QERA (symmetric and diagonal
// roots) and PEFT's loftq_init; plus the theory: all splits give one product, CLoQ's H_λ-discrepancy is
// sqrt(Σ_{i>r} S_i²) and CLoQ ≤ svd ≤ zero; QERA-exact is the optimum of the unregularized objective.
#include <QtTest/QtTest>

#include <Eigen/SVD>

#include "cloq/base/error.h"
#include "cloq/lowrank/hessian_factor.h"
#include "cloq/lowrank/lowrank.h"
#include "cloq/quant/quant_int.h"
#include "nf_reference.h"
#include "test_support.h"

using namespace cloq;
using cloq::test::from_eigen;
using cloq::test::MatrixXd;
using cloq::test::to_eigen;
using VectorXd = Eigen::VectorXd;

namespace {

constexpr double kEps64 = 2.220446049250313e-16;

struct Ref {
    MatrixXd A, B;  // lora_A [r, in], lora_B [out, r]
    VectorXd S;     // all singular values of R·ΔWᵀ
    MatrixXd product() const { return B * A; }
};

// Root of a symmetric PSD matrix by eigendecomposition, dropping eigenvalues <= rel·max (pseudo-inverse).
struct EigRoot {
    MatrixXd R, Rpinv;
};
EigRoot eig_root(const MatrixXd& M, double rel) {
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(M);
    const VectorXd w = es.eigenvalues();
    const double wmax = std::max(w.maxCoeff(), 0.0);
    std::vector<int> keep;
    for (int i = 0; i < w.size(); ++i)
        if (w(i) > rel * wmax) keep.push_back(i);
    EigRoot r{MatrixXd(keep.size(), M.rows()), MatrixXd(M.rows(), keep.size())};
    for (size_t k = 0; k < keep.size(); ++k) {
        const double s = std::sqrt(w(keep[k]));
        r.R.row(k) = s * es.eigenvectors().col(keep[k]).transpose();
        r.Rpinv.col(k) = es.eigenvectors().col(keep[k]) / s;
    }
    return r;
}

// Algorithm 1 in the paper's layout (W_p = Wᵀ), translated to lora_A = A_pᵀ, lora_B = B_p at the end.
Ref ref_weighted(const MatrixXd& dW, const EigRoot& root, int r, Split split) {
    const MatrixXd M = root.R * dW.transpose();  // R·ΔW_p  [k, out]
    Eigen::BDCSVD<Eigen::MatrixXd> svd(M, Eigen::ComputeThinU | Eigen::ComputeThinV);
    Ref ref;
    ref.S = svd.singularValues();
    const int rr = std::min<int>(r, static_cast<int>(ref.S.size()));
    const MatrixXd Ur = svd.matrixU().leftCols(rr), Vr = svd.matrixV().leftCols(rr);
    VectorXd s = ref.S.head(rr), a_scale(rr), b_scale(rr);
    for (int i = 0; i < rr; ++i) {
        switch (split) {
        case Split::Default:
            a_scale(i) = s(i);
            b_scale(i) = 1;
            break;
        case Split::Sqrt:
            a_scale(i) = std::sqrt(s(i));
            b_scale(i) = std::sqrt(s(i));
            break;
        case Split::UVs:
            a_scale(i) = 1;
            b_scale(i) = s(i);
            break;
        }
    }
    ref.A = MatrixXd::Zero(r, dW.cols());
    ref.B = MatrixXd::Zero(dW.rows(), r);
    ref.A.topRows(rr) = (root.Rpinv * Ur * a_scale.asDiagonal()).transpose();  // A_p = R⁻¹ U_r (S_r…)
    ref.B.leftCols(rr) = Vr * b_scale.asDiagonal();                            // B_p = V_r (…)
    return ref;
}

Ref ref_cloq(const MatrixXd& W, const MatrixXd& Q, const MatrixXd& H, int r, Split split = Split::Default) {
    const double lam = 0.01 * H.trace() / H.rows();
    const MatrixXd Hl = H + lam * MatrixXd::Identity(H.rows(), H.cols());
    return ref_weighted(W - Q, eig_root(Hl, kEps64 * H.rows()), r, split);
}

double rel_fro(const MatrixXd& a, const MatrixXd& b) { return (a - b).norm() / std::max(b.norm(), 1e-300); }
double weighted(const MatrixXd& D, const MatrixXd& H) {
    return std::sqrt(std::max(0.0, (D * H * D.transpose()).trace()));
}
MatrixXd h_lambda(const MatrixXd& H) {
    return H + 0.01 * H.trace() / H.rows() * MatrixXd::Identity(H.rows(), H.cols());
}

struct Layer {
    torch::Tensor W, H, Q;
};
Layer make_layer(int64_t out, int64_t in, int64_t tokens, uint64_t seed, double cond = 30.0) {
    auto gen = at::detail::createCPUGenerator(seed);
    Layer l;
    l.W = (torch::randn({out, in}, gen, torch::kFloat64) * 0.05).to(torch::kFloat32);
    const auto X = cloq::test::anisotropic_acts(tokens, in, cond, seed + 1);
    l.H = X.t().mm(X);
    l.Q = quantize_rtn(l.W, IntQuantSpec{2, 16, false}).Q;
    return l;
}

// Columns of B (and rows of A) may come out with opposite signs; align them with the reference's.
void expect_factors_match(const LowRank& lr, const Ref& ref, double tol) {
    MatrixXd A = to_eigen(lr.A), B = to_eigen(lr.B);
    for (int i = 0; i < B.cols(); ++i)
        if (B.col(i).dot(ref.B.col(i)) < 0) {
            B.col(i) *= -1;
            A.row(i) *= -1;
        }
    QVERIFY2(rel_fro(B, ref.B) < tol, qPrintable(QString("lora_B differs by %1").arg(rel_fro(B, ref.B))));
    QVERIFY2(rel_fro(A, ref.A) < tol, qPrintable(QString("lora_A differs by %1").arg(rel_fro(A, ref.A))));
}

// PEFT's NFQuantizer (method "normal", block 64) on W as float32 (tests/support/nf_reference.h).
MatrixXd peft_nf_dequant(const MatrixXd& W, int bits) {
    const auto ref = cloq::test::reference_nf(cloq::test::from_eigen(W), cloq::test::create_normal_map(bits), 64);
    MatrixXd out(W.rows(), W.cols());
    for (Eigen::Index i = 0; i < W.rows(); ++i)
        for (Eigen::Index j = 0; j < W.cols(); ++j) out(i, j) = ref.Q[static_cast<size_t>(i * W.cols() + j)];
    return out;
}
// PEFT's loftq_init loop; quant is the quantizer of the residual (float32 in, dequantized out).
struct RefLoftq {
    MatrixXd Q, A, B;
};
RefLoftq peft_loftq(const MatrixXd& W, int r, int iters, const std::function<MatrixXd(const MatrixXd&)>& quant) {
    RefLoftq out;
    MatrixXd res = W;
    for (int t = 0; t < iters; ++t) {
        out.Q = quant(res);
        const MatrixXd dW = W - out.Q;
        Eigen::BDCSVD<Eigen::MatrixXd> svd(dW, Eigen::ComputeThinU | Eigen::ComputeThinV);
        const VectorXd sq = svd.singularValues().head(r).cwiseSqrt();
        out.B = svd.matrixU().leftCols(r) * sq.asDiagonal();              // L = U·√S
        out.A = sq.asDiagonal() * svd.matrixV().leftCols(r).transpose();  // R = √S·Vh
        res = (W - out.B * out.A).cast<float>().cast<double>();           // the next quantizer input is float32
    }
    return out;
}

}  // namespace

class TestLowrank : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void cloqMatchesAlgorithm1_data() {
        QTest::addColumn<int>("out");
        QTest::addColumn<int>("in");
        QTest::addColumn<int>("tokens");
        QTest::addColumn<int>("rank");
        QTest::newRow("out<in") << 48 << 80 << 400 << 8;
        QTest::newRow("out>in") << 96 << 40 << 300 << 6;
        QTest::newRow("square") << 64 << 64 << 256 << 16;
        QTest::newRow("rank-deficient X") << 40 << 72 << 20 << 5;  // 20 tokens: H has rank 20 < 72
        QTest::newRow("full rank") << 24 << 32 << 200 << 24;
    }
    void cloqMatchesAlgorithm1() {
        QFETCH(int, out);
        QFETCH(int, in);
        QFETCH(int, tokens);
        QFETCH(int, rank);
        auto l = make_layer(out, in, tokens, 11 + out);
        const MatrixXd W = to_eigen(l.W), Q = to_eigen(l.Q), H = to_eigen(l.H);
        const auto ref = ref_cloq(W, Q, H, rank);
        const auto lr = cloq_init(l.W, l.Q, l.H, rank, Split::Default, torch::kFloat64);
        QCOMPARE(lr.A.sizes(), (torch::IntArrayRef{rank, in}));
        QCOMPARE(lr.B.sizes(), (torch::IntArrayRef{out, rank}));
        QVERIFY2(rel_fro(to_eigen(lr.product()), ref.product()) < 1e-9,
                 qPrintable(QString("product differs by %1").arg(rel_fro(to_eigen(lr.product()), ref.product()))));
        expect_factors_match(lr, ref, 1e-8);
        // The float32 default output is the same adapter rounded.
        const auto lr32 = cloq_init(l.W, l.Q, l.H, rank);
        QCOMPARE(lr32.A.scalar_type(), torch::kFloat32);
        QVERIFY(rel_fro(to_eigen(lr32.product()), ref.product()) < 1e-6);
    }
    void splitsShareTheProduct() {
        auto l = make_layer(56, 72, 300, 3);
        const MatrixXd W = to_eigen(l.W), Q = to_eigen(l.Q), H = to_eigen(l.H);
        const int r = 12;
        const auto base = cloq_init(l.W, l.Q, l.H, r, Split::Default, torch::kFloat64);
        for (Split sp : {Split::Default, Split::Sqrt, Split::UVs}) {
            const auto lr = cloq_init(l.W, l.Q, l.H, r, sp, torch::kFloat64);
            QVERIFY(rel_fro(to_eigen(lr.product()), to_eigen(base.product())) < 1e-10);
            expect_factors_match(lr, ref_cloq(W, Q, H, r, sp), 1e-8);
        }
        // Where the singular values sit: default B = V_r has orthonormal columns; sqrt: ‖B_i‖ = S_i^½; u-vs: S_i.
        const auto ref = ref_cloq(W, Q, H, r);
        const MatrixXd Bd = to_eigen(base.B);
        QVERIFY((Bd.transpose() * Bd - MatrixXd::Identity(r, r)).norm() < 1e-10);
        const MatrixXd Bs = to_eigen(cloq_init(l.W, l.Q, l.H, r, Split::Sqrt, torch::kFloat64).B);
        const MatrixXd Bu = to_eigen(cloq_init(l.W, l.Q, l.H, r, Split::UVs, torch::kFloat64).B);
        for (int i = 0; i < r; ++i) {
            QVERIFY(std::abs(Bs.col(i).norm() - std::sqrt(ref.S(i))) < 1e-9 * std::sqrt(ref.S(0)));
            QVERIFY(std::abs(Bu.col(i).norm() - ref.S(i)) < 1e-9 * ref.S(0));
        }
    }
    void optimalValueAndOrdering_data() {
        QTest::addColumn<int>("out");
        QTest::addColumn<int>("in");
        QTest::addColumn<double>("cond");
        QTest::newRow("wide") << 40 << 96 << 30.0;
        QTest::newRow("tall") << 120 << 48 << 30.0;
        QTest::newRow("ill-conditioned") << 64 << 64 << 1e4;
    }
    void optimalValueAndOrdering() {
        QFETCH(int, out);
        QFETCH(int, in);
        QFETCH(double, cond);
        auto l = make_layer(out, in, 3 * in, 5 + in, cond);
        const MatrixXd W = to_eigen(l.W), Q = to_eigen(l.Q), H = to_eigen(l.H), Hl = h_lambda(H);
        for (int r : {0, 1, 7, 20}) {
            const auto ref = ref_cloq(W, Q, H, r);
            const double optimal = std::sqrt(ref.S.tail(ref.S.size() - r).squaredNorm());
            const auto cl = cloq_init(l.W, l.Q, l.H, r, Split::Default, torch::kFloat64);
            const auto sv = svd_init(l.W, l.Q, r, Split::Default, torch::kFloat64);
            const MatrixXd Dc = Q + to_eigen(cl.product()) - W, Ds = Q + to_eigen(sv.product()) - W, Dz = Q - W;
            const double c = weighted(Dc, Hl), s = weighted(Ds, Hl), z = weighted(Dz, Hl);
            QVERIFY2(cloq::test::rel_diff(c, optimal) < 1e-9, qPrintable(QString("%1 vs %2").arg(c).arg(optimal)));
            // CLoQ is optimal w.r.t. H_λ; svd ≤ zero holds for any PSD weighting (it drops Σ_{i≤r} S_i² v_iᵀHv_i).
            QVERIFY(c <= s * (1 + 1e-12));
            QVERIFY(s <= z * (1 + 1e-12));
            QVERIFY(weighted(Dc, H) <= weighted(Dz, H) * (1 + 1e-12));
            if (r > 0) QVERIFY(c < s);  // calibration buys something on anisotropic inputs
        }
    }
    void svdInitMatchesSvd() {
        auto l = make_layer(30, 50, 100, 21);
        const MatrixXd dW = to_eigen(l.W) - to_eigen(l.Q);
        const EigRoot identity{MatrixXd::Identity(50, 50), MatrixXd::Identity(50, 50)};
        for (Split sp : {Split::Default, Split::Sqrt, Split::UVs}) {
            const auto ref = ref_weighted(dW, identity, 9, sp);
            const auto lr = svd_init(l.W, l.Q, 9, sp, torch::kFloat64);
            QVERIFY(rel_fro(to_eigen(lr.product()), ref.product()) < 1e-9);
            expect_factors_match(lr, ref, 1e-8);
        }
    }
    void pseudoInverseForSingularH() {
        // A matrix that is not positive definite even after the ridge (a direction pushed negative): Cholesky fails,
        // the eigen root with the pseudo-inverse takes over and drops that direction — exactly what the reference does.
        for (auto [out, in] : {std::pair{36, 60}, std::pair{90, 40}}) {
            auto l = make_layer(out, in, 4 * in, 31 + out, /*cond=*/2.0);  // mild, so the diagonal stays positive
            MatrixXd H = to_eigen(l.H);
            Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(H);
            const double lam = 0.01 * H.trace() / in;
            const VectorXd v = es.eigenvectors().col(0);
            H -= (es.eigenvalues()(0) + 3 * lam) * v * v.transpose();
            const auto Ht = from_eigen(H);
            QVERIFY(!HessianFactor(Ht).is_cholesky());
            const MatrixXd W = to_eigen(l.W), Q = to_eigen(l.Q);
            const auto ref = ref_cloq(W, Q, H, 6);
            const auto lr = cloq_init(l.W, l.Q, Ht, 6, Split::Default, torch::kFloat64);
            QVERIFY2(rel_fro(to_eigen(lr.product()), ref.product()) < 1e-8,
                     qPrintable(QString("%1").arg(rel_fro(to_eigen(lr.product()), ref.product()))));
            QVERIFY(torch::isfinite(lr.A).all().item<bool>());
        }
        // Dead input columns and a rank-deficient X: H_λ stays positive definite through the ridge.
        auto l = make_layer(32, 48, 10, 41);
        auto H = l.H.clone();
        for (int64_t j : {0, 5, 47}) {
            H.index_put_({j}, 0.0);
            H.index_put_({torch::indexing::Slice(), j}, 0.0);
        }
        const auto ref = ref_cloq(to_eigen(l.W), to_eigen(l.Q), to_eigen(H), 7);
        const auto lr = cloq_init(l.W, l.Q, H, 7, Split::Default, torch::kFloat64);
        QVERIFY(rel_fro(to_eigen(lr.product()), ref.product()) < 1e-8);
        // H = 0 (a layer never reached by the calibration data): λ = 0, R = 0, the adapter is zero, not NaN.
        const auto z = cloq_init(l.W, l.Q, torch::zeros({48, 48}, torch::kFloat64), 4, Split::Default, torch::kFloat64);
        QCOMPARE(z.A.sizes(), (torch::IntArrayRef{4, 48}));
        QCOMPARE(z.product().abs().max().item<double>(), 0.0);
    }
    void eoraMatchesReference() {
        // EoRA: unregularized H of rank 30 < in = 64, eigenvalues ≤ λ_max·in·eps₃₂ dropped, √S on both sides.
        auto l = make_layer(40, 64, 30, 51);
        const MatrixXd W = to_eigen(l.W), Q = to_eigen(l.Q), H = to_eigen(l.H);
        for (int r : {8, 40}) {  // 40 > rank(H): the extra components are zero
            const auto ref = ref_weighted(W - Q, eig_root(H, 64 * 1.1920928955078125e-07), r, Split::Sqrt);
            const auto lr = eora_init(l.W, l.Q, l.H, r, torch::kFloat64);
            QCOMPARE(lr.rank(), int64_t(r));
            QVERIFY2(rel_fro(to_eigen(lr.product()), ref.product()) < 1e-8,
                     qPrintable(QString("%1").arg(rel_fro(to_eigen(lr.product()), ref.product()))));
        }
    }
    void qeraMatchesReference() {
        // QERA-exact: the symmetric root UΛ^½Uᵀ of the unregularized H (here of rank 30 < in = 64, so the
        // pseudo-inverse matters); QERA-approx: diag(H)^½ with a dead feature (diag 0) that gets no adapter.
        auto l = make_layer(40, 64, 30, 53);
        auto Ht = l.H.clone();
        Ht.index_put_({7}, 0.0);
        Ht.index_put_({torch::indexing::Slice(), 7}, 0.0);
        const MatrixXd W = to_eigen(l.W), Q = to_eigen(l.Q), H = to_eigen(Ht);
        Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(H);
        const double wmax = es.eigenvalues().maxCoeff();
        EigRoot sym{MatrixXd::Zero(64, 64), MatrixXd::Zero(64, 64)};
        for (int i = 0; i < 64; ++i) {
            const double w = es.eigenvalues()(i);
            if (w <= kEps64 * 64 * wmax) continue;
            const VectorXd u = es.eigenvectors().col(i);
            sym.R += std::sqrt(w) * u * u.transpose();
            sym.Rpinv += u * u.transpose() / std::sqrt(w);
        }
        EigRoot diag{MatrixXd::Zero(64, 64), MatrixXd::Zero(64, 64)};
        for (int i = 0; i < 64; ++i)
            if (H(i, i) > 0) diag.R(i, i) = std::sqrt(H(i, i)), diag.Rpinv(i, i) = 1 / std::sqrt(H(i, i));
        for (Split sp : {Split::Default, Split::Sqrt, Split::UVs})
            for (int r : {8, 40}) {
                for (bool exact : {true, false}) {
                    const auto ref = ref_weighted(W - Q, exact ? sym : diag, r, sp);
                    const auto lr = qera_init(l.W, l.Q, Ht, r, exact, sp, torch::kFloat64);
                    QCOMPARE(lr.rank(), int64_t(r));
                    const double d = rel_fro(to_eigen(lr.product()), ref.product());
                    QVERIFY2(d < 1e-8, qPrintable(QString("%1 r%2: %3").arg(exact ? "exact" : "approx").arg(r).arg(d)));
                    // Factors (where the split shows) at the rank below rank(H): the pseudo-inverse's Λ^-½ of the
                    // smallest kept eigenvalues amplifies rounding, so 1e-4; a wrong split is off by O(1).
                    if (r == 8) expect_factors_match(lr, ref, 1e-4);
                }
            }
        const auto approx = qera_init(l.W, l.Q, Ht, 8, false, Split::Default, torch::kFloat64);
        QCOMPARE(approx.A.select(1, 7).abs().max().item<double>(), 0.0);  // the dead feature
    }
    void qeraTheory() {
        // Full-rank H: QERA-exact reaches the optimum of the UNregularized objective, sqrt(Σ_{i>r} σ_i²) of
        // ΔW·H^½, so on the plain calibration metric it is ≤ CLoQ (which optimizes H_λ) ≤ ... and on H_λ
        // CLoQ ≤ QERA-exact: the ridge trades a little calibration fit for a smaller ‖D‖. QERA-approx ≥ QERA-exact
        // on H. Its product equals EoRA's (another root of the same H) where no eigenvalue is cut. With a diagonal H
        // both QERAs coincide.
        auto l = make_layer(48, 72, 400, 57, 30.0);
        const MatrixXd W = to_eigen(l.W), Q = to_eigen(l.Q), H = to_eigen(l.H), Hl = h_lambda(H);
        Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(H);
        const MatrixXd Hhalf = es.operatorSqrt();
        const VectorXd sv = Eigen::BDCSVD<Eigen::MatrixXd>(Hhalf * (W - Q).transpose()).singularValues();
        for (int r : {1, 6, 24}) {
            const auto qe = qera_init(l.W, l.Q, l.H, r, true, Split::Default, torch::kFloat64);
            const auto qa = qera_init(l.W, l.Q, l.H, r, false, Split::Default, torch::kFloat64);
            const auto cl = cloq_init(l.W, l.Q, l.H, r, Split::Default, torch::kFloat64);
            const auto eo = eora_init(l.W, l.Q, l.H, r, torch::kFloat64);
            const MatrixXd De = Q + to_eigen(qe.product()) - W, Da = Q + to_eigen(qa.product()) - W,
                           Dc = Q + to_eigen(cl.product()) - W;
            const double optimal = std::sqrt(sv.tail(sv.size() - r).squaredNorm());
            QVERIFY2(cloq::test::rel_diff(weighted(De, H), optimal) < 1e-8,
                     qPrintable(QString("%1 vs %2").arg(weighted(De, H)).arg(optimal)));
            QVERIFY(weighted(De, H) <= weighted(Dc, H) * (1 + 1e-12));
            QVERIFY(weighted(De, H) <= weighted(Da, H) * (1 + 1e-12));
            QVERIFY(weighted(Dc, Hl) <= weighted(De, Hl) * (1 + 1e-12));
            QVERIFY(rel_fro(to_eigen(qe.product()), to_eigen(eo.product())) < 1e-7);
        }
        MatrixXd Hd = MatrixXd::Zero(72, 72);
        for (int i = 0; i < 72; ++i) Hd(i, i) = H(i, i);
        const auto Hdt = from_eigen(Hd);
        QVERIFY(rel_fro(to_eigen(qera_init(l.W, l.Q, Hdt, 9, true, Split::Default, torch::kFloat64).product()),
                        to_eigen(qera_init(l.W, l.Q, Hdt, 9, false, Split::Default, torch::kFloat64).product())) <
                1e-9);
    }
    void loftqIntMatchesPeftLoop() {
        // INT (RTN, the same quantizer CLoQ would use) inside PEFT's loop; T = 1 exactly, T = 3 with float32 noise.
        auto l = make_layer(48, 64, 100, 61);
        LayerSettings s;
        s.method = QuantMethod::Rtn;
        s.quant = IntQuantSpec{2, 32, false};
        s.rank = 6;
        s.loftq_quant = LoftqQuant::Int;
        const MatrixXd W = to_eigen(l.W);
        const auto rtn = [&](const MatrixXd& res) {
            return to_eigen(quantize_rtn(from_eigen(res).to(torch::kFloat32), s.quant).Q);
        };
        for (int T : {1, 3}) {
            s.loftq_iters = T;
            const auto got = loftq_init(l.W, l.H, s);
            const auto ref = peft_loftq(W, s.rank, T, rtn);
            QVERIFY(got.int_weight.has_value());
            const double qdiff = (to_eigen(got.Q) - ref.Q).cwiseAbs().maxCoeff();
            QVERIFY2(T > 1 || qdiff == 0.0, qPrintable(QString("Q differs by %1").arg(qdiff)));
            const int64_t same =
                (to_eigen(got.Q) - ref.Q).cwiseAbs().unaryExpr([](double d) { return d == 0 ? 1.0 : 0.0; }).sum();
            QVERIFY(same >= static_cast<int64_t>(0.995 * W.size()));
            QVERIFY2(
                rel_fro(to_eigen(got.adapter.product()), ref.B * ref.A) < (T == 1 ? 1e-6 : 5e-2),
                qPrintable(
                    QString("product differs by %1").arg(rel_fro(to_eigen(got.adapter.product()), ref.B * ref.A))));
            // √S on both sides: ‖B_i‖ = ‖A_i‖.
            for (int i = 0; i < s.rank; ++i)
                QVERIFY(std::abs(got.adapter.B.select(1, i).norm().item<double>() -
                                 got.adapter.A[i].norm().item<double>()) < 1e-5);
        }
    }
    void loftqNfMatchesPeft() {
        for (int bits : {2, 4}) {
            auto l = make_layer(64, 96, 100, 71 + bits);
            LayerSettings s;
            s.quant.bits = bits;
            s.rank = 8;
            s.loftq_iters = 1;
            s.loftq_quant = LoftqQuant::Nf;
            const MatrixXd W = to_eigen(l.W);
            const auto got = loftq_init(l.W, l.H, s);
            const auto ref = peft_loftq(W, s.rank, 1, [&](const MatrixXd& res) { return peft_nf_dequant(res, bits); });
            QVERIFY(!got.int_weight.has_value());
            const MatrixXd dq = to_eigen(got.Q) - ref.Q;
            int64_t same = 0;
            for (int64_t i = 0; i < dq.size(); ++i) same += dq.data()[i] == 0;
            QVERIFY2(same >= static_cast<int64_t>(0.999 * dq.size()),
                     qPrintable(QString("%1 of %2 equal").arg(same).arg(dq.size())));
            QVERIFY2(rel_fro(to_eigen(got.adapter.product()), ref.B * ref.A) < 1e-3,
                     qPrintable(QString("%1").arg(rel_fro(to_eigen(got.adapter.product()), ref.B * ref.A))));
        }
    }
    void zeroInit() {
        const auto z = zero_init(10, 20, 4);
        QCOMPARE(z.A.sizes(), (torch::IntArrayRef{4, 20}));
        QCOMPARE(z.B.sizes(), (torch::IntArrayRef{10, 4}));
        QCOMPARE(z.product().abs().max().item<double>(), 0.0);
        QCOMPARE(zero_init(10, 20, 0).rank(), int64_t(0));
    }
    void rankZeroAndFullRank() {
        auto l = make_layer(20, 30, 60, 81);
        QCOMPARE(cloq_init(l.W, l.Q, l.H, 0).rank(), int64_t(0));
        // r = min(out, in): the adapter reproduces ΔW exactly (R invertible).
        const auto full = cloq_init(l.W, l.Q, l.H, 20, Split::Default, torch::kFloat64);
        QVERIFY(rel_fro(to_eigen(full.product()), to_eigen(l.W) - to_eigen(l.Q)) < 1e-9);
    }
    void badInputs() {
        auto l = make_layer(20, 30, 60, 91);
        const auto expect = [](const std::function<void()>& f, const std::string& what) {
            try {
                f();
                QFAIL(qPrintable(QString::fromStdString("no error: " + what)));
            } catch (const Error& e) {
                QVERIFY2(std::string(e.what()).find(what) != std::string::npos, e.what());
            }
        };
        expect([&] { cloq_init(l.W, l.Q, l.H, 21); }, "rank 21 is outside 0..min(out, in) = 20");
        expect([&] { cloq_init(l.W, l.Q, l.H, -1); }, "rank -1");
        expect([&] { cloq_init(l.W, l.Q.narrow(0, 0, 10), l.H, 2); }, "Q has shape [10, 30] but W has shape [20, 30]");
        expect([&] { cloq_init(l.W, l.Q, l.H.narrow(0, 0, 29), 2); }, "H must be [in, in] = [30, 30]");
        auto Wn = l.W.clone();
        Wn[3][4] = std::numeric_limits<float>::quiet_NaN();
        expect([&] { cloq_init(Wn, l.Q, l.H, 2); }, "contains NaN or Inf");
        auto Hn = l.H.clone();
        Hn[1][2] = 5.0;
        expect([&] { (void)HessianFactor(Hn, "h.npy"); }, "h.npy: H is not symmetric");
        auto Hd = l.H.clone();
        Hd[2][2] = -1.0;
        expect([&] { (void)HessianFactor(Hd, "h.npy"); }, "negative diagonal");
        expect([&] { (void)HessianFactor(torch::zeros({3, 4}), "h.npy"); }, "h.npy: the Gram matrix H must be square");
        expect([&] { svd_init(l.W.flatten(), l.Q, 2); }, "2-D");
    }
};

QTEST_APPLESS_MAIN(TestLowrank)
#include "test_lowrank.moc"
