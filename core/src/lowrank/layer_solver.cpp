#include "cloq/lowrank/layer_solver.h"

#include <torch/torch.h>

#include <cmath>
#include <mutex>
#include <optional>

#include "cloq/base/error.h"
#include "cloq/base/timing.h"
#include "lowrank/dense_kernels.h"
#include "lowrank/residual_spectrum.h"
#include "quant/quantize.h"

namespace cloq {

namespace {
torch::Tensor f64(const torch::Tensor& t) { return t.to(torch::kFloat64).contiguous(); }
double sq_norm(const torch::Tensor& t) { return t.square().sum().item<double>(); }

bool same_loftq(const LayerSettings& a, const LayerSettings& b) {
    return same_quantization(a, b) && a.rank == b.rank && a.loftq_iters == b.loftq_iters &&
           a.loftq_quant == b.loftq_quant;
}

// A base weight (Q) with what every metric on it needs: ΔW = W − Q (float64), ‖ΔW‖², tr(ΔW·H·ΔWᵀ).
struct Base {
    torch::Tensor dW;
    double dW_sq = 0, trG0 = 0;
};

// A solved low-rank problem on a base, plus the cached per-rank terms of the Frobenius rank sweep.
struct Solved {
    std::unique_ptr<detail::ResidualSpectrum> spec;
    const Base* base = nullptr;
    torch::Tensor sweep_terms;  // t_i, fro²(r) = trG0 − Σ_{i<r} t_i
};
}  // namespace

struct LayerSolver::State {
    std::string name;
    torch::Tensor W, W64;
    std::shared_ptr<const HessianFactor> hf;
    LayerSettings s;
    bool have = false;

    std::optional<QuantizedWeight> qw;
    Base base;
    std::optional<Solved> cloq, svd, eora, qera_exact, qera_approx, loftq_svd;
    std::optional<LoftqResult> loftq;
    LayerSettings loftq_settings;
    std::optional<Base> loftq_base;

    std::optional<double> out_fro, out_spec;
    std::map<std::string, double> timings;
    mutable std::mutex mu;  // guards the lazily grown caches used by const methods

    int64_t out() const { return W.size(0); }
    int64_t in() const { return W.size(1); }
    const torch::Tensor& H() const { return hf->H(); }

    // tr(X·H·Xᵀ) for X [out, in] float64: via the Cholesky factor of H_λ (a triangular multiply, half a GEMM)
    // minus λ‖X‖², or directly.
    double weighted_sq(const torch::Tensor& X) const {
        if (hf->is_cholesky())
            return std::max(0.0, sq_norm(detail::times_lower(X, hf->lower())) - hf->lambda() * sq_norm(X));
        return std::max(0.0, (X.mm(H()) * X).sum().item<double>());
    }

    Base make_base(const torch::Tensor& Q) const {
        Base b;
        b.dW = W64 - f64(Q);
        b.dW_sq = sq_norm(b.dW);
        return b;
    }

    Solved solve(const Base& b, detail::Root root) {
        Solved so;
        so.spec = std::make_unique<detail::ResidualSpectrum>(b.dW, std::move(root));
        so.base = &b;
        return so;
    }

    void reserve(Solved& so, int64_t r) {
        so.spec->reserve(std::min(so.spec->max_rank(), std::max<int64_t>(2 * r, 16)));
    }

    // Where an init's solved problem lives (LoftQ: the SVD on its own base, for the rank sweep); zero has none.
    std::optional<Solved>* slot(InitMethod m) {
        switch (m) {
        case InitMethod::Cloq:
            return &cloq;
        case InitMethod::Svd:
            return &svd;
        case InitMethod::Eora:
            return &eora;
        case InitMethod::QeraExact:
            return &qera_exact;
        case InitMethod::QeraApprox:
            return &qera_approx;
        case InitMethod::Loftq:
            return &loftq_svd;
        case InitMethod::Zero:
            return nullptr;
        }
        return nullptr;
    }
    const std::optional<Solved>* slot(InitMethod m) const { return const_cast<State*>(this)->slot(m); }

    Solved* solved(InitMethod m) {
        auto* s = slot(m);
        return s && *s ? &**s : nullptr;
    }

