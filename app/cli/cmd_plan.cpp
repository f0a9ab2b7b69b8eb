// `cloq plan --model M --calib TEXT --out DIR (--budget-mib X | --budget-bits B | --budget-like BITS:RANK)
//  [--bits 2,3,4] [--ranks 0,8,16,32,64,128] [--mode bits-ranks|ranks] [quantization options]`: per-layer bit
// widths and ranks that minimize the summed relative calibrated discrepancy under a size budget (cloq/plan). OUT
// receives profile.json (what quantize / eval / analyze --profile and the GUI read), plan.json (per-layer choice,
// every option, the size–objective front, the uniform settings on the same cost model) and plan.csv.
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "cli.h"
#include "cloq/analysis/analysis.h"
#include "cloq/base/atomic_file.h"
#include "cloq/base/timing.h"
#include "cloq/plan/planner.h"
#include "cloq/settings/profile.h"
#include "commands.h"
#include "model_cli.h"

namespace cloq::cli {

namespace {
std::vector<int> int_list(const std::string& text, const char* option) {
    std::vector<int> v;
    std::stringstream in(text);
    std::string item;
    while (std::getline(in, item, ',')) {
        try {
            size_t used = 0;
            v.push_back(std::stoi(item, &used));
            if (used != item.size()) throw std::invalid_argument(item);
        } catch (const std::exception&) {
            throw UsageError(std::string("--") + option + ": '" + item + "' is not an integer");
        }
    }
    if (v.empty()) throw UsageError(std::string("--") + option + " lists nothing");
    return v;
}

std::string plan_csv(const Plan& p) {
    std::ostringstream o;
    o << std::setprecision(9) << "module,out,in,plannable,bits,rank,bytes,objective,greedy_bits,greedy_rank\n";
    size_t k = 0;
    for (const LayerCurve& l : p.layers) {
        o << l.layer.name() << "," << l.layer.out << "," << l.layer.in << "," << (l.plannable ? 1 : 0) << ",";
        if (!l.plannable) {
            o << ",,,,,\n";
            continue;
        }
        const PlanOption& c = l.options[static_cast<size_t>(p.exact.choice[k])];
        const PlanOption& g = l.options[static_cast<size_t>(p.greedy.choice[k])];
        ++k;
        o << c.bits << "," << c.rank << "," << c.bytes << "," << c.objective << "," << g.bits << "," << g.rank << "\n";
    }
    return o.str();
}
}  // namespace

int cmd_plan(const Args& args, std::ostream& out, std::ostream& err) {
    std::string model_path, out_dir, bits_text = "2,3,4", ranks_text = "0,8,16,32,64,128", mode_text = "bits-ranks";
    std::string layers, budget_like;
    double budget_mib = NAN, budget_bits = NAN;  // NaN: not given
    bool base_bits_only = false;
    CalibSettings calib;
    LayerSettings quant;
    DeviceChoice device = DeviceChoice::Auto;
    bool no_cache = false;
    ArgParser p("plan", "--model DIR --calib FILE --out DIR (--budget-mib X | --budget-bits B | --budget-like B:R)",
                "Plans per-layer bit widths and ranks for a size budget: every linear layer is quantized once per "
                "bit width, CLoQ's spectrum gives its calibrated discrepancy at every rank, and an exact "
                "multiple-choice knapsack minimizes the sum of relative ||X(Q+BA-W)^T||_F^2 under the budget "
                "(packed codes, fp16 scales and zeros, g_idx and the adapter all counted).");
    p.option("model", &model_path, "DIR", "HF model folder or .gguf file", true);
    p.option("out", &out_dir, "DIR", "new or empty output folder: profile.json, plan.json, plan.csv", true);
    p.option("bits", &bits_text, "LIST", "candidate bit widths (2, 3, 4, 8)");
    p.option("ranks", &ranks_text, "LIST", "candidate ranks (capped at each layer's min(out, in))");
    p.option("mode", &mode_text, "MODE",
             "bits-ranks (per-layer bits via dynamic: GPTQModel, vLLM) or ranks (one bit width: every loader)");
    p.option("budget-mib", &budget_mib, "X", "the whole export (base + adapter) in MiB");
    p.option("budget-bits", &budget_bits, "B", "average bits per weight of the planned layers (adapter included)");
    p.flag("budget-bits-base-only", &base_bits_only, "--budget-bits counts the base only, not the adapter");
    p.option("budget-like", &budget_like, "LIST",
             "the size of that uniform setting (e.g. 3:16); a list (2:64,3:16) also writes profile-<b>r<r>.json "
             "for each, from the same curves");
    std::string adapter_dtype = "float32";
    p.option("adapter-dtype", &adapter_dtype, "T",
             "the adapter's dtype in the export, as cloq quantize --adapter-dtype: float32 (its default), float16, "
             "bfloat16");
    p.option("layers", &layers, "REGEX", "plan only these layers (the rest stays at the quantization options)");
    add_device_option(p, device);
    add_quant_options(p, quant);
    add_calib_options(p, calib, /*calib_required=*/true);
    add_no_cache_option(p, no_cache);
    if (!p.parse(args, out)) return 0;
    resolve_cache(p, calib, no_cache);

    PlanOptions opt;
    opt.base = quant;
    opt.bits = int_list(bits_text, "bits");
    opt.ranks = int_list(ranks_text, "ranks");
    opt.layer_regex = layers;
    if (adapter_dtype == "float32")
        opt.adapter_elem_bytes = 4;
    else if (adapter_dtype == "float16" || adapter_dtype == "bfloat16")
        opt.adapter_elem_bytes = 2;
    else
        throw UsageError("--adapter-dtype '" + adapter_dtype + "' is not float32, float16 or bfloat16");
    try {
        opt.mode = parse_plan_mode(mode_text);
    } catch (const Error& e) {
        throw UsageError(std::string("--mode: ") + e.what());
    }
    if (!std::isnan(budget_mib)) opt.budget_mib = budget_mib;
    if (!std::isnan(budget_bits)) opt.budget_bits = budget_bits;
    opt.budget_bits_count_adapter = !base_bits_only;
    std::vector<std::pair<int, int>> likes;
    if (!budget_like.empty()) {
        std::stringstream in(budget_like);
        std::string item;
        while (std::getline(in, item, ',')) {
            const size_t colon = item.find(':');
            if (colon == std::string::npos) throw UsageError("--budget-like takes BITS:RANK, e.g. 3:16");
            likes.emplace_back(int_list(item.substr(0, colon), "budget-like").at(0),
                               int_list(item.substr(colon + 1), "budget-like").at(0));
        }
        if (likes.empty()) throw UsageError("--budget-like lists nothing");
        opt.budget_like = likes.front();
    }
    // --mode ranks without --bits: the one bit width of the quantization options.
    if (opt.mode == PlanMode::RanksOnly && bits_text == "2,3,4") opt.bits = {quant.quant.bits};
    for (const auto& [b, r] : likes)
        if (std::count(opt.bits.begin(), opt.bits.end(), b) == 0 ||
            std::count(opt.ranks.begin(), opt.ranks.end(), r) == 0)
            throw UsageError("--budget-like " + std::to_string(b) + ":" + std::to_string(r) +
                             " is not on the grid of --bits and --ranks");
    try {
        validate_plan_options(opt);  // a bad budget or list fails before the calibration
    } catch (const Error& e) {
        throw UsageError(e.what());
    }

    const bool out_exists = check_out_dir(out_dir);  // before the work, not after it
    AtomicDir dir(out_dir, /*replace_existing=*/out_exists);
    auto model = open_llama(model_path, device);
    select_layers(model->config(), layers);  // a bad regex fails before the calibration runs
    const Stopwatch t0;
    CalibrationRequest req;
    req.settings = calib;
    const Calibration cal = run_calibration(*model, req, err);
    const double calib_secs = t0.seconds();
    TerminalProgress bar(err, "planning");
    Plan plan = plan_model(model->files(), cal, opt, bar.progress());
    bar.finish();
    plan.seconds["calibration"] = calib_secs;

    auto report = to_json(plan);
    report["calibration"] = {{"text", calib.text_path},     {"part", to_string(calib.part)},
                             {"nsamples", cal.nsamples},    {"seqlen", cal.seqlen},
                             {"seed", calib.seed},          {"key", cal.key},
                             {"from_cache", cal.from_cache}};
    // Further budgets from the same curves (the solve is instant): one profile each, and their plans in plan.json.
    const double mib = 1024.0 * 1024.0;
    nlohmann::ordered_json more = nlohmann::ordered_json::array();
    for (size_t i = 1; i < likes.size(); ++i) {
        Plan other = plan;
        other.options.budget_like = likes[i];
        solve_plan(other, requested_budget_bytes(other));
        const std::string name =
            "profile-" + std::to_string(likes[i].first) + "r" + std::to_string(likes[i].second) + ".json";
        save_profile(dir.file(name), make_profile(other.profile));
        double uniform = 0;
        for (const PlanPoint& u : other.uniform)
            if (u.label == std::to_string(likes[i].first) + "-bit r" + std::to_string(likes[i].second))
                uniform = u.objective;
        more.push_back({{"budget_like", std::to_string(likes[i].first) + ":" + std::to_string(likes[i].second)},
                        {"profile", name},
                        {"budget_mib", double(other.fixed_bytes + other.budget_bytes) / mib},
                        {"mib", double(other.fixed_bytes + other.exact.bytes) / mib},
                        {"objective", other.exact.objective},
                        {"greedy_objective", other.greedy.objective},
                        {"lower_bound", other.exact.lower_bound},
                        {"uniform_objective", uniform},
                        {"bits_per_weight", other.bits_per_weight(other.exact, true)},
                        {"loaders", other.loaders}});
        out << "budget like " << likes[i].first << "-bit r" << likes[i].second << ": "
            << fmt(double(other.fixed_bytes + other.exact.bytes) / mib, 5) << " MiB, objective "
            << fmt(other.exact.objective, 5) << " (uniform " << fmt(uniform, 5) << ", greedy "
            << fmt(other.greedy.objective, 5) << ") -> " << name << "\n";
    }
    if (!more.empty()) report["more_budgets"] = more;
    write_file_atomic(dir.file("plan.json"), report.dump(2) + "\n");
    write_file_atomic(dir.file("plan.csv"), plan_csv(plan));
    save_profile(dir.file("profile.json"), make_profile(plan.profile));
    dir.commit();

    auto line = [&](const char* what, const Allocation& a) {
        out << std::left << std::setw(10) << what << std::right << std::setw(10)
            << fmt(double(plan.fixed_bytes + a.bytes) / mib, 5) << " MiB" << std::setw(12) << fmt(a.objective, 5)
            << std::setw(10) << fmt(plan.bits_per_weight(a, true), 4) << "\n";
    };
    out << std::left << std::setw(10) << "plan" << std::right << std::setw(14) << "size" << std::setw(12) << "objective"
        << std::setw(10) << "bits/w"
        << "\n";
    line("exact", plan.exact);
    line("greedy", plan.greedy);
    for (const PlanPoint& u : plan.uniform)
        if (u.bytes <= plan.fixed_bytes + plan.budget_bytes)
            out << std::left << std::setw(10) << u.label << std::right << std::setw(10) << fmt(double(u.bytes) / mib, 5)
                << " MiB" << std::setw(12) << fmt(u.objective, 5) << "\n";
    out << "budget " << fmt(double(plan.fixed_bytes + plan.budget_bytes) / mib, 5) << " MiB (fixed "
        << fmt(double(plan.fixed_bytes) / mib, 4)
        << " MiB); optimality gap <= " << fmt(plan.exact.objective - plan.exact.lower_bound, 3) << "; curves "
        << fmt(plan.seconds["curves"], 3) << " s, solve " << fmt(plan.seconds["solve"], 3) << " s\n"
        << "loads in: ";
    for (size_t i = 0; i < plan.loaders.size(); ++i) out << (i ? "; " : "") << plan.loaders[i];
    out << "\nwrote " << out_dir << "/profile.json, plan.json, plan.csv\n";
    return 0;
}

}  // namespace cloq::cli
