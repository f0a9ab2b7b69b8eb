// Internal float64 dense kernels of the low-rank solver (not a public header). On the CPU they call LAPACK/BLAS
// directly when the build found them (CLOQ_HAVE_LAPACK): LibTorch 1.13 has no triangular multiply, no rank-k update
// and no partial symmetric eigensolver, and those halve the cost of a CLoQ solve. Elsewhere (CUDA, no LAPACK) they
// fall back to the equivalent LibTorch calls. All inputs and outputs are float64.
#pragma once
#include <torch/types.h>

#include <cstdint>

namespace cloq::detail {

// X·L for X [m, n] and L [n, n] lower triangular (the upper part of L is ignored).
torch::Tensor times_lower(const torch::Tensor& X, const torch::Tensor& L);
// T·Tᵀ [m, m] and Tᵀ·T [n, n] for T [m, n], both exactly symmetric.
torch::Tensor gram_rows(const torch::Tensor& T);
torch::Tensor gram_cols(const torch::Tensor& T);

// Eigendecomposition of a symmetric matrix with ALL eigenvalues and only the LEADING eigenvectors, grown on demand:
// LAPACK's tridiagonal reduction (dsytrd) is kept, so more vectors cost only MRRR (dstemr) + back-transformation
// (dormtr), O(n²·k). Without LAPACK, or off the CPU, one full torch::linalg::eigh.
class SymEigen {
public:
    explicit SymEigen(torch::Tensor G);  // G [n, n] symmetric float64 (copied)
    SymEigen(SymEigen&&) noexcept;
    SymEigen& operator=(SymEigen&&) noexcept;
    ~SymEigen();

    int64_t size() const { return n_; }
    const torch::Tensor& values() const { return values_; }  // [n] descending
    // Leading k eigenvectors as columns [n, k], in the order of values(). Not thread safe (it grows a cache).
    torch::Tensor vectors(int64_t k);

private:
    int64_t n_ = 0;
    torch::Tensor values_;
    torch::Tensor vectors_;  // [n, computed] columns, descending
    // LAPACK state: the reflectors left by dsytrd (column-major, lower), tau, the tridiagonal d/e.
    bool lapack_ = false;
    torch::Tensor a_, tau_, d_, e_;
};

}  // namespace cloq::detail
