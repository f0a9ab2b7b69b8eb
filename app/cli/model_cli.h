// Helpers shared by the model commands (info, calibrate, eval, analyze): opening a model on the chosen device,
// the calibration cache options (core's default_calibration_cache(), shared with the GUI), settings profiles, and
// running calibration with a progress bar.
#pragma once
#include <iosfwd>
#include <memory>
#include <string>

#include "cli.h"
#include "cloq/analysis/calibration.h"
#include "cloq/model/llama_model.h"
#include "cloq/settings/profile.h"
#include "cloq/settings/settings.h"

namespace cloq::cli {

// Adds --no-cache next to the shared calibration options (the cache is on by default).
void add_no_cache_option(ArgParser& p, bool& no_cache);
// Applies the cache default / --no-cache to the settings after parsing.
void resolve_cache(const ArgParser& p, CalibSettings& s, bool no_cache);

// Opens the model and builds the forward pass on the resolved device (float32; TF32 matmuls may be used on CUDA).
std::unique_ptr<LlamaModel> open_llama(const std::string& path, DeviceChoice device);

// Calibrates with a progress bar on `err` and prints the notices (capped seqlen, invalid cache entry) there.
Calibration run_calibration(const LlamaModel& model, const CalibrationRequest& req, std::ostream& err);

// Adds --profile P.json (the settings profile of quantize, analyze and eval).
void add_profile_option(ArgParser& p, std::string& profile_path);
// The profile a command works under: the file's (flags given explicitly override its global settings), or, without
// one, the flags as the settings of every module. Errors name the file.
SettingsProfile settings_profile(const ArgParser& p, const LayerSettings& flags, const std::string& profile_path);
// True when any quantization flag or --profile was given (eval's switch from float to quantized).
bool quantization_requested(const ArgParser& p);

// JSON-safe number formatting and "1.2 s" style durations for the human-readable output.
std::string fmt(double v, int precision = 4);

}  // namespace cloq::cli
