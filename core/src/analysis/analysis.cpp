#include "cloq/analysis/analysis.h"

#include <torch/torch.h>

#include <iomanip>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "base/regex.h"
#include "cloq/analysis/quantized_eval.h"
#include "cloq/base/error.h"
#include "cloq/base/timing.h"
#include "cloq/lowrank/factor_cache.h"
#include "cloq/lowrank/hessian_factor.h"
#include "cloq/lowrank/layer_solver.h"
#include "cloq/lowrank/metrics_json.h"

namespace cloq {

std::vector<LinearLayer> select_layers(const ModelConfig& c, const std::string& regex) {
    const auto all = linear_layers(c);
    if (regex.empty()) return all;
    const std::regex re = compile_untrusted_regex(regex, "--layers");
    std::vector<LinearLayer> out;
    for (const auto& l : all)
        if (std::regex_search(l.name(), re)) out.push_back(l);
    if (out.empty())
        throw Error("--layers '" + regex + "' matches no linear layer (names look like " + all.front().name() + ")");
    return out;
}

ModelAnalysis analyze_model(const LlamaModel& model, const Calibration& cal, const AnalysisOptions& opt,
                            const Progress& progress) {
    torch::NoGradGuard no_grad;
    const Stopwatch t0;
    validate(opt.profile.defaults);
    ModelAnalysis r;
    r.model = model.files().path;
    r.profile = opt.profile;
    r.inits = opt.inits;
    std::vector<LinearLayer> layers;
    for (const auto& l : select_layers(model.config(), opt.layer_regex))
        if (!opt.profile.is_skipped(l.name())) layers.push_back(l);
    FactorCache factors;
    for (size_t i = 0; i < layers.size(); ++i) {
        const auto& l = layers[i];
        const Progress p =
            progress.slice(static_cast<double>(i) / layers.size(), static_cast<double>(i + 1) / layers.size());
        p(0.0, l.name());
        const Stopwatch ts;
        const auto f = factors.get(l, [&] { return cal.hessian(l); });
        LayerAnalysis a;
        a.layer = l;
        a.settings = settings_for_layer(opt.profile.settings_for(l.name()), l);
        LayerSolver solver(model.files().weights->load(l.weight_name()), f, l.name());
        solver.update(a.settings, p.slice(0.0, 0.5));
        std::map<std::string, double> timings = solver.timings();
        for (size_t k = 0; k < opt.inits.size(); ++k) {
            const InitMethod m = opt.inits[k];
            solver.ensure(m, p.slice(0.5 + 0.4 * k / opt.inits.size(), 0.5 + 0.4 * (k + 1) / opt.inits.size()));
            for (const auto& [stage, secs] : solver.timings()) timings[stage] = secs;
            const Stopwatch tm;
            a.metrics[m] = solver.metrics(m, opt.spectral);
            a.hlambda[m] = solver.hlambda_discrepancy(m);
            timings["metrics_" + to_string(m)] = tm.seconds();
        }
        a.cloq_optimal = solver.cloq_optimal_value();
        a.timings = timings;
        a.timings["total"] = ts.seconds();
        if (opt.on_layer) opt.on_layer(a);
        r.layers.push_back(std::move(a));
    }
    r.seconds = t0.seconds();
    progress(1.0, "done");
    return r;
}

nlohmann::json to_json(const LayerAnalysis& a) {
    nlohmann::json m = nlohmann::json::object(), h = nlohmann::json::object();
    for (const auto& [init, d] : a.metrics) m[to_string(init)] = nlohmann::json(discrepancy_json(d));
    for (const auto& [init, v] : a.hlambda) h[to_string(init)] = v;
    return {{"name", a.layer.name()},
            {"layer", a.layer.layer},
            {"module", a.layer.short_name()},
            {"group", to_string(a.layer.group)},
            {"in", a.layer.in},
            {"out", a.layer.out},
            {"bits", a.settings.quant.bits},
            {"group_size", a.settings.quant.group},
            {"rank", a.settings.rank},
            {"metrics", m},
            {"hlambda_fro", h},
            {"cloq_optimal", a.cloq_optimal},
            {"timings", a.timings}};
}

nlohmann::json to_json(const ModelAnalysis& a) {
    nlohmann::json inits = nlohmann::json::array(), layers = nlohmann::json::array();
    for (auto m : a.inits) inits.push_back(to_string(m));
    for (const auto& l : a.layers) layers.push_back(to_json(l));
    nlohmann::json j = {{"model", a.model},
                        {"settings", to_json(a.profile.defaults)},
                        {"inits", inits},
                        {"seconds", a.seconds},
                        {"layers", layers}};
    if (!a.profile.uniform()) j["profile"] = to_json(make_profile(a.profile));
    return j;
}

std::string to_csv(const ModelAnalysis& a) {
    std::ostringstream s;
    s << std::setprecision(10);
    s << "layer,module,group,in,out,rank,init,fro,spec,fro_rel,spec_rel,hlambda_fro,seconds\n";
    for (const auto& l : a.layers)
        for (const auto& [init, d] : l.metrics)
            s << l.layer.name() << "," << l.layer.short_name() << "," << to_string(l.layer.group) << "," << l.layer.in
              << "," << l.layer.out << "," << l.settings.rank << "," << to_string(init) << "," << d.fro << "," << d.spec
              << "," << d.fro_rel << "," << d.spec_rel << "," << l.hlambda.at(init) << "," << l.timings.at("total")
              << "\n";
    return s.str();
}

}  // namespace cloq
