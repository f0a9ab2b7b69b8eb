#include "lowrank/dense_kernels.h"

#include <torch/torch.h>

#include <vector>

#include "cloq/base/error.h"
#include "cloq_lapack_config.h"  // CLOQ_HAVE_LAPACK when the build found LAPACK

#ifdef CLOQ_HAVE_LAPACK
// Fortran LAPACK/BLAS (OpenBLAS on Debian). gfortran passes the lengths of CHARACTER arguments as trailing
// size_t values; we pass them explicitly (1 each) instead of relying on the old "omit them" convention.
extern "C" {
void dsytrd_(const char* uplo, const int* n, double* a, const int* lda, double* d, double* e, double* tau, double* work,
             const int* lwork, int* info, size_t);
void dsterf_(const int* n, double* d, double* e, int* info);
void dstemr_(const char* jobz, const char* range, const int* n, double* d, double* e, const double* vl,
             const double* vu, const int* il, const int* iu, int* m, double* w, double* z, const int* ldz,
             const int* nzc, int* isuppz, int* tryrac, double* work, const int* lwork, int* iwork, const int* liwork,
             int* info, size_t, size_t);
void dormtr_(const char* side, const char* uplo, const char* trans, const int* m, const int* n, const double* a,
             const int* lda, const double* tau, double* c, const int* ldc, double* work, const int* lwork, int* info,
             size_t, size_t, size_t);
void dtrmm_(const char* side, const char* uplo, const char* transa, const char* diag, const int* m, const int* n,
            const double* alpha, const double* a, const int* lda, double* b, const int* ldb, size_t, size_t, size_t,
            size_t);
void dsyrk_(const char* uplo, const char* trans, const int* n, const int* k, const double* alpha, const double* a,
            const int* lda, const double* beta, double* c, const int* ldc, size_t, size_t);
}
#endif