    // The root of the weighting each on-demand init solves with, after reporting the step (EoRA's and QERA's
    // eigendecomposition is the slow part).
    detail::Root root_for(InitMethod m, const Progress& progress) const {
        switch (m) {
        case InitMethod::Svd:
            progress(0.0, "SVD of W − Q");
            return detail::Root::identity();
        case InitMethod::Eora:
            progress(0.0, "EoRA: eigh of H");
            return detail::Root::eora(*hf);
        case InitMethod::QeraExact:
            progress(0.0, "QERA-exact: symmetric root of H");
            return detail::Root::qera_exact(*hf);
        case InitMethod::QeraApprox:
            progress(0.0, "QERA-approx: diagonal root of H");
            return detail::Root::qera_approx(*hf);
        default:
            throw Error(name + ": internal: no on-demand root for the " + to_string(m) + " init");
        }
    }

    void require(InitMethod m) const {
        // LoftQ is ready with its own result; its SVD slot is filled only for a rank sweep.
        const bool ok =
            have && (m == InitMethod::Zero || (m == InitMethod::Loftq ? loftq.has_value() : slot(m)->has_value()));
        if (!ok)
            throw Error(name + ": the " + to_string(m) + " init is not computed for the current settings" +
                        (have ? " (call ensure first)" : " (call update first)"));
    }

    // Sweep terms t_i for i < r of a solved problem in its default split (B = V orthonormal, A = rows):
    // fro² = trG0 − 2·tr(B·A·H·ΔWᵀ) + tr(BᵀB·A·H·Aᵀ) = trG0 − Σ_i (2·a_iᵀH(ΔWᵀb_i) − a_iᵀH·a_i).
    void sweep_terms(Solved& so, int64_t r) {
        const int64_t have_t = so.sweep_terms.defined() ? so.sweep_terms.size(0) : 0;
        if (r <= have_t) return;
        so.spec->reserve(r);
        const auto A = so.spec->rows(r).narrow(0, have_t, r - have_t);
        const auto B = so.spec->V(r).narrow(1, have_t, r - have_t);
        const auto AH = A.mm(H());
        const auto P = B.t().mm(so.base->dW);
        const auto t = 2.0 * (AH * P).sum(1) - (B * B).sum(0) * (AH * A).sum(1);
        so.sweep_terms = have_t ? torch::cat({so.sweep_terms, t}) : t;
    }

    const Base& base_of(InitMethod m) const { return m == InitMethod::Loftq ? *loftq_base : base; }

