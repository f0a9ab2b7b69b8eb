#include "model_cli.h"

#include <cstdlib>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "cloq/model/model_files.h"

namespace cloq::cli {

namespace {
// CLI flag -> settings.h JSON key, for the flags that override a profile's global settings when given explicitly.
const std::map<std::string, std::string> kSettingFlags = {{"bits", "bits"},
                                                          {"group", "group"},
                                                          {"sym", "sym"},
                                                          {"quantizer", "quantizer"},
                                                          {"magr", "magr"},
                                                          {"damp", "damp"},
                                                          {"blocksize", "blocksize"},
                                                          {"act-order", "act_order"},
                                                          {"static-groups", "static_groups"},
                                                          {"rank", "rank"},
                                                          {"init", "init"},
                                                          {"split", "split"},
                                                          {"loftq-iters", "loftq_iters"},
                                                          {"loftq-quant", "loftq_quant"},
                                                          {"lora-alpha", "lora_alpha"}};
}  // namespace

void add_profile_option(ArgParser& p, std::string& profile_path) {
    p.option("profile", &profile_path, "P.json",
             "settings profile (global + per-module overrides); flags given "
             "explicitly override its global settings");
}

SettingsProfile settings_profile(const ArgParser& p, const LayerSettings& flags, const std::string& profile_path) {
    SettingsProfile profile;
    if (!profile_path.empty()) profile = load_profile(profile_path);
    nlohmann::json given = nlohmann::json::object();
    const nlohmann::json all = to_json(flags);
    for (const auto& [flag, key] : kSettingFlags)
        if (p.was_set(flag) || profile_path.empty()) given[key] = all[key];
    profile.global = layer_settings_from_json(given, profile.global, "command-line settings");
    return profile;
}

bool quantization_requested(const ArgParser& p) {
    for (const auto& [flag, key] : kSettingFlags)
        if (flag != "lora-alpha" && p.was_set(flag)) return true;
    return p.was_set("profile");
}

void add_no_cache_option(ArgParser& p, bool& no_cache) {
    p.flag("no-cache", &no_cache,
           "do not read or write the calibration cache (default folder: " + default_calibration_cache() + ")");
}

void resolve_cache(const ArgParser& p, CalibSettings& s, bool no_cache) {
    if (no_cache) {
        if (p.was_set("cache")) throw UsageError("--cache and --no-cache exclude each other");
        s.cache_dir.clear();
    } else if (!p.was_set("cache")) {
        s.cache_dir = default_calibration_cache();
    }
}

std::unique_ptr<LlamaModel> open_llama(const std::string& path, DeviceChoice device) {
    const torch::Device dev = resolve_device(device);
    return std::make_unique<LlamaModel>(open_model(path), dev, forward_dtype(dev, /*half_on_gpu=*/false));
}

Calibration run_calibration(const LlamaModel& model, const CalibrationRequest& req, std::ostream& err) {
    TerminalProgress bar(err, "calibrating");
    Calibration cal = calibrate(model, req, bar.progress());
    bar.finish();
    for (const auto& n : cal.notices) err << "note: " << n << "\n";
    return cal;
}

std::string fmt(double v, int precision) {
    std::ostringstream s;
    s << std::setprecision(precision) << v;
    return s.str();
}

}  // namespace cloq::cli
