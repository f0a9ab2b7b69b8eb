// `cloq plan`: per-layer bit widths and ranks for a size budget, planned from the calibrated discrepancies.
//
// For every linear layer and every candidate bit width, the layer is quantized once; the cached solver's CLoQ
// spectrum then gives the calibrated discrepancy at every rank at once (rank_sweep: no re-solve per rank). The
// objective of an option is the layer's relative calibrated ‖X(Q + BA − W)ᵀ‖_F², summed over layers, and its cost
// is what the export stores: packed codes, fp16 scales and zeros, g_idx, and the adapter in its export dtype. The
// allocation is an exact multiple-choice knapsack (cloq/plan/allocator.h). Modules the GPTQ loaders cannot pack
// (32 ∤ in or out) stay float, as the exporter keeps them, and are a fixed cost with no adapter. Sizes are those of
// a GPTQ base (formats gptq and gptq_v2); other tensors count as that export stores them.
#pragma once
#include <torch/types.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cloq/analysis/calibration.h"
#include "cloq/base/progress.h"
#include "cloq/model/model_files.h"
#include "cloq/model/model_layout.h"
#include "cloq/plan/allocator.h"
#include "cloq/settings/profile.h"
#include "cloq/settings/settings.h"

namespace cloq {

// Stored bytes of one GPTQ-packed [out, in] layer (qweight + qzeros + scales + g_idx), group −1 = per channel.
int64_t gptq_linear_bytes(int64_t out, int64_t in, int bits, int group);
// Stored bytes of a rank-r adapter (lora_A [r, in] + lora_B [out, r]) with elements of `elem_bytes`.
int64_t adapter_bytes(int64_t out, int64_t in, int rank, int elem_bytes);

enum class PlanMode {
    RanksOnly,     // one bit width for the whole base (every GPTQ loader reads it); ranks per layer (PEFT rank_pattern)
    BitsAndRanks,  // bits per layer too, written through `dynamic` (GPTQModel, vLLM; not transformers + optimum)
};
std::string to_string(PlanMode m);
PlanMode parse_plan_mode(const std::string& s);  // "ranks" | "bits-ranks"

struct PlanOptions {
    LayerSettings base;                 // quantizer, group, split, init, ...: everything but bits and rank
    std::vector<int> bits = {2, 3, 4};  // candidate bit widths (RanksOnly: exactly one)
    std::vector<int> ranks = {0, 8, 16, 32, 64, 128};
    PlanMode mode = PlanMode::BitsAndRanks;
    int adapter_elem_bytes = 4;                      // float32 adapter (cloq quantize's default; 2 for float16)
    std::optional<double> budget_mib;                // the whole export: base + adapter (MiB = 2^20 bytes)
    std::optional<double> budget_bits;               // or average bits per weight of the plannable linear layers
    bool budget_bits_count_adapter = true;           // --budget-bits counts the adapter's bytes too
    std::optional<std::pair<int, int>> budget_like;  // or the size of the uniform setting (bits, rank)
    int64_t dp_units = 1 << 17;                      // budget resolution of the exact allocator
    std::string layer_regex;                         // restrict to these layers (the rest is a fixed cost at base)
};

struct LayerCurve {
    LinearLayer layer;
    bool plannable = true;                   // false: kept float by the exporter (shape), fixed cost
    std::string why;                         // why not plannable
    std::vector<PlanOption> options;         // one per (bits, rank) with rank ≤ min(out, in), deduplicated
    std::map<int, double> quantize_seconds;  // per bit width: quantizer + spectrum
};

struct PlanPoint {  // one point of the size–objective front, or a uniform setting
    std::string label;
    int64_t bytes = 0;
    double objective = 0;
};

struct Plan {
    std::string model;
    PlanOptions options;
    std::vector<LayerCurve> layers;
    int64_t fixed_bytes = 0;      // everything not planned: embeddings, norms, lm_head, float-kept modules, as stored
    int64_t budget_bytes = 0;     // for the planned layers (the whole budget minus fixed_bytes)
    int64_t weights_planned = 0;  // weights of the planned layers (for bits per weight)
    Allocation exact, greedy;
    std::vector<PlanPoint> front;           // exact optimum at a ladder of budgets (the GUI's front)
    std::vector<PlanPoint> uniform;         // every uniform (bits, rank) of the grid, same cost model
    ResolvedProfile profile;                // the plan as settings: quantize / eval / analyze / the GUI read it
    std::map<std::string, double> seconds;  // "curves", "solve", "front", "total"
    std::vector<std::string> loaders;       // who can load the result

    double bits_per_weight(const Allocation& a, bool with_adapter) const;
};

// Throws cloq::Error for options plan_model would refuse (bit widths, ranks, one budget kind, mode), at once.
void validate_plan_options(const PlanOptions& opt);

// Computes every layer's options (the expensive part: one quantizer run per layer and bit width), then plans.
// Throws cloq::Error for an unreachable budget or bad options, before the per-layer work when it can tell.
Plan plan_model(const ModelFiles& files, const Calibration& cal, const PlanOptions& opt, const Progress& progress = {});

// The expensive half alone: every layer's options, the fixed cost, the front and the uniform settings, no
// allocation yet (the GUI computes this once, then solves at every budget the slider picks).
Plan plan_curves(const ModelFiles& files, const Calibration& cal, const PlanOptions& opt,
                 const Progress& progress = {});

// The allocation step alone on computed curves: fills budget, exact, greedy, profile and loaders. dp_units > 0
// overrides the options' budget resolution (the GUI's slider solves coarser while it moves; the gap to the
// Lagrangian bound says how much that can cost). Throws cloq::Error when the budget is below the smallest plan.
void solve_plan(Plan& plan, int64_t total_budget_bytes, int64_t dp_units = 0);
// The exact optimum at a ladder of budgets (front) and every uniform setting of the grid (uniform).
void trace_front(Plan& plan);
// The smallest and largest total size (bytes, fixed cost included) a plan over these curves can have.
std::pair<int64_t, int64_t> plan_size_range(const Plan& plan);
// The budget in bytes (the whole export) that the options ask for, given the curves.
int64_t requested_budget_bytes(const Plan& plan);

nlohmann::ordered_json to_json(const Plan& p);

}  // namespace cloq