namespace cloq::detail {

namespace {
bool use_lapack(const torch::Tensor& t) {
#ifdef CLOQ_HAVE_LAPACK
    // 32-bit LAPACK integers: every dimension and leading dimension must fit.
    for (int64_t d = 0; d < t.dim(); ++d)
        if (t.size(d) > (1LL << 30)) return false;
    return t.device().is_cpu() && t.scalar_type() == torch::kFloat64;
#else
    (void)t;
    return false;
#endif
}

int as_int(int64_t v) { return static_cast<int>(v); }

// dsyrk fills one triangle; mirror it (row-major upper = column-major lower).
torch::Tensor symmetrize_from_upper(const torch::Tensor& G) { return torch::triu(G) + torch::triu(G, 1).t(); }
}  // namespace

torch::Tensor times_lower(const torch::Tensor& X, const torch::Tensor& L) {
    TORCH_CHECK(X.dim() == 2 && L.dim() == 2 && X.size(1) == L.size(0) && L.size(0) == L.size(1));
    if (!use_lapack(X) || X.numel() == 0) return X.mm(torch::tril(L));
#ifdef CLOQ_HAVE_LAPACK
    // Row-major X [m, n] is column-major Xᵀ [n, m]; row-major L is column-major Lᵀ (upper). Lᵀ·Xᵀ = (X·L)ᵀ.
    auto B = X.contiguous().clone();
    const auto Lc = L.contiguous();
    const int n = as_int(X.size(1)), m = as_int(X.size(0));
    const double one = 1.0;
    dtrmm_("L", "U", "N", "N", &n, &m, &one, Lc.data_ptr<double>(), &n, B.data_ptr<double>(), &n, 1, 1, 1, 1);
    return B;
#endif
}

torch::Tensor gram_rows(const torch::Tensor& T) {
    if (!use_lapack(T) || T.numel() == 0) {
        auto G = T.mm(T.t());
        return 0.5 * (G + G.t());
    }
#ifdef CLOQ_HAVE_LAPACK
    // Row-major T [m, n] is column-major Tᵀ [n, m] =: A; T·Tᵀ = Aᵀ·A: dsyrk with trans = 'T'.
    const auto Tc = T.contiguous();
    const int m = as_int(T.size(0)), n = as_int(T.size(1));
    auto G = torch::zeros({m, m}, T.options());
    const double one = 1.0, zero = 0.0;
    dsyrk_("L", "T", &m, &n, &one, Tc.data_ptr<double>(), &n, &zero, G.data_ptr<double>(), &m, 1, 1);
    return symmetrize_from_upper(G);
#endif
}

torch::Tensor gram_cols(const torch::Tensor& T) {
    if (!use_lapack(T) || T.numel() == 0) {
        auto G = T.t().mm(T);
        return 0.5 * (G + G.t());
    }
#ifdef CLOQ_HAVE_LAPACK
    // Tᵀ·T = A·Aᵀ for the column-major A = Tᵀ [n, m]: dsyrk with trans = 'N'.
    const auto Tc = T.contiguous();
    const int m = as_int(T.size(0)), n = as_int(T.size(1));
    auto G = torch::zeros({n, n}, T.options());
    const double one = 1.0, zero = 0.0;
    dsyrk_("L", "N", &n, &m, &one, Tc.data_ptr<double>(), &n, &zero, G.data_ptr<double>(), &n, 1, 1);
    return symmetrize_from_upper(G);
#endif
}

SymEigen::SymEigen(torch::Tensor G) : n_(G.size(0)) {
    TORCH_CHECK(G.dim() == 2 && G.size(0) == G.size(1) && G.scalar_type() == torch::kFloat64);
    if (n_ == 0) {
        values_ = torch::empty({0}, G.options());
        vectors_ = torch::empty({0, 0}, G.options());
        return;
    }
    lapack_ = use_lapack(G);
    if (!lapack_) {
        auto [w, V] = torch::linalg::eigh(G, "L");
        values_ = w.flip(0).contiguous();
        vectors_ = V.flip(1).contiguous();
        return;
    }
#ifdef CLOQ_HAVE_LAPACK
    // Symmetric: the row-major buffer is its own column-major transpose.
    a_ = G.contiguous().clone();
    const int n = as_int(n_);
    auto opts = G.options();
    d_ = torch::empty({n_}, opts);
    e_ = torch::zeros({n_}, opts);  // n-1 used; dstemr wants n
    tau_ = torch::zeros({std::max<int64_t>(n_ - 1, 1)}, opts);
    int info = 0, lwork = -1;
    double wq = 0;
    dsytrd_("L", &n, a_.data_ptr<double>(), &n, d_.data_ptr<double>(), e_.data_ptr<double>(), tau_.data_ptr<double>(),
            &wq, &lwork, &info, 1);
    lwork = std::max(1, static_cast<int>(wq));
    std::vector<double> work(static_cast<size_t>(lwork));
    dsytrd_("L", &n, a_.data_ptr<double>(), &n, d_.data_ptr<double>(), e_.data_ptr<double>(), tau_.data_ptr<double>(),
            work.data(), &lwork, &info, 1);
    if (info != 0) throw Error("symmetric eigensolver failed (dsytrd info " + std::to_string(info) + ")");
    auto w = d_.clone();
    auto ee = e_.clone();
    dsterf_(&n, w.data_ptr<double>(), ee.data_ptr<double>(), &info);
    if (info != 0) {  // QL/QR did not converge: take the robust full path
        lapack_ = false;
        auto [w2, V] = torch::linalg::eigh(G, "L");
        values_ = w2.flip(0).contiguous();
        vectors_ = V.flip(1).contiguous();
        return;
    }
    values_ = w.flip(0).contiguous();  // dsterf returns ascending order
    vectors_ = torch::empty({n_, 0}, opts);
#endif
}

SymEigen::SymEigen(SymEigen&&) noexcept = default;
SymEigen& SymEigen::operator=(SymEigen&&) noexcept = default;
SymEigen::~SymEigen() = default;

torch::Tensor SymEigen::vectors(int64_t k) {
    k = std::min(k, n_);
    if (k <= vectors_.size(1)) return vectors_.narrow(1, 0, k);
#ifdef CLOQ_HAVE_LAPACK
    if (lapack_) {
        // New eigenvectors: indices (in ascending order, 1-based) il..iu for the descending positions have..k-1.
        const int n = as_int(n_);
        const int have = as_int(vectors_.size(1));
        const int il = n - as_int(k) + 1, iu = n - have;
        const int want = iu - il + 1;
        auto d = d_.clone(), e = e_.clone();
        auto w = torch::empty({n_}, d.options());
        auto Z = torch::empty({want, n_}, d.options());  // column-major [n, want]
        std::vector<int> isuppz(2 * static_cast<size_t>(want));
        int m = 0, info = 0, tryrac = 1;
        const int lwork = std::max(1, 18 * n), liwork = std::max(1, 10 * n);
        std::vector<double> work(static_cast<size_t>(lwork));
        std::vector<int> iwork(static_cast<size_t>(liwork));
        const double vl = 0, vu = 0;
        dstemr_("V", "I", &n, d.data_ptr<double>(), e.data_ptr<double>(), &vl, &vu, &il, &iu, &m, w.data_ptr<double>(),
                Z.data_ptr<double>(), &n, &want, isuppz.data(), &tryrac, work.data(), &lwork, iwork.data(), &liwork,
                &info, 1, 1);
        if (info != 0 || m != want) {
            // MRRR could not guarantee its accuracy (rare): eigenvectors of the tridiagonal matrix by a dense eigh.
            auto T =
                torch::diag(d_) + torch::diag(e_.narrow(0, 0, n_ - 1), 1) + torch::diag(e_.narrow(0, 0, n_ - 1), -1);
            auto [wt, Vt] = torch::linalg::eigh(T, "L");
            Z = Vt.narrow(1, il - 1, want).t().contiguous();  // rows = vectors, ascending
            info = 0;
        }
        {
            int lw = -1;
            double wq = 0;
            dormtr_("L", "L", "N", &n, &want, a_.data_ptr<double>(), &n, tau_.data_ptr<double>(), Z.data_ptr<double>(),
                    &n, &wq, &lw, &info, 1, 1, 1);
            lw = std::max(1, static_cast<int>(wq));
            std::vector<double> work2(static_cast<size_t>(lw));
            dormtr_("L", "L", "N", &n, &want, a_.data_ptr<double>(), &n, tau_.data_ptr<double>(), Z.data_ptr<double>(),
                    &n, work2.data(), &lw, &info, 1, 1, 1);
            if (info == 0) {
                // Z rows are eigenvectors in ascending order: flip to descending and append as columns.
                auto fresh = Z.flip(0).t();
                vectors_ = torch::cat({vectors_, fresh}, 1).contiguous();
                return vectors_.narrow(1, 0, k);
            }
        }
        throw Error("symmetric eigensolver failed (dormtr info " + std::to_string(info) + ")");
    }
#endif
    return vectors_.narrow(1, 0, k);
}

}  // namespace cloq::detail
