// What the layer view shows for one linear module under one setting: plain numbers copied out of the engine's
// LayerSolver on the worker thread, so the charts never touch tensors and a report can cross threads by value.
#pragma once
#include <QMetaType>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cloq/settings/settings.h"

namespace cloq::ui {

// ‖X Dᵀ‖ for one initialization, absolute and relative to ‖X Wᵀ‖ (docs/design.md, Notation).
struct MethodMetrics {
    double fro = 0, spec = 0, fro_rel = 0, spec_rel = 0;
    bool valid = false;
};

// Equal-width bins over [lo, hi].
struct Histogram {
    double lo = 0, hi = 0;
    std::vector<double> counts;
    double bin_width() const { return counts.empty() ? 0.0 : (hi - lo) / static_cast<double>(counts.size()); }
};

// RMS quantization error |W − Q| per (block of output rows, quantization group), row-major rows × cols.
// Large layers are pooled over `rows_per_cell` output rows so the grid stays a few hundred cells tall.
struct GroupErrorGrid {
    int rows = 0, cols = 0;
    int rows_per_cell = 1;
    int64_t group_size = 0;  // input columns per group (the last may be ragged)
    std::vector<float> values;
    float at(int r, int c) const { return values[static_cast<size_t>(r) * cols + c]; }
};

struct LayerReport {
    std::string name;  // e.g. model.layers.0.self_attn.q_proj (or "synthetic")
    int64_t out = 0, in = 0;
    LayerSettings settings;
    MethodMetrics zero, svd, loftq, cloq;
    MethodMetrics qera_exact, qera_approx;                   // phase 2: QERA's roots of the unregularized H (no ridge)
    int r_max = 0;                                           // rank sweep covers r = 0..r_max
    std::vector<double> sweep_cloq, sweep_loftq, sweep_svd;  // relative Frobenius discrepancy per rank
    std::vector<double> sv_cloq;   // singular values of R·ΔWᵀ (what CLoQ truncates), descending
    std::vector<double> sv_delta;  // singular values of ΔW (what LoftQ / SVD truncate), descending
    double cloq_optimal = 0;       // sqrt(Σ_{i>r} S_i²) w.r.t. H_λ: the closed form CLoQ attains
    Histogram hist_w, hist_q, hist_err;
    GroupErrorGrid group_error;
    double quantize_ms = 0, solve_ms = 0, total_ms = 0;
    uint64_t generation = 0;  // request counter: a report older than the newest request is stale
    // Phase 1 reports (instant) carry LoftQ and the spectral norms of the previous report until phase 2 (LoftQ
    // re-quantizes T times; spectral norms need Lanczos) replaces them: `loftq_pending` says which one this is.
    bool loftq_pending = false;

    const MethodMetrics& metrics(InitMethod m) const {
        switch (m) {
        case InitMethod::Zero:
            return zero;
        case InitMethod::Svd:
            return svd;
        case InitMethod::Loftq:
            return loftq;
        case InitMethod::QeraExact:
            return qera_exact;
        case InitMethod::QeraApprox:
            return qera_approx;
        default:
            return cloq;
        }
    }
};

// The overview's perplexity panel: the float model and the quantized model with each initialization.
struct PerplexitySummary {
    double fp = NAN, zero = NAN, loftq = NAN, cloq = NAN;
    std::string description;  // e.g. "tinystories-valid.txt, 32 windows × 256 tokens"
    double seconds = 0;
};

}  // namespace cloq::ui

Q_DECLARE_METATYPE(cloq::ui::LayerReport)
