// cloq-test-labels: slow
// cloq-test-timeout: 900
// Issue 3's acceptance check: on a random 2048×2048 layer with anisotropic activations, `cloq layer` (2-bit, g64,
// r64, GPTQ) matches a float64 reference implementation of the paper written here — GPTQ as IST-DASLab's gptq.py
// (≥ 99 % identical codes) and Algorithm 1 with the eigendecomposition root R = Σ^½Uᵀ and a full SVD (CLoQ relative
// Frobenius discrepancy within 1e-6 relative). The reference uses LibTorch's float64 LAPACK calls (eigh, svd) for
// speed; the CLI takes a different route (Cholesky root, Gram matrix, partial MRRR eigensolver).
#include <QtTest/QtTest>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli.h"
#include "cloq/io/npy.h"
#include "test_support.h"

using namespace cloq;
using cloq::test::rel_diff;

namespace {
// gptq.py fasterquant in float64 (asymmetric, groups along the input, group parameters from the outer W that only
// receives the error feedback at block ends; dead columns zeroed; damp·mean(diag H) on the diagonal).
torch::Tensor reference_gptq_codes(torch::Tensor W, torch::Tensor H, int bits, int64_t group, int64_t blocksize,
                                   torch::Tensor* Q_out) {
    const int64_t out = W.size(0), in = W.size(1);
    const double maxq = (1 << bits) - 1;
    W = W.clone();
    H = H.clone();
    const auto dead = H.diagonal() == 0;
    H.diagonal().masked_fill_(dead, 1.0);
    W.index_put_({torch::indexing::Slice(), dead}, 0.0);
    H.diagonal().add_(0.01 * H.diagonal().mean().item<double>());
    auto Hinv = torch::linalg::cholesky(torch::cholesky_inverse(torch::linalg::cholesky(H))).t().contiguous();  // upper
    auto codes = torch::zeros({out, in}, torch::kFloat64);
    auto Q = torch::zeros({out, in}, torch::kFloat64);
    torch::Tensor scale, zero;
    for (int64_t i1 = 0; i1 < in; i1 += blocksize) {
        const int64_t i2 = std::min(i1 + blocksize, in), count = i2 - i1;
        auto W1 = W.slice(1, i1, i2).clone();
        auto Err1 = torch::zeros({out, count}, torch::kFloat64);
        const auto Hinv1 = Hinv.slice(0, i1, i2).slice(1, i1, i2);
        for (int64_t i = 0; i < count; ++i) {
            const int64_t col = i1 + i;
            if (col % group == 0) {
                const auto w = W.slice(1, col, std::min(col + group, in));
                auto xmin = torch::clamp_max(std::get<0>(w.min(1)), 0.0),
                     xmax = torch::clamp_min(std::get<0>(w.max(1)), 0.0);
                const auto both = (xmin == 0) & (xmax == 0);
                xmin = torch::where(both, torch::full_like(xmin, -1.0), xmin);
                xmax = torch::where(both, torch::full_like(xmax, 1.0), xmax);
                scale = (xmax - xmin) / maxq;
                zero = torch::round(-xmin / scale);
            }
            const auto w = W1.select(1, i);
            const double d = Hinv1[i][i].item<double>();
            const auto q = torch::clamp(torch::round(w / scale) + zero, 0, maxq);
            codes.select(1, col).copy_(q);
            const auto qv = scale * (q - zero);
            Q.select(1, col).copy_(qv);
            const auto err = (w - qv) / d;
            W1.slice(1, i).sub_(err.unsqueeze(1).mm(Hinv1.slice(0, i, i + 1).slice(1, i)));
            Err1.select(1, i).copy_(err);
        }
        if (i2 < in) W.slice(1, i2).sub_(Err1.mm(Hinv.slice(0, i1, i2).slice(1, i2)));
    }
    if (Q_out) *Q_out = Q;
    return codes;
}

struct RefCloq {
    double fro_rel, optimal_hlambda;
};
// Algorithm 1 on a given Q, with the paper's root and a full SVD, then the metric from the unregularized H.
RefCloq reference_cloq(const torch::Tensor& W, const torch::Tensor& Q, const torch::Tensor& H, int64_t r) {
    const int64_t in = H.size(0);
    const double lam = 0.01 * H.trace().item<double>() / in;
    auto [sig, U] = torch::linalg::eigh(H + lam * torch::eye(in, torch::kFloat64), "L");
    const auto R = sig.sqrt().unsqueeze(1) * U.t();  // Σ^½Uᵀ
    const auto Rinv = U * sig.rsqrt().unsqueeze(0);  // UΣ^-½
    const auto dW = W - Q;
    auto [Us, S, Vh] = torch::linalg::svd(R.mm(dW.t()), false, c10::nullopt);
    const auto A_p = Rinv.mm(Us.narrow(1, 0, r) * S.narrow(0, 0, r).unsqueeze(0));  // [in, r]
    const auto B_p = Vh.narrow(0, 0, r).t();                                        // [out, r]
    const auto D = Q + B_p.mm(A_p.t()) - W;
    const double fro = std::sqrt((D.mm(H) * D).sum().item<double>());
    const double wn = std::sqrt((W.mm(H) * W).sum().item<double>());
    return {fro / wn, std::sqrt(S.narrow(0, r, S.size(0) - r).square().sum().item<double>())};
}
}  // namespace

