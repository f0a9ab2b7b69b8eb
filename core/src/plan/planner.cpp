#include "cloq/plan/planner.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "cloq/analysis/analysis.h"
#include "cloq/base/error.h"
#include "cloq/base/timing.h"
#include "cloq/export/gptq_pack.h"
#include "cloq/io/safetensors.h"
#include "cloq/lowrank/factor_cache.h"
#include "cloq/lowrank/layer_solver.h"

namespace cloq {

int64_t gptq_linear_bytes(int64_t out, int64_t in, int bits, int group) {
    // The loaders' buffers (cloq/export/gptq_pack.h): qweight int32 [in·b/32, out], qzeros int32
    // [G, out·b/32], scales fp16 [G, out], g_idx int32 [in], with G = ceil(in / group) (1 per channel).
    const int64_t groups = group < 0 ? 1 : (in + group - 1) / group;
    return in * bits / 32 * out * 4 + groups * (out * bits / 32) * 4 + groups * out * 2 + in * 4;
}

int64_t adapter_bytes(int64_t out, int64_t in, int rank, int elem_bytes) {
    return static_cast<int64_t>(rank) * (in + out) * elem_bytes;
}

std::string to_string(PlanMode m) { return m == PlanMode::RanksOnly ? "ranks" : "bits-ranks"; }

PlanMode parse_plan_mode(const std::string& s) {
    if (s == "ranks") return PlanMode::RanksOnly;
    if (s == "bits-ranks") return PlanMode::BitsAndRanks;
    throw Error("plan mode '" + s + "' is not ranks or bits-ranks");
}

double Plan::bits_per_weight(const Allocation& a, bool with_adapter) const {
    if (weights_planned == 0 || a.choice.empty()) return 0;
    double bytes = 0;
    size_t k = 0;
    for (const LayerCurve& l : layers) {
        if (!l.plannable) continue;
        const PlanOption& o = l.options[static_cast<size_t>(a.choice[k++])];
        bytes += with_adapter
                     ? double(o.bytes)
                     : double(o.bytes - adapter_bytes(l.layer.out, l.layer.in, o.rank, options.adapter_elem_bytes));
    }
    return 8.0 * bytes / double(weights_planned);
}

void validate_plan_options(const PlanOptions& o) {
    if (o.bits.empty()) throw Error("plan: --bits lists no bit width");
    for (int b : o.bits)
        if (b != 2 && b != 3 && b != 4 && b != 8)
            throw Error("plan: bit width " + std::to_string(b) + " cannot be packed (GPTQ loaders take 2, 3, 4, 8)");
    if (std::set<int>(o.bits.begin(), o.bits.end()).size() != o.bits.size())
        throw Error("plan: --bits repeats a value");
    if (o.mode == PlanMode::RanksOnly && o.bits.size() != 1)
        throw Error("plan: --mode ranks keeps one bit width for the whole base; give exactly one in --bits");
    if (o.ranks.empty()) throw Error("plan: --ranks lists no rank");
    for (int r : o.ranks)
        if (r < 0) throw Error("plan: rank " + std::to_string(r) + " is negative");
    const int kinds = int(o.budget_mib.has_value()) + int(o.budget_bits.has_value()) + int(o.budget_like.has_value());
    if (kinds != 1) throw Error("plan: give exactly one of --budget-mib, --budget-bits, --budget-like");
    if (o.budget_mib && !(*o.budget_mib > 0)) throw Error("plan: --budget-mib must be positive");
    if (o.budget_bits && !(*o.budget_bits > 0)) throw Error("plan: --budget-bits must be positive");
    validate(o.base);
}

namespace {

// The knapsack instance of the plannable layers, in order.
std::vector<std::vector<PlanOption>> instance(const Plan& p) {
    std::vector<std::vector<PlanOption>> v;
    for (const LayerCurve& l : p.layers)
        if (l.plannable) v.push_back(l.options);
    return v;
}

int64_t cost_of_uniform(const Plan& p, int bits, int rank, double* objective) {
    int64_t bytes = p.fixed_bytes;
    double obj = 0;
    for (const LayerCurve& l : p.layers) {
        if (!l.plannable) continue;
        const int r = static_cast<int>(std::min<int64_t>(rank, std::min(l.layer.out, l.layer.in)));
        for (const PlanOption& o : l.options)
            if (o.bits == bits && o.rank == r) {
                bytes += o.bytes;
                obj += o.objective;
            }
    }
    if (objective) *objective = obj;
    return bytes;
}

// The allocation as settings: the most common (bits, rank) become the defaults, every other module an exact-name
// override. The layers outside the knapsack get what fixed_bytes counted for them: a module GPTQ cannot pack is
// skipped (float, no adapter), so `eval` and `analyze`, which could quantize it in memory, measure the model the
// export stores; a packable module outside --layers keeps the base settings.
ResolvedProfile profile_of(const Plan& p, const Allocation& a) {
    ResolvedProfile r;
    r.defaults = p.options.base;
    std::map<std::pair<int, int>, int> freq;
    std::vector<std::pair<std::string, std::pair<int, int>>> chosen;
    size_t k = 0;
    for (const LayerCurve& l : p.layers) {
        if (!l.plannable) continue;
        const PlanOption& o = l.options[static_cast<size_t>(a.choice[k++])];
        chosen.push_back({l.layer.name(), {o.bits, o.rank}});
        ++freq[{o.bits, o.rank}];
    }
    if (!freq.empty()) {
        const auto best = std::max_element(freq.begin(), freq.end(),
                                           [](const auto& x, const auto& y) { return x.second < y.second; });
        r.defaults.quant.bits = best->first.first;
        r.defaults.rank = best->first.second;
    }
    for (const auto& [name, br] : chosen) {
        if (br.first == r.defaults.quant.bits && br.second == r.defaults.rank) continue;
        LayerSettings s = r.defaults;
        s.quant.bits = br.first;
        s.rank = br.second;
        r.overrides[name] = s;
    }
    for (const LayerCurve& l : p.layers) {
        if (l.plannable) continue;
        if (gptq_packable(l.layer.out, l.layer.in))
            r.overrides[l.layer.name()] = p.options.base;
        else
            r.skipped.insert(l.layer.name());
    }
    return r;
}

// The smallest and largest summed option size of the planned layers.
std::pair<int64_t, int64_t> planned_range(const std::vector<std::vector<PlanOption>>& inst) {
    int64_t lo = 0, hi = 0;
    for (const auto& opts : inst) {
        int64_t mn = opts[0].bytes, mx = opts[0].bytes;
        for (const PlanOption& o : opts) mn = std::min(mn, o.bytes), mx = std::max(mx, o.bytes);
        lo += mn;
        hi += mx;
    }
    return {lo, hi};
}

}  // namespace

std::pair<int64_t, int64_t> plan_size_range(const Plan& p) {
    const auto [lo, hi] = planned_range(instance(p));
    return {p.fixed_bytes + lo, p.fixed_bytes + hi};
}

int64_t requested_budget_bytes(const Plan& p) {
    const PlanOptions& o = p.options;
    if (o.budget_mib) return static_cast<int64_t>(std::floor(*o.budget_mib * 1024.0 * 1024.0));
    if (o.budget_bits)
        return p.fixed_bytes + static_cast<int64_t>(std::floor(*o.budget_bits * double(p.weights_planned) / 8.0));
    double unused = 0;
    const bool has_rank = std::count(o.ranks.begin(), o.ranks.end(), o.budget_like->second) > 0;
    for (int b : o.bits)
        if (b == o.budget_like->first && has_rank)
            return cost_of_uniform(p, o.budget_like->first, o.budget_like->second, &unused);
    throw Error("plan: --budget-like " + std::to_string(o.budget_like->first) + ":" +
                std::to_string(o.budget_like->second) + " names a bit width or rank that --bits / --ranks do not list");
}

void solve_plan(Plan& p, int64_t total_budget, int64_t dp_units) {
    const Stopwatch t;
    const auto inst = instance(p);
    p.budget_bytes = total_budget - p.fixed_bytes;
    const auto [lo, hi] = planned_range(inst);
    if (p.budget_bytes < lo) {
        const double mib = 1024.0 * 1024.0;
        throw Error("plan: the budget (" + std::to_string(double(total_budget) / mib) +
                    " MiB) is below the smallest plan: " + std::to_string(double(p.fixed_bytes + lo) / mib) + " MiB (" +
                    std::to_string(double(p.fixed_bytes) / mib) +
                    " MiB of it fixed: embeddings, norms, float-kept modules)");
    }
    // If the options use bytes for the adapter only when asked (--budget-bits without the adapter), the
    // instance already holds those costs.
    p.exact = allocate_exact(inst, p.budget_bytes, dp_units > 0 ? dp_units : p.options.dp_units);
    p.greedy = allocate_greedy(inst, p.budget_bytes);
    p.profile = profile_of(p, p.exact);
    p.seconds["solve"] = t.seconds();
    // Whom the result suits: one bit width loads everywhere; per-layer bits need a loader that reads `dynamic`.
    std::set<int> bits_used;
    size_t k = 0;
    for (const LayerCurve& l : p.layers)
        if (l.plannable) bits_used.insert(l.options[static_cast<size_t>(p.exact.choice[k++])].bits);
    p.loaders =
        bits_used.size() <= 1
            ? std::vector<std::string>{"transformers + optimum (GPTQ)", "GPTQModel", "vLLM",
                                       "PEFT (per-layer ranks in rank_pattern)"}
            // Checked with GPTQModel 7.7 (tests/interop/check_current_stack.sh): it refuses an asymmetric
            // v1 file from another producer, and its automatic CPU kernel holds only 4-bit layers.
            : std::vector<std::string>{"GPTQModel (export --format gptq_v2; on a CPU load with backend=\"torch\")",
                                       "vLLM", "PEFT (per-layer ranks in rank_pattern)",
                                       "not transformers + optimum: they ignore the per-layer bits in dynamic"};
}

void trace_front(Plan& p) {
    // The front: the exact optimum at budgets from the smallest to the largest plan.
    const Stopwatch tf;
    const auto inst = instance(p);
    const auto [lo, hi] = planned_range(inst);
    p.front.clear();
    constexpr int kPoints = 24;
    for (int i = 0; i <= kPoints; ++i) {
        const int64_t b = lo + (hi - lo) * i / kPoints;
        const Allocation a = allocate_exact(inst, b, std::min<int64_t>(p.options.dp_units, 1 << 12));
        if (!a.feasible) continue;
        p.front.push_back({"front", p.fixed_bytes + a.bytes, a.objective});
    }
    p.uniform.clear();
    for (int bits : p.options.bits)
        for (int rank : p.options.ranks) {
            double obj = 0;
            const int64_t bytes = cost_of_uniform(p, bits, rank, &obj);
            p.uniform.push_back({std::to_string(bits) + "-bit r" + std::to_string(rank), bytes, obj});
        }
    p.seconds["front"] = tf.seconds();
}

Plan plan_curves(const ModelFiles& files, const Calibration& cal, const PlanOptions& opt, const Progress& progress) {
    torch::NoGradGuard no_grad;
    validate_plan_options(opt);
    Plan p;
    p.model = files.path;
    p.options = opt;
    const auto& weights = *files.weights;
    const auto selected = select_layers(files.config, opt.layer_regex);
    std::set<std::string> planned_names;
    for (const auto& l : selected) planned_names.insert(l.name());
    const int max_rank = *std::max_element(opt.ranks.begin(), opt.ranks.end());

    // Fixed cost: every tensor that is not a planned, packable linear weight, as the GPTQ base stores it, and
    // the layers outside --layers at the base settings.
    std::set<std::string> packable_weights;
    for (const auto& l : linear_layers(files.config)) {
        LayerCurve c;
        c.layer = l;
        std::string why;
        c.plannable = planned_names.count(l.name()) && gptq_packable(l.out, l.in, &why);
        c.why = planned_names.count(l.name()) ? why : "not selected by --layers";
        if (c.plannable) {
            packable_weights.insert(l.weight_name());
        } else if (!planned_names.count(l.name()) && gptq_packable(l.out, l.in)) {
            packable_weights.insert(l.weight_name());
            const int r = static_cast<int>(std::min<int64_t>(opt.base.rank, std::min(l.out, l.in)));
            p.fixed_bytes += gptq_linear_bytes(l.out, l.in, opt.base.quant.bits, opt.base.quant.group) +
                             adapter_bytes(l.out, l.in, r, opt.adapter_elem_bytes);
        }
        p.layers.push_back(std::move(c));
    }
    // What the GPTQ export stores for them: a safetensors source's tensors as they are, any other source's
    // (GGUF) dequantized float32 values (pipeline's stored_other).
    const auto* st = dynamic_cast<const SafetensorsWeights*>(&weights);
    for (const std::string& n : weights.names()) {
        if (packable_weights.count(n)) continue;
        int64_t numel = 1;
        for (int64_t d : weights.shape(n)) numel *= d;
        const std::string dt = st ? weights.dtype(n) : "F32";
        const int64_t elem = dt == "F16" || dt == "BF16"  ? 2
                             : dt == "F64" || dt == "I64" ? 8
                             : dt == "I8" || dt == "U8"   ? 1
                                                          : 4;
        p.fixed_bytes += numel * elem;
    }

    // The curves: one quantizer run per layer and bit width, every rank from its spectrum.
    const Stopwatch tc;
    FactorCache factors;
    const bool adapter_counts = !(opt.budget_bits && !opt.budget_bits_count_adapter);
    int n_plannable = 0;
    for (const auto& c : p.layers) n_plannable += c.plannable;
    int done = 0;
    for (LayerCurve& c : p.layers) {
        if (!c.plannable) continue;
        const LinearLayer& l = c.layer;
        const Progress lp = progress.slice(double(done) / n_plannable, double(done + 1) / n_plannable);
        lp(0.0, l.name());
        p.weights_planned += l.out * l.in;
        const auto f = factors.get(l, [&] { return cal.hessian(l); });
        LayerSolver solver(weights.load(l.weight_name()), f, l.name());
        const int64_t width = std::min(l.out, l.in);
        const int r_max = static_cast<int>(std::min<int64_t>(max_rank, width));
        for (size_t bi = 0; bi < opt.bits.size(); ++bi) {
            const Stopwatch tb;
            LayerSettings s = opt.base;
            s.quant.bits = opt.bits[bi];
            s.rank = r_max;
            solver.update(s, lp.slice(double(bi) / opt.bits.size(), double(bi + 1) / opt.bits.size()));
            const std::vector<double> sweep = solver.rank_sweep(InitMethod::Cloq, r_max);
            const double norm = solver.output_fro();
            std::set<int> ranks_done;
            for (int r0 : opt.ranks) {
                const int r = static_cast<int>(std::min<int64_t>(r0, width));
                if (!ranks_done.insert(r).second) continue;
                const double rel = sweep.at(static_cast<size_t>(r)) / norm;
                PlanOption o;
                o.bits = opt.bits[bi];
                o.rank = r;
                o.bytes = gptq_linear_bytes(l.out, l.in, o.bits, s.quant.group) +
                          (adapter_counts ? adapter_bytes(l.out, l.in, r, opt.adapter_elem_bytes) : 0);
                o.objective = rel * rel;
                c.options.push_back(o);
            }
            c.quantize_seconds[opt.bits[bi]] = tb.seconds();
        }
        ++done;
    }
    if (n_plannable == 0) throw Error("plan: no linear layer can be planned (none is packable for GPTQ loaders)");
    p.seconds["curves"] = tc.seconds();
    trace_front(p);
    progress(1.0, "done");
    return p;
}

Plan plan_model(const ModelFiles& files, const Calibration& cal, const PlanOptions& opt, const Progress& progress) {
    const Stopwatch t0;
    Plan p = plan_curves(files, cal, opt, progress);
    solve_plan(p, requested_budget_bytes(p));
    p.seconds["total"] = t0.seconds();
    return p;
}

nlohmann::ordered_json to_json(const Plan& p) {
    const double mib = 1024.0 * 1024.0;
    auto alloc = [&](const Allocation& a) {
        nlohmann::ordered_json j;
        j["feasible"] = a.feasible;
        j["bytes"] = p.fixed_bytes + a.bytes;
        j["mib"] = double(p.fixed_bytes + a.bytes) / mib;
        j["objective"] = a.objective;
        j["lower_bound"] = a.lower_bound;
        j["gap"] = a.objective - a.lower_bound;
        j["bits_per_weight"] = p.bits_per_weight(a, true);
        j["bits_per_weight_base"] = p.bits_per_weight(a, false);
        return j;
    };
    nlohmann::ordered_json j;
    j["tool"] = std::string("cloq plan ") + CLOQ_VERSION;
    j["model"] = p.model;
    j["mode"] = to_string(p.options.mode);
    j["objective"] = "sum over planned layers of (||X(Q+BA-W)^T||_F / ||X W^T||_F)^2 (CLoQ init, calibration X)";
    j["bits"] = p.options.bits;
    j["ranks"] = p.options.ranks;
    j["settings"] = to_json(p.options.base);
    j["budget_bytes"] = p.fixed_bytes + p.budget_bytes;
    j["budget_mib"] = double(p.fixed_bytes + p.budget_bytes) / mib;
    j["fixed_bytes"] = p.fixed_bytes;
    j["weights_planned"] = p.weights_planned;
    j["exact"] = alloc(p.exact);
    j["greedy"] = alloc(p.greedy);
    j["loaders"] = p.loaders;
    nlohmann::ordered_json layers = nlohmann::ordered_json::array();
    size_t k = 0;
    for (const LayerCurve& l : p.layers) {
        nlohmann::ordered_json e;
        e["name"] = l.layer.name();
        e["out"] = l.layer.out;
        e["in"] = l.layer.in;
        e["plannable"] = l.plannable;
        if (!l.plannable) {
            e["why"] = l.why;
        } else {
            const PlanOption& c = l.options[static_cast<size_t>(p.exact.choice[k])];
            const PlanOption& g = l.options[static_cast<size_t>(p.greedy.choice[k])];
            ++k;
            e["choice"] = {{"bits", c.bits}, {"rank", c.rank}, {"bytes", c.bytes}, {"objective", c.objective}};
            e["greedy"] = {{"bits", g.bits}, {"rank", g.rank}};
            nlohmann::ordered_json opts = nlohmann::ordered_json::array();
            for (const PlanOption& o : l.options)
                opts.push_back({{"bits", o.bits}, {"rank", o.rank}, {"bytes", o.bytes}, {"objective", o.objective}});
            e["options"] = opts;
            nlohmann::ordered_json qs = nlohmann::ordered_json::object();
            for (const auto& [b, s] : l.quantize_seconds) qs[std::to_string(b)] = s;
            e["seconds_per_bits"] = qs;
        }
        layers.push_back(e);
    }
    j["layers"] = layers;
    auto points = [&](const std::vector<PlanPoint>& v) {
        nlohmann::ordered_json a = nlohmann::ordered_json::array();
        for (const PlanPoint& pt : v)
            a.push_back({{"label", pt.label},
                         {"bytes", pt.bytes},
                         {"mib", double(pt.bytes) / mib},
                         {"objective", pt.objective}});
        return a;
    };
    j["front"] = points(p.front);
    j["uniform"] = points(p.uniform);
    j["seconds"] = p.seconds;
    return j;
}

}  // namespace cloq
