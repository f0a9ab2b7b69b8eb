// The budget allocation behind `cloq plan`: a multiple-choice knapsack. Each layer takes exactly one option (a bit
// width and a rank, with its stored size and its predicted objective); the total size must fit the budget and the
// summed objective is minimized.
//
// The exact solver is a dynamic program over the budget in whole units: every option's size is rounded UP to units,
// so any allocation the DP finds fits the budget in bytes, and it is optimal for the rounded sizes (with integer
// sizes and unit = 1 byte it is optimal outright; the tests check it against brute force). Its distance from the
// true optimum is bounded by the Lagrangian dual, which is reported as `lower_bound` with the gap.
#pragma once
#include <cstdint>
#include <vector>

namespace cloq {

struct PlanOption {
    int bits = 0;
    int rank = 0;
    int64_t bytes = 0;     // stored size: packed codes, scales, zeros, g_idx, adapter
    double objective = 0;  // predicted contribution (relative calibrated discrepancy squared)
};

struct Allocation {
    bool feasible = false;    // false: even the smallest option of every layer exceeds the budget
    std::vector<int> choice;  // option index per layer
    int64_t bytes = 0;
    double objective = 0;
    double lower_bound = 0;  // Lagrangian dual bound: no allocation within the budget has a smaller objective
};

// Exact DP over ceil(bytes / unit) with unit = max(1, ceil(budget / max_units)). Time O(layers · options · units).
// When unit > 1 the greedy allocation is also tried and the better one returned (both fit in bytes).
Allocation allocate_exact(const std::vector<std::vector<PlanOption>>& layers, int64_t budget_bytes,
                          int64_t max_units = 1 << 17);

// The usual heuristic, for comparison: every layer starts at its cheapest option, then the upgrade with the best
// objective decrease per byte is taken while it fits (on each layer's lower convex hull).
Allocation allocate_greedy(const std::vector<std::vector<PlanOption>>& layers, int64_t budget_bytes);

// max over λ ≥ 0 of Σ_l min_o (objective + λ·bytes) − λ·budget: a lower bound on the optimum.
double lagrangian_lower_bound(const std::vector<std::vector<PlanOption>>& layers, int64_t budget_bytes);

}  // namespace cloq