class TestLayerAcceptance : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void matchesPaperReferenceAt2048() {
        const int64_t n = 2048, r = 64;
        QTemporaryDir tmp;
        const auto path = [&](const char* f) { return tmp.filePath(f).toStdString(); };
        auto gen = at::detail::createCPUGenerator(2048);
        const auto W32 = (torch::randn({n, n}, gen, torch::kFloat64) * 0.02).to(torch::kFloat32);
        const auto X = cloq::test::anisotropic_acts(2 * n, n, 100.0, 99);
        const auto H = X.t().mm(X);
        write_npy(path("W.npy"), W32);
        write_npy(path("H.npy"), H);

        std::ostringstream out, err;
        QElapsedTimer timer;
        timer.start();
        const int code =
            cloq::cli::run({"layer", "--weight", path("W.npy"), "--gram", path("H.npy"), "--out", path("out"), "--bits",
                            "2", "--group", "64", "--rank", "64", "--save-codes", "--json"},
                           out, err);
        QVERIFY2(code == 0, err.str().c_str());
        qInfo("cloq layer 2048x2048 (GPTQ + CLoQ + svd + metrics): %.1f s", timer.elapsed() / 1000.0);
        const auto j = nlohmann::json::parse(out.str());
        const auto W = W32.to(torch::kFloat64);

        // Quantized codes against gptq.py in float64.
        torch::Tensor Q_ref;
        const auto codes_ref = reference_gptq_codes(W, H, 2, 64, 128, &Q_ref);
        const auto codes = read_npy(path("out/codes.npy")).to(torch::kFloat64);
        const double same = (codes == codes_ref).to(torch::kFloat64).mean().item<double>();
        qInfo("identical GPTQ codes: %.4f %%", 100 * same);
        QVERIFY2(same >= 0.99, qPrintable(QString("only %1 of the codes match").arg(same)));

        // CLoQ on the CLI's Q: the relative Frobenius discrepancy and Algorithm 1's optimal value.
        const auto Q = read_npy(path("out/Q.npy")).to(torch::kFloat64);
        const auto ref = reference_cloq(W, Q, H, r);
        qInfo("fro_rel: cli %.12g  reference %.12g", j["fro_rel"].get<double>(), ref.fro_rel);
        QVERIFY2(rel_diff(j["fro_rel"].get<double>(), ref.fro_rel) < 1e-6,
                 qPrintable(QString("%1").arg(rel_diff(j["fro_rel"].get<double>(), ref.fro_rel))));
        QVERIFY(rel_diff(j["cloq_optimal_hlambda"].get<double>(), ref.optimal_hlambda) < 1e-6);
        // The written float32 factors give the same number to float32 accuracy.
        const auto A = read_npy(path("out/lora_A.npy")).to(torch::kFloat64),
                   B = read_npy(path("out/lora_B.npy")).to(torch::kFloat64);
        const auto D = Q + B.mm(A) - W;
        const double fro_files = std::sqrt((D.mm(H) * D).sum().item<double>() / (W.mm(H) * W).sum().item<double>());
        QVERIFY(rel_diff(fro_files, ref.fro_rel) < 1e-5);
        // The whole reference pipeline (its own GPTQ Q) lands at the same discrepancy up to the ~1 % code flips.
        const auto ref_own = reference_cloq(W, Q_ref, H, r);
        QVERIFY(rel_diff(ref_own.fro_rel, ref.fro_rel) < 1e-2);
        QVERIFY(j["fro"].get<double>() < j["svd"]["fro"].get<double>() &&
                j["svd"]["fro"].get<double>() < j["zero"]["fro"].get<double>());
    }
};

QTEST_APPLESS_MAIN(TestLayerAcceptance)
#include "test_layer_acceptance.moc"
