#include "model_cli.h"

#include <cstdlib>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "cloq/model_files.h"

namespace cloq::cli {

std::string default_calibration_cache() {
    if (const char* d = std::getenv("CLOQ_CACHE_DIR"); d && *d) return std::string(d) + "/calibration";
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/cloq-studio/calibration";
    if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/cloq-studio/calibration";
    return "";
}

void add_no_cache_option(ArgParser& p, bool& no_cache) {
    p.flag("no-cache", &no_cache, "do not read or write the calibration cache (default folder: " +
                                      default_calibration_cache() + ")");
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
