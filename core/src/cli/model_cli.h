// Helpers shared by the model commands (info, calibrate, eval, analyze): opening a model on the chosen device,
// the calibration cache location, and running calibration with a progress bar.
#pragma once
#include <iosfwd>
#include <memory>
#include <string>

#include "cli.h"
#include "cloq/calibration.h"
#include "cloq/llama_model.h"
#include "cloq/settings.h"

namespace cloq::cli {

// The default calibration cache: $CLOQ_CACHE_DIR, else $XDG_CACHE_HOME/cloq-studio/calibration, else
// ~/.cache/cloq-studio/calibration (the GUI uses the same folder, so both reuse each other's Hs).
std::string default_calibration_cache();

// Adds --no-cache next to the shared calibration options (the cache is on by default).
void add_no_cache_option(ArgParser& p, bool& no_cache);
// Applies the cache default / --no-cache to the settings after parsing.
void resolve_cache(const ArgParser& p, CalibSettings& s, bool no_cache);

// Opens the model and builds the forward pass on the resolved device (float32; TF32 matmuls may be used on CUDA).
std::unique_ptr<LlamaModel> open_llama(const std::string& path, DeviceChoice device);

// Calibrates with a progress bar on `err` and prints the notices (capped seqlen, invalid cache entry) there.
Calibration run_calibration(const LlamaModel& model, const CalibrationRequest& req, std::ostream& err);

// JSON-safe number formatting and "1.2 s" style durations for the human-readable output.
std::string fmt(double v, int precision = 4);

}  // namespace cloq::cli
