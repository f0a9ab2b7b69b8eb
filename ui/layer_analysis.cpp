#include "layer_analysis.h"

#include <torch/torch.h>

#include <cmath>

#include "cloq/base/timing.h"
#include "cloq/lowrank/layer_solver.h"

namespace cloq::ui {
namespace {
MethodMetrics to_metrics(const Discrepancy& d, bool with_spectral) {
    MethodMetrics m;
    m.fro = d.fro;
    m.fro_rel = d.fro_rel;
    m.spec = with_spectral ? d.spec : 0.0;
    m.spec_rel = with_spectral ? d.spec_rel : 0.0;
    m.valid = true;
    return m;
}

std::vector<double> to_vector(const torch::Tensor& t) {
    auto c = t.detach().to(torch::kCPU, torch::kFloat64).contiguous().flatten();
    return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

std::vector<float> to_floats(const torch::Tensor& t) {
    auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous().flatten();
    return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

// Divides an absolute sweep by ‖XWᵀ‖_F to make it relative.
std::vector<double> relative(std::vector<double> v, double norm) {
    if (norm > 0)
        for (double& x : v) x /= norm;
    return v;
}

constexpr int kBins = 121;
}  // namespace

void fill_weight_views(LayerReport& r, const LayerSolver& solver);

int sweep_rank_max(int64_t out, int64_t in, int rank) {
    const int full = static_cast<int>(std::min(out, in));
    return std::min(full, std::max(256, 2 * rank));
}

Histogram histogram(const std::vector<float>& values, double lo, double hi, int bins) {
    Histogram h;
    h.lo = lo;
    h.hi = hi > lo ? hi : lo + 1e-12;
    h.counts.assign(static_cast<size_t>(bins), 0.0);
    const double scale = bins / (h.hi - h.lo);
    for (float v : values) {
        if (!std::isfinite(v)) continue;
        const int b = std::clamp(static_cast<int>((v - h.lo) * scale), 0, bins - 1);
        h.counts[static_cast<size_t>(b)] += 1.0;
    }
    return h;
}

GroupErrorGrid group_error_grid(const torch::Tensor& W, const torch::Tensor& Q, int64_t group, int max_rows) {
    const int64_t out = W.size(0), in = W.size(1);
    const int64_t g = group < 0 ? in : group;
    const int64_t ngroups = (in + g - 1) / g;
    auto err2 = (W.to(torch::kFloat64) - Q.to(torch::kFloat64)).pow(2);
    // Mean squared error per (row, group); the last group may be ragged, so pad with NaN and use nanmean-like sums.
    auto padded = torch::zeros({out, ngroups * g}, err2.options());
    padded.narrow(1, 0, in).copy_(err2);
    auto counts = torch::zeros({ngroups * g}, err2.options());
    counts.narrow(0, 0, in).fill_(1.0);
    auto sums = padded.view({out, ngroups, g}).sum(2);       // [out, G]
    auto n = counts.view({ngroups, g}).sum(1).unsqueeze(0);  // [1, G]
    auto mse = sums / n;
    // Pool output rows so tall layers stay a few hundred cells high.
    const int rows_per_cell = static_cast<int>((out + max_rows - 1) / max_rows);
    const int64_t cells = (out + rows_per_cell - 1) / rows_per_cell;
    auto pooled = torch::zeros({cells * rows_per_cell, ngroups}, mse.options());
    pooled.narrow(0, 0, out).copy_(mse);
    auto rowcount = torch::zeros({cells * rows_per_cell, 1}, mse.options());
    rowcount.narrow(0, 0, out).fill_(1.0);
    auto cell = pooled.view({cells, rows_per_cell, ngroups}).sum(1) / rowcount.view({cells, rows_per_cell, 1}).sum(1);
    GroupErrorGrid grid;
    grid.rows = static_cast<int>(cells);
    grid.cols = static_cast<int>(ngroups);
    grid.rows_per_cell = rows_per_cell;
    grid.group_size = g;
    grid.values = to_floats(cell.sqrt());
    return grid;
}

LayerReport build_report_phase1(const LayerSolver& solver, const std::string& name, const LayerReport* same_q) {
    const Stopwatch t0;
    LayerReport r;
    r.name = name;
    r.out = solver.out_features();
    r.in = solver.in_features();
    r.settings = solver.settings();
    r.zero = to_metrics(solver.metrics(InitMethod::Zero, false), false);
    r.cloq = to_metrics(solver.metrics(InitMethod::Cloq, false), false);
    r.svd = to_metrics(solver.metrics(InitMethod::Svd, false), false);
    r.r_max = sweep_rank_max(r.out, r.in, r.settings.rank);
    const double norm = solver.output_fro();
    r.sweep_cloq = relative(solver.rank_sweep(InitMethod::Cloq, r.r_max), norm);
    r.sweep_svd = relative(solver.rank_sweep(InitMethod::Svd, r.r_max), norm);
    r.sv_cloq = to_vector(solver.cloq_singular_values());
    r.sv_delta = to_vector(solver.delta_singular_values());
    r.cloq_optimal = solver.cloq_optimal_value();

    if (same_q) {
        r.hist_w = same_q->hist_w;
        r.hist_q = same_q->hist_q;
        r.hist_err = same_q->hist_err;
        r.group_error = same_q->group_error;
    } else {
        fill_weight_views(r, solver);
    }
    const auto timings = solver.timings();
    if (auto it = timings.find("quantize"); it != timings.end()) r.quantize_ms = it->second * 1000.0;
    r.solve_ms = t0.ms();
    r.loftq_pending = true;
    return r;
}

void fill_weight_views(LayerReport& r, const LayerSolver& solver) {
    const torch::Tensor& W = solver.weight();
    const torch::Tensor Q = solver.quantized().Q;
    const std::vector<float> w = to_floats(W), q = to_floats(Q);
    const double lo = std::min(W.min().item<double>(), Q.min().item<double>());
    const double hi = std::max(W.max().item<double>(), Q.max().item<double>());
    r.hist_w = histogram(w, lo, hi, kBins);
    r.hist_q = histogram(q, lo, hi, kBins);
    std::vector<float> e(w.size());
    for (size_t i = 0; i < w.size(); ++i) e[i] = w[i] - q[i];
    const auto [emin, emax] = std::minmax_element(e.begin(), e.end());
    const double ea = std::max(std::abs(*emin), std::abs(*emax));  // symmetric range: 0 in the middle
    r.hist_err = histogram(e, -ea, ea, kBins);
    r.group_error = group_error_grid(W, Q, r.settings.quant.group);
}

void complete_report(LayerReport& r, const LayerSolver& solver) {
    r.zero = to_metrics(solver.metrics(InitMethod::Zero, true), true);
    r.cloq = to_metrics(solver.metrics(InitMethod::Cloq, true), true);
    r.svd = to_metrics(solver.metrics(InitMethod::Svd, true), true);
    r.loftq = to_metrics(solver.metrics(InitMethod::Loftq, true), true);
    r.qera_exact = to_metrics(solver.metrics(InitMethod::QeraExact, true), true);
    r.qera_approx = to_metrics(solver.metrics(InitMethod::QeraApprox, true), true);
    r.sweep_loftq = relative(solver.rank_sweep(InitMethod::Loftq, r.r_max), solver.output_fro());
    r.loftq_pending = false;
}

}  // namespace cloq::ui