    void prepare_loftq_base() {
        if (loftq_base) return;
        loftq_base = make_base(loftq->Q);
        loftq_base->trG0 = weighted_sq(loftq_base->dW);
    }
};

LayerSolver::LayerSolver(const torch::Tensor& W, std::shared_ptr<const HessianFactor> hessian, std::string name)
    : st_(std::make_unique<State>()) {
    st_->name = std::move(name);
    if (!hessian) throw Error(st_->name + ": no Gram matrix H given");
    if (!W.defined() || W.dim() != 2)
        throw Error(st_->name + ": the weight must be a 2-D [out, in] matrix, got " +
                    (W.defined() ? c10::str(W.sizes()) : std::string("nothing")));
    if (!W.is_floating_point()) throw Error(st_->name + ": the weight must hold floating-point values");
    if (W.size(0) == 0 || W.size(1) == 0) throw Error(st_->name + ": the weight is empty");
    if (W.size(1) != hessian->in_features())
        throw Error(st_->name + ": the weight has " + std::to_string(W.size(1)) + " input features but H (" +
                    hessian->name() + ") is " + std::to_string(hessian->in_features()) + " x " +
                    std::to_string(hessian->in_features()));
    const auto dev = hessian->H().device();
    st_->W = W.to(dev, torch::kFloat32).contiguous();
    if (!torch::isfinite(st_->W).all().item<bool>()) throw Error(st_->name + ": the weight contains NaN or Inf values");
    st_->W64 = f64(W.to(dev));
    st_->hf = std::move(hessian);
}

LayerSolver::LayerSolver(const torch::Tensor& W, const torch::Tensor& H, std::string name)
    : LayerSolver(W, std::make_shared<const HessianFactor>(H.to(W.device()), name + " (H)"), name) {}

LayerSolver::~LayerSolver() = default;
LayerSolver::LayerSolver(LayerSolver&&) noexcept = default;
LayerSolver& LayerSolver::operator=(LayerSolver&&) noexcept = default;

void LayerSolver::update(const LayerSettings& s, const Progress& progress) {
    validate(s);
    auto& st = *st_;
    const int64_t p = std::min(st.out(), st.in());
    if (s.rank > p)
        throw Error(st.name + ": rank " + std::to_string(s.rank) + " exceeds min(out, in) = " + std::to_string(p));
    std::unique_lock<std::mutex> lock(st.mu);
    st.timings.clear();
    const bool requant = !st.have || !same_quantization(st.s, s);
    if (requant) {
        // Everything downstream of Q is stale. Drop it before the work so that a failure or a cancellation leaves
        // the solver "not ready" instead of mixing old and new results.
        st.have = false;
        st.qw.reset();
        st.cloq.reset();
        st.svd.reset();
        st.eora.reset();
        st.qera_exact.reset();
        st.qera_approx.reset();
        st.loftq.reset();
        st.loftq_svd.reset();
        st.loftq_base.reset();
        progress(0.0, "quantizing");
        Stopwatch t0;
        st.qw = quantize_weight(st.W, st.H(), s, progress.slice(0.0, 0.5));
        st.timings["quantize"] = t0.seconds();
        st.base = st.make_base(st.qw->Q);
        progress(0.5, "CLoQ: Gram matrix and eigenvalues");
        t0.restart();
        auto so = st.solve(st.base, detail::Root::of(*st.hf));
        // With the Cholesky root the spectrum's trace is tr(ΔW·H_λ·ΔWᵀ): tr(ΔW·H·ΔWᵀ) comes for free.
        st.base.trG0 = so.spec->lower_root() ? std::max(0.0, so.spec->total_sq() - st.hf->lambda() * st.base.dW_sq)
                                             : st.weighted_sq(st.base.dW);
        st.timings["gram"] = so.spec->gram_seconds();
        st.timings["eigensolve"] = so.spec->eig_seconds();
        st.cloq = std::move(so);
    } else if (st.loftq && !same_loftq(st.loftq_settings, s)) {
        st.loftq.reset();
        st.loftq_svd.reset();
        st.loftq_base.reset();
    }
    progress(0.9, "CLoQ: singular vectors");
    const Stopwatch t0;
    st.s = s;
    st.have = true;
    for (auto* so : {&st.cloq, &st.svd, &st.eora, &st.qera_exact, &st.qera_approx, &st.loftq_svd})
        if (*so) st.reserve(**so, s.rank);
    st.timings["vectors"] = t0.seconds();
    lock.unlock();
    if (s.init != InitMethod::Cloq && s.init != InitMethod::Zero) ensure(s.init, progress.slice(0.9, 1.0));
    progress(1.0, "ready");
}

void LayerSolver::ensure(InitMethod m, const Progress& progress) {
    auto& st = *st_;
    std::lock_guard<std::mutex> lock(st.mu);
    if (!st.have) throw Error(st.name + ": call update() before ensure()");
    const Stopwatch t0;
    switch (m) {
    case InitMethod::Zero:
    case InitMethod::Cloq:
        return;
    case InitMethod::Svd:
    case InitMethod::Eora:
    case InitMethod::QeraExact:
    case InitMethod::QeraApprox: {
        auto& so = *st.slot(m);
        if (so) return;
        so = st.solve(st.base, st.root_for(m, progress));
        st.reserve(*so, st.s.rank);
        st.timings[to_string(m)] = t0.seconds();  // "svd", "eora", "qera-exact", "qera-approx"
        break;
    }
    case InitMethod::Loftq:
        if (st.loftq) return;
        st.loftq = loftq_init(st.W, st.H(), st.s, progress);
        st.loftq_settings = st.s;
        st.timings["loftq"] = t0.seconds();
        break;
    }
    progress(1.0, to_string(m) + " ready");
}

bool LayerSolver::ready(InitMethod m) const {
    std::lock_guard<std::mutex> lock(st_->mu);
    try {
        st_->require(m);
        return true;
    } catch (const Error&) {
        return false;
    }
}

const LayerSettings& LayerSolver::settings() const { return st_->s; }
const std::string& LayerSolver::name() const { return st_->name; }
int64_t LayerSolver::out_features() const { return st_->out(); }
int64_t LayerSolver::in_features() const { return st_->in(); }
const torch::Tensor& LayerSolver::weight() const { return st_->W; }
const HessianFactor& LayerSolver::hessian() const { return *st_->hf; }
std::shared_ptr<const HessianFactor> LayerSolver::hessian_ptr() const { return st_->hf; }

const QuantizedWeight& LayerSolver::quantized() const {
    if (!st_->qw) throw Error(st_->name + ": not quantized yet (call update first)");
    return *st_->qw;
}

torch::Tensor LayerSolver::base(InitMethod m) const {
    std::lock_guard<std::mutex> lock(st_->mu);
    st_->require(m);
    return m == InitMethod::Loftq ? st_->loftq->Q : st_->qw->Q;
}

const LoftqResult& LayerSolver::loftq() const {
    std::lock_guard<std::mutex> lock(st_->mu);
    st_->require(InitMethod::Loftq);
    return *st_->loftq;
}

LowRank LayerSolver::init(InitMethod m, torch::ScalarType dtype) const {
    auto& st = *st_;
    std::lock_guard<std::mutex> lock(st.mu);
    st.require(m);
    const int64_t r = st.s.rank;
    switch (m) {
    case InitMethod::Zero: {
        auto lr = zero_init(st.out(), st.in(), r, dtype);
        return {lr.A.to(st.W.device()), lr.B.to(st.W.device())};
    }
    case InitMethod::Loftq:
        return st.loftq->adapter.to(dtype);
    case InitMethod::Eora:
        st.eora->spec->reserve(r);
        return st.eora->spec->adapter(r, Split::Sqrt).to(dtype);
    default: {
        // CLoQ, SVD and QERA place the singular values as the settings' split says.
        auto& so = *st.solved(m);
        so.spec->reserve(r);
        return so.spec->adapter(r, st.s.split).to(dtype);
    }
    }
}

namespace {
// The structured spectral norm of D = B·A − ΔW on H: λ_max(D·H·Dᵀ) by Lanczos on the out space.
double spectral(const torch::Tensor& dW, const torch::Tensor& A, const torch::Tensor& B, const torch::Tensor& H) {
    const bool has_lr = A.defined() && A.size(0) > 0;
    const auto op = [&](const torch::Tensor& X) {
        auto Y = dW.t().mm(X);  // −Dᵀ·X without the adapter
        if (has_lr) Y = Y - A.t().mm(B.t().mm(X));
        auto Z = H.mm(Y);
        auto out = dW.mm(Z);
        if (has_lr) out = out - B.mm(A.mm(Z));
        return out;  // (−D)·H·(−Dᵀ)·X
    };
    return std::sqrt(std::max(0.0, lambda_max_psd(op, dW.size(0), dW.options())));
}
}  // namespace

Discrepancy LayerSolver::metrics(InitMethod m, bool spectral_too) const {
    auto& st = *st_;
    torch::Tensor A, B, dW;
    double fro_sq = 0, out_fro = 0;
    {
        std::lock_guard<std::mutex> lock(st.mu);
        st.require(m);
        if (m == InitMethod::Loftq) st.prepare_loftq_base();
        if (!st.out_fro) st.out_fro = std::sqrt(st.weighted_sq(st.W64));
        out_fro = *st.out_fro;
    }
    const LowRank lr = m == InitMethod::Zero ? LowRank{} : init(m, torch::kFloat64);
    {
        std::lock_guard<std::mutex> lock(st.mu);
        const Base& b = st.base_of(m);
        dW = b.dW;
        fro_sq = b.trG0;
        if (lr.rank() > 0) {
            A = lr.A;
            B = lr.B;
            const auto AH = A.mm(st.H());
            const auto BtdW = B.t().mm(dW);
            fro_sq += -2.0 * (AH * BtdW).sum().item<double>() + (B.t().mm(B) * AH.mm(A.t())).sum().item<double>();
        }
    }
    Discrepancy d;
    d.fro = std::sqrt(std::max(0.0, fro_sq));
    d.fro_rel = out_fro > 0 ? d.fro / out_fro : 0.0;
    if (spectral_too) {
        d.spec = spectral(dW, A, B, st.H());
        const double os = output_spec();
        d.spec_rel = os > 0 ? d.spec / os : 0.0;
    } else {
        d.spec = d.spec_rel = -1;
    }
    return d;
}

std::vector<double> LayerSolver::rank_sweep(InitMethod m, int r_max_in, bool spectral_too) const {
    auto& st = *st_;
    std::unique_lock<std::mutex> lock(st.mu);
    st.require(m);
    const int64_t r_max = std::max<int64_t>(0, std::min<int64_t>(r_max_in, std::min(st.out(), st.in())));
    if (m == InitMethod::Loftq && !st.loftq_svd) {
        st.prepare_loftq_base();
        st.loftq_svd = st.solve(*st.loftq_base, detail::Root::identity());
    }
    std::vector<double> out;
    out.reserve(static_cast<size_t>(r_max) + 1);
    if (m == InitMethod::Zero) {
        const Base& b = st.base;
        const double v = spectral_too ? spectral(b.dW, {}, {}, st.H()) : std::sqrt(b.trG0);
        out.assign(static_cast<size_t>(r_max) + 1, v);
        return out;
    }
    Solved& so = *st.solved(m);
    const int64_t rr = std::min(r_max, so.spec->max_rank());
    if (!spectral_too) {
        st.sweep_terms(so, rr);
        const auto cum =
            torch::cat({torch::zeros({1}, so.sweep_terms.options()), so.sweep_terms.narrow(0, 0, rr).cumsum(0)});
        const double trG0 = so.base->trG0;
        for (int64_t r = 0; r <= r_max; ++r) {
            const double c = cum[std::min(r, rr)].item<double>();
            out.push_back(std::sqrt(std::max(0.0, trG0 - c)));
        }
        return out;
    }
    so.spec->reserve(rr);
    const auto A_all = so.spec->rows(rr), B_all = so.spec->V(rr), dW = so.base->dW;
    lock.unlock();
    for (int64_t r = 0; r <= r_max; ++r) {
        const int64_t k = std::min(r, rr);
        out.push_back(spectral(dW, A_all.narrow(0, 0, k), B_all.narrow(1, 0, k), st.H()));
    }
    return out;
}

torch::Tensor LayerSolver::cloq_singular_values() const {
    std::lock_guard<std::mutex> lock(st_->mu);
    st_->require(InitMethod::Cloq);
    return st_->cloq->spec->S();
}

torch::Tensor LayerSolver::delta_singular_values() const {
    std::lock_guard<std::mutex> lock(st_->mu);
    st_->require(InitMethod::Svd);
    return st_->svd->spec->S();
}

double LayerSolver::cloq_optimal_value() const {
    std::lock_guard<std::mutex> lock(st_->mu);
    st_->require(InitMethod::Cloq);
    return std::sqrt(st_->cloq->spec->tail_sq(st_->s.rank));
}

double LayerSolver::hlambda_discrepancy(InitMethod m) const {
    // tr(D·H_λ·Dᵀ) = tr(D·H·Dᵀ) + λ‖D‖_F², with ‖D‖² = ‖ΔW‖² − 2·tr(Bᵀ·ΔW·Aᵀ) + tr(BᵀB·AAᵀ).
    const Discrepancy d = metrics(m, false);
    const LowRank lr = m == InitMethod::Zero ? LowRank{} : init(m, torch::kFloat64);
    std::lock_guard<std::mutex> lock(st_->mu);
    const Base& b = st_->base_of(m);
    double d_sq = b.dW_sq;
    if (lr.rank() > 0)
        d_sq += -2.0 * (lr.B.t().mm(b.dW) * lr.A).sum().item<double>() +
                (lr.B.t().mm(lr.B) * lr.A.mm(lr.A.t())).sum().item<double>();
    return std::sqrt(std::max(0.0, d.fro * d.fro + st_->hf->lambda() * std::max(0.0, d_sq)));
}

double LayerSolver::output_fro() const {
    std::lock_guard<std::mutex> lock(st_->mu);
    if (!st_->out_fro) st_->out_fro = std::sqrt(st_->weighted_sq(st_->W64));
    return *st_->out_fro;
}

double LayerSolver::output_spec() const {
    {
        std::lock_guard<std::mutex> lock(st_->mu);
        if (st_->out_spec) return *st_->out_spec;
    }
    const double v = spectral(st_->W64, {}, {}, st_->H());
    std::lock_guard<std::mutex> lock(st_->mu);
    st_->out_spec = v;
    return v;
}

std::map<std::string, double> LayerSolver::timings() const {
    std::lock_guard<std::mutex> lock(st_->mu);
    return st_->timings;
}

}  // namespace cloq
