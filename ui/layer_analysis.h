// Copies what the layer view shows out of a LayerSolver into a LayerReport (runs on the layer worker's thread).
// Phase 1 needs only the solver's cheap products (zero / CLoQ / SVD, Frobenius norms, sweeps, spectra, weights);
// phase 2 adds LoftQ (re-quantizes T times) and the spectral norms (Lanczos), which can take seconds on big layers.
#pragma once
#include <string>

#include "layer_report.h"

namespace cloq {
class LayerSolver;
}

namespace cloq::ui {

// Rank sweep range: the whole rank range for small layers, at least 2× the chosen rank for large ones.
int sweep_rank_max(int64_t out, int64_t in, int rank);

// Requires update() and ensure(Svd) done on `solver`. `same_q`: a report of the same layer whose quantized weight
// is unchanged (same quantizer settings): its histograms and heat map are reused instead of recomputed, which keeps
// rank/split changes on large layers fast.
LayerReport build_report_phase1(const LayerSolver& solver, const std::string& name,
                                const LayerReport* same_q = nullptr);
// Requires ensure(Loftq); fills LoftQ's metrics and sweep and every spectral norm.
void complete_report(LayerReport& report, const LayerSolver& solver);

// Pieces, public for the tests.
Histogram histogram(const std::vector<float>& values, double lo, double hi, int bins);
GroupErrorGrid group_error_grid(const torch::Tensor& W, const torch::Tensor& Q, int64_t group, int max_rows = 256);

}  // namespace cloq::ui
