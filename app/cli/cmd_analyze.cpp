// `cloq analyze --model DIR --calib FILE [calibration options] [quantization options | --profile P] [--layers REGEX]
//  --out report.json [--csv report.csv]`: every linear layer quantized under its settings and initialized with
// zero, svd, loftq and cloq, with the discrepancy metrics and timings; the numbers the GUI's explorer shows.
#include <iomanip>
#include <nlohmann/json.hpp>
#include <ostream>

#include "cli.h"
#include "cloq/analysis/analysis.h"
#include "cloq/base/atomic_file.h"
#include "cloq/base/timing.h"
#include "cloq/model/resource_limits.h"
#include "commands.h"
#include "model_cli.h"

namespace cloq::cli {

int cmd_analyze(const Args& args, std::ostream& out, std::ostream& err) {
    std::string model_path, out_json, out_csv, layers, profile_path, inits_text = "zero,svd,loftq,cloq";
    CalibSettings calib;
    LayerSettings quant;
    DeviceChoice device = DeviceChoice::Auto;
    bool no_cache = false, no_spectral = false;
    ArgParser p("analyze", "--model DIR --calib FILE --out report.json [options]",
                "Quantizes every linear layer once under one setting and initializes its adapter with each of "
                "zero, svd, loftq and cloq on the same calibration Hs; reports ||X D^T|| (Frobenius and spectral, "
                "absolute and relative to ||X W^T||), CLoQ's objective w.r.t. H_lambda, and timings per layer.");
    p.option("model", &model_path, "DIR", "HF model folder or .gguf file", true);
    p.option("out", &out_json, "FILE", "report (JSON)", true);
    p.option("csv", &out_csv, "FILE", "the same per layer and init as CSV");
    p.option("layers", &layers, "REGEX", "only layers whose name matches (e.g. 'layers\\.0\\.|down_proj')");
    p.option("inits", &inits_text, "LIST",
             "comma-separated inits to compare (zero,svd,loftq,cloq,eora,qera-exact,qera-approx)");
    p.flag("no-spectral", &no_spectral, "skip the spectral norms (faster)");
    add_device_option(p, device);
    add_quant_options(p, quant);
    add_profile_option(p, profile_path);
    add_calib_options(p, calib, /*calib_required=*/true);
    add_no_cache_option(p, no_cache);
    if (!p.parse(args, out)) return 0;
    resolve_cache(p, calib, no_cache);
    const SettingsProfile profile = settings_profile(p, quant, profile_path);
    AnalysisOptions opt;
    opt.layer_regex = layers;
    opt.spectral = !no_spectral;
    opt.inits.clear();
    for (size_t a = 0; a <= inits_text.size();) {
        const size_t b = std::min(inits_text.find(',', a), inits_text.size());
        const std::string name = inits_text.substr(a, b - a);
        if (!name.empty()) {
            try {
                opt.inits.push_back(parse_init_method(name));
            } catch (const Error& e) {
                throw UsageError(std::string("--inits: ") + e.what());
            }
        }
        a = b + 1;
    }
    if (opt.inits.empty()) throw UsageError("--inits lists no init");
    validate(profile.global);

    check_output_file(out_json);  // before the work, not after it
    if (!out_csv.empty()) check_output_file(out_csv);
    auto model = open_llama(model_path, device);
    select_layers(model->config(), layers);  // a bad regex fails before the calibration runs
    std::vector<std::string> names;
    for (const auto& l : linear_layers(model->config())) names.push_back(l.name());
    opt.profile = resolve_profile(profile, names);  // a bad override fails here too
    const Stopwatch t0;
    CalibrationRequest req;
    req.settings = calib;
    const Calibration cal = run_calibration(*model, req, err);
    const double calib_secs = t0.seconds();
    const double calib_rss = peak_rss_mib();
    TerminalProgress bar(err, "analyzing");
    const ModelAnalysis a = analyze_model(*model, cal, opt, bar.progress());
    bar.finish();

    nlohmann::json report = to_json(a);
    report["calibration"] = {{"key", cal.key},
                             {"text", calib.text_path},
                             {"part", to_string(calib.part)},
                             {"nsamples", cal.nsamples},
                             {"seqlen", cal.seqlen},
                             {"seed", calib.seed},
                             {"sequential", cal.sequential},
                             {"from_cache", cal.from_cache}};
    report["stages"] = {{"calibration", {{"seconds", calib_secs}, {"peak_rss_mib", calib_rss}}},
                        {"analysis", {{"seconds", a.seconds}, {"peak_rss_mib", peak_rss_mib()}}}};
    write_file_atomic(out_json, report.dump(2) + "\n");
    if (!out_csv.empty()) write_file_atomic(out_csv, to_csv(a));

    // A compact table: relative Frobenius discrepancy per init.
    out << std::left << std::setw(34) << "layer" << std::right << std::setw(6) << "rank";
    for (auto m : opt.inits) out << std::setw(11) << to_string(m);
    out << std::setw(9) << "seconds"
        << "\n";
    for (const auto& l : a.layers) {
        out << std::left << std::setw(34) << l.layer.name().substr(std::string("model.").size()) << std::right
            << std::setw(6) << l.settings.rank;
        for (auto m : opt.inits) out << std::setw(11) << fmt(l.metrics.at(m).fro_rel, 4);
        out << std::setw(9) << std::fixed << std::setprecision(3) << l.timings.at("total") << std::defaultfloat << "\n";
    }
    out << a.layers.size() << " layers; relative ||X D^T||_F shown. Calibration " << fmt(calib_secs, 3)
        << " s, analysis " << fmt(a.seconds, 3) << " s, peak memory " << fmt(peak_rss_mib(), 4) << " MiB\n"
        << "report: " << out_json << (out_csv.empty() ? "" : ", " + out_csv) << "\n";
    return 0;
}

}  // namespace cloq::cli
