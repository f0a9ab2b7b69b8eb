// The per-layer engine behind `cloq layer`, the GUI's layer view and the model pipeline: quantizes one linear layer,
// solves every low-rank init on the same Q and measures them, caching what each setting depends on:
//
//   HessianFactor (λ, Cholesky/eigh of H_λ)   per input group, shared between layers (q/k/v; gate/up)
//   quantized weight Q, ΔW = W − Q            rerun when bits/group/quantizer/MagR/GPTQ options change
//   CLoQ spectrum of R·ΔWᵀ (and of ΔW)        rerun with Q (one float64 symmetric eigensolve each)
//   adapter factors                           rank/split changes only slice and rescale cached rows (µs–ms)
//
// How the spectrum is computed (exact, float64): the SVD R·ΔWᵀ = U S Vᵀ is obtained from the eigendecomposition of
// the smaller Gram matrix — ΔW·H_λ·ΔWᵀ = V S² Vᵀ [out, out] when out ≤ in, else R·ΔWᵀΔW·Rᵀ = U S² Uᵀ [in, in] — with
// all eigenvalues and only the leading eigenvectors (LAPACK tridiagonalization + MRRR). Then lora_B = V_r and
// lora_A = S_r U_rᵀ R⁻ᵀ = V_rᵀ·ΔW (R invertible), so no full SVD is ever formed. Squaring loses nothing that matters
// here: the leading vectors are accurate to eps·S₁²/gap and the tail objective Σ_{i>r} S_i² to n·eps·S₁².
//
// Thread safety: const methods may run concurrently; update/ensure must not run concurrently with anything else.
// Tensors come back on the HessianFactor's device.
#pragma once
#include <torch/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cloq/base/progress.h"
#include "cloq/lowrank/hessian_factor.h"
#include "cloq/lowrank/lowrank.h"
#include "cloq/lowrank/metrics.h"
#include "cloq/quant/quant_int.h"
#include "cloq/settings/settings.h"

namespace cloq {

class LayerSolver {
public:
    // W [out, in] (any float dtype; kept as float32 like a checkpoint's weight, ΔW in float64). `name` prefixes
    // error messages (e.g. "layers.3.self_attn.q_proj" or "W.npy"). Throws cloq::Error on a shape mismatch with H
    // or a non-finite W.
    LayerSolver(const torch::Tensor& W, std::shared_ptr<const HessianFactor> hessian, std::string name = "W");
    LayerSolver(const torch::Tensor& W, const torch::Tensor& H, std::string name = "W");
    ~LayerSolver();
    LayerSolver(LayerSolver&&) noexcept;
    LayerSolver& operator=(LayerSolver&&) noexcept;

    // Brings the cache to settings `s`, recomputing only what changed (see the table above). Afterwards `zero`,
    // `cloq` and `s.init` are ready. Validates `s` (rank ≤ min(out, in)); throws cloq::Error / cloq::Cancelled.
    void update(const LayerSettings& s, const Progress& progress = {});
    // Also prepares init `m` on the current settings (svd, loftq or eora for a comparison); cached until the
    // settings it depends on change.
    void ensure(InitMethod m, const Progress& progress = {});
    bool ready(InitMethod m) const;  // init/metrics for m can be called without throwing

    const LayerSettings& settings() const;
    const std::string& name() const;
    int64_t out_features() const;
    int64_t in_features() const;
    const torch::Tensor& weight() const;  // W, float32
    const HessianFactor& hessian() const;
    std::shared_ptr<const HessianFactor> hessian_ptr() const;
    const QuantizedWeight& quantized() const;  // the INT quantization every init except LoftQ sits on
    torch::Tensor base(InitMethod m) const;    // the Q [out, in] float32 that init m sits on
    const LoftqResult& loftq() const;          // after ensure(Loftq)

    // The adapter of init m at the current rank and split (eora: always √S on both sides).
    LowRank init(InitMethod m, torch::ScalarType dtype = torch::kFloat32) const;
    // fro/spec (unregularized H) of base(m) + B·A − W, absolute and relative to ‖X Wᵀ‖. The spectral norm costs a
    // Lanczos run (a few big mat-vecs); pass spectral = false for the cheap Frobenius part only (spec = -1 then).
    Discrepancy metrics(InitMethod m, bool spectral = true) const;
    // ‖X Dᵀ‖ (Frobenius, or spectral) for r = 0..r_max on the current Q, one value per rank: CLoQ/EoRA from their
    // spectrum, svd and LoftQ by truncating the SVD of W − base(m) (LoftQ's Q is not recomputed per rank).
    // r_max is capped at min(out, in). Frobenius: milliseconds; spectral: one Lanczos per rank.
    std::vector<double> rank_sweep(InitMethod m, int r_max, bool spectral = false) const;

    torch::Tensor cloq_singular_values() const;   // S of R·ΔWᵀ, descending, float64 [min(out, in)]: the rank slider
    torch::Tensor delta_singular_values() const;  // S of ΔW, descending (after ensure(Svd))
    // sqrt(Σ_{i>r} S_i²): CLoQ's optimal value w.r.t. H_λ at the current rank (Algorithm 1's free correctness check),
    // and sqrt(tr(D H_λ Dᵀ)) of any prepared init (≥ the optimal value: the theorem the tests check).
    double cloq_optimal_value() const;
    double hlambda_discrepancy(InitMethod m) const;
    double output_fro() const;   // ‖X Wᵀ‖_F
    double output_spec() const;  // ‖X Wᵀ‖_2 (computed on first call)

    // Seconds spent per stage by the last update/ensure calls ("quantize", "gram", "eigensolve", "factors",
    // "loftq", "svd", "eora", …).
    std::map<std::string, double> timings() const;

private:
    struct State;
    std::unique_ptr<State> st_;
};

}  // namespace cloq
