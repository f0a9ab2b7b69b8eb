#include "cloq/plan/allocator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <queue>

#include "cloq/base/error.h"

namespace cloq {
namespace {

void check_instance(const std::vector<std::vector<PlanOption>>& layers) {
    for (size_t l = 0; l < layers.size(); ++l) {
        if (layers[l].empty()) throw Error("plan: layer " + std::to_string(l) + " has no option");
        for (const PlanOption& o : layers[l])
            if (o.bytes < 0 || !std::isfinite(o.objective))
                throw Error("plan: layer " + std::to_string(l) +
                            " has an option with a negative size or a "
                            "non-finite objective");
    }
}

int cheapest(const std::vector<PlanOption>& opts) {
    int best = 0;
    for (int i = 1; i < static_cast<int>(opts.size()); ++i)
        if (opts[i].bytes < opts[best].bytes ||
            (opts[i].bytes == opts[best].bytes && opts[i].objective < opts[best].objective))
            best = i;
    return best;
}

Allocation summarize(const std::vector<std::vector<PlanOption>>& layers, std::vector<int> choice, bool feasible,
                     int64_t budget) {
    Allocation a;
    a.feasible = feasible;
    a.choice = std::move(choice);
    for (size_t l = 0; l < layers.size(); ++l) {
        a.bytes += layers[l][a.choice[l]].bytes;
        a.objective += layers[l][a.choice[l]].objective;
    }
    a.lower_bound = lagrangian_lower_bound(layers, budget);
    return a;
}

Allocation cheapest_allocation(const std::vector<std::vector<PlanOption>>& layers, int64_t budget) {
    std::vector<int> c;
    for (const auto& opts : layers) c.push_back(cheapest(opts));
    Allocation a = summarize(layers, c, false, budget);
    a.feasible = a.bytes <= budget;
    return a;
}

}  // namespace

Allocation allocate_exact(const std::vector<std::vector<PlanOption>>& layers, int64_t budget, int64_t max_units) {
    check_instance(layers);
    if (budget < 0) throw Error("plan: the budget is negative");
    if (max_units < 1) throw Error("plan: max_units must be positive");
    Allocation floor = cheapest_allocation(layers, budget);
    if (!floor.feasible) return floor;
    const int64_t unit = std::max<int64_t>(1, (budget + max_units - 1) / max_units);
    const int64_t U = budget / unit;
    const double inf = std::numeric_limits<double>::infinity();
    // dp[u]: least objective of the layers so far with total rounded size ≤ u; pick[l][u]: the option taken.
    std::vector<double> dp(static_cast<size_t>(U + 1), 0.0), next(static_cast<size_t>(U + 1));
    std::vector<std::vector<uint8_t>> pick(layers.size(), std::vector<uint8_t>(static_cast<size_t>(U + 1), 0));
    for (size_t l = 0; l < layers.size(); ++l) {
        if (layers[l].size() > 255) throw Error("plan: more than 255 options for one layer");
        std::fill(next.begin(), next.end(), inf);
        for (size_t o = 0; o < layers[l].size(); ++o) {
            const PlanOption& opt = layers[l][o];
            const int64_t c = (opt.bytes + unit - 1) / unit;  // rounded up: the DP never overspends in bytes
            for (int64_t u = c; u <= U; ++u) {
                const double v = dp[static_cast<size_t>(u - c)] + opt.objective;
                if (v < next[static_cast<size_t>(u)]) {
                    next[static_cast<size_t>(u)] = v;
                    pick[l][static_cast<size_t>(u)] = static_cast<uint8_t>(o);
                }
            }
        }
        dp.swap(next);
    }
    if (!std::isfinite(dp[static_cast<size_t>(U)])) {
        // Rounding up made the cheapest allocation (which fits in bytes) overflow the units: keep it.
        return floor;
    }
    std::vector<int> choice(layers.size());
    int64_t u = U;
    for (size_t l = layers.size(); l-- > 0;) {
        const int o = pick[l][static_cast<size_t>(u)];
        choice[l] = o;
        u -= (layers[l][static_cast<size_t>(o)].bytes + unit - 1) / unit;
    }
    Allocation a = summarize(layers, choice, true, budget);
    // The DP is the optimum of the rounded sizes. Rounding can leave a few units of slack that an allocation
    // exact in bytes would use; the greedy allocation (exact in bytes) and the cheapest one are feasible too, so
    // the best of the three is returned: never worse than either, and the gap to the dual bound says how far from
    // the true optimum it can be.
    if (unit > 1) {
        const Allocation g = allocate_greedy(layers, budget);
        if (g.objective < a.objective) a = g;
    }
    if (floor.objective < a.objective) return floor;
    return a;
}

Allocation allocate_greedy(const std::vector<std::vector<PlanOption>>& layers, int64_t budget) {
    check_instance(layers);
    Allocation floor = cheapest_allocation(layers, budget);
    if (!floor.feasible) return floor;
    // Per layer: the lower convex hull of (bytes, objective), from the cheapest option on, objective decreasing.
    std::vector<std::vector<int>> hull(layers.size());
    for (size_t l = 0; l < layers.size(); ++l) {
        std::vector<int> idx(layers[l].size());
        for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int>(i);
        const auto& opts = layers[l];
        std::sort(idx.begin(), idx.end(), [&](int a, int b) {
            return opts[a].bytes != opts[b].bytes ? opts[a].bytes < opts[b].bytes
                                                  : opts[a].objective < opts[b].objective;
        });
        std::vector<int>& h = hull[l];
        for (int i : idx) {
            if (!h.empty() && opts[i].objective >= opts[h.back()].objective) continue;  // dominated
            while (h.size() >= 2) {
                const PlanOption &a = opts[h[h.size() - 2]], &b = opts[h.back()], &c = opts[i];
                // b lies on or above the segment a–c: not on the lower hull.
                const double cross = double(b.bytes - a.bytes) * (c.objective - a.objective) -
                                     (b.objective - a.objective) * double(c.bytes - a.bytes);
                if (cross <= 0)
                    h.pop_back();
                else
                    break;
            }
            h.push_back(i);
        }
    }
    std::vector<size_t> at(layers.size(), 0);
    std::vector<int> choice(layers.size());
    int64_t used = 0;
    for (size_t l = 0; l < layers.size(); ++l) {
        choice[l] = hull[l][0];
        used += layers[l][choice[l]].bytes;
    }
    using Step = std::pair<double, size_t>;  // (objective decrease per byte, layer)
    std::priority_queue<Step> q;
    auto push = [&](size_t l) {
        if (at[l] + 1 >= hull[l].size()) return;
        const PlanOption &a = layers[l][hull[l][at[l]]], &b = layers[l][hull[l][at[l] + 1]];
        q.push({(a.objective - b.objective) / double(std::max<int64_t>(1, b.bytes - a.bytes)), l});
    };
    for (size_t l = 0; l < layers.size(); ++l) push(l);
    while (!q.empty()) {
        const size_t l = q.top().second;
        q.pop();
        const PlanOption &a = layers[l][hull[l][at[l]]], &b = layers[l][hull[l][at[l] + 1]];
        if (used - a.bytes + b.bytes > budget) continue;  // this layer's next step does not fit: it stays
        used += b.bytes - a.bytes;
        ++at[l];
        choice[l] = hull[l][at[l]];
        push(l);
    }
    return summarize(layers, choice, true, budget);
}

double lagrangian_lower_bound(const std::vector<std::vector<PlanOption>>& layers, int64_t budget) {
    check_instance(layers);
    // g(λ) = Σ_l min_o (obj + λ·bytes) − λ·budget is concave and piecewise linear: maximized by ternary search.
    auto g = [&](double lambda) {
        double s = -lambda * double(budget);
        for (const auto& opts : layers) {
            double m = std::numeric_limits<double>::infinity();
            for (const PlanOption& o : opts) m = std::min(m, o.objective + lambda * double(o.bytes));
            s += m;
        }
        return s;
    };
    // Above the largest objective decrease per byte any option offers, λ only lowers g.
    double hi = 0;
    for (const auto& opts : layers)
        for (const PlanOption& a : opts)
            for (const PlanOption& b : opts)
                if (b.bytes > a.bytes && a.objective > b.objective)
                    hi = std::max(hi, (a.objective - b.objective) / double(b.bytes - a.bytes));
    double lo = 0;
    hi = std::max(hi * 2, 1e-300);
    for (int it = 0; it < 200; ++it) {
        const double m1 = lo + (hi - lo) / 3, m2 = hi - (hi - lo) / 3;
        if (g(m1) < g(m2))
            lo = m1;
        else
            hi = m2;
    }
    return std::max(g(0.0), g((lo + hi) / 2));
}

}  // namespace cloq
