// The batch export behind `cloq quantize` and the GUI's export dialog (issue 5): calibrate, then for each decoder
// block quantize every linear layer and solve its adapter with the settings the profile gives it, and write
//
//   OUT/adapter/   adapter_config.json + adapter_model.safetensors (PEFT; lora_A divided by s = lora_alpha / r)
//   OUT/base/      a GPTQ checkpoint (format gptq or gptq_v2) or a plain float16 model (format fp16)
//   OUT/profile.json, OUT/report.json, OUT/report.csv
//
// Streaming: one block's weights, Hs and results are in memory at a time; each finished block is written to a
// checkpoint folder next to OUT ("<OUT>.cloq-resume/", one safetensors + one JSON per block, each atomic), and OUT
// is assembled from those files at the end, tensor by tensor. OUT itself is built in a temporary sibling and renamed
// into place only when complete: an error or a cancellation leaves no OUT (the finished blocks stay in the resume
// folder; `resume = true` continues from them, after checking they were made from the same model, calibration and
// settings). The input model is only read.
//
// What the files hold is exactly what the pipeline evaluates "in memory": GPTQ scales are rounded to float16 and
// fp16 weights to float16 before the effective weight Q + s·lora_B·lora_A is formed, and non-linear tensors are
// copied (gptq) or rounded to float16 (fp16). So the perplexity from the files equals the in-memory one; the report
// also gives the perplexity of the unrounded float32 solution.
//
// Modules that GPTQ loaders cannot hold (in or out features not a multiple of 32) and modules a profile skips keep
// their float weight (listed as "-:" in the GPTQ `dynamic` map) and get a PEFT-style adapter (lora_B = 0, lora_A
// Kaiming-uniform, seeded by the module name) whose product is 0, so the effective weight is the original one.
#pragma once
#include <torch/types.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "cloq/base/progress.h"
#include "cloq/lowrank/metrics.h"
#include "cloq/settings/profile.h"
#include "cloq/settings/settings.h"

namespace cloq {

enum class BaseFormat { Gptq, GptqV2, Fp16 };
std::string to_string(BaseFormat f);
BaseFormat parse_base_format(const std::string& s);  // gptq | gptq_v2 | fp16

struct QuantizeExportOptions {
    std::string model_path;   // HF folder or .gguf (only read)
    std::string out_dir;      // OUT: must not exist
    CalibSettings calib;      // text_path, nsamples, seqlen, seed, sequential, cache_dir
    SettingsProfile profile;  // global settings + per-module overrides
    BaseFormat format = BaseFormat::Gptq;
    torch::ScalarType adapter_dtype = torch::kFloat32;
    bool write_adapter = true, write_base = true, write_profile = true, write_report = true;
    bool compare = true;   // also measure zero and LoftQ on every layer for the report
    bool spectral = true;  // spectral norms in the report (one Lanczos run per init and layer)
    bool resume = false;
    DeviceChoice device = DeviceChoice::Auto;
    // Perplexity (optional): of the float model, the unrounded solution, the export in memory and the files.
    std::string eval_text;
    TextPart eval_part;  // the part of eval_text's tokens whose first windows are evaluated
    int eval_seqlen = 256;
    int eval_nsamples = 32;
    bool eval_files = true;  // also read OUT back (from the temporary folder) and measure it
    // Extra files to put into OUT before it is committed (e.g. the GUI's charts): called with the temporary folder.
    std::function<void(const std::string& temp_out)> add_files;
};

// One linear module's outcome (a row of report.csv).
struct ModuleRecord {
    std::string module;
    int layer = 0;
    int64_t in = 0, out = 0;
    bool quantized = true;
    std::string note;  // why it was left unquantized, if it was
    LayerSettings settings;
    Discrepancy init, zero, loftq;  // ‖X Dᵀ‖ for the chosen init, zero and LoftQ (loftq only with compare)
    bool has_zero = false, has_loftq = false;
    double export_fro_rel = 0;  // relative Frobenius discrepancy of what the files hold (after rounding)
    double seconds = 0;
};

struct QuantizeExportResult {
    std::string out_dir;
    std::vector<ModuleRecord> modules;
    nlohmann::ordered_json report;     // what report.json holds
    std::vector<std::string> notices;  // calibration notices, unquantized modules, resumed blocks, ...
    int resumed_blocks = 0;
    double ppl_float = 0, ppl_solved = 0, ppl_export = 0, ppl_files = 0;  // 0 when not measured
    double seconds_total = 0;
};

// Throws cloq::Error (existing / unwritable OUT, bad model, full disk, ...) or cloq::Cancelled; in both cases no OUT.
QuantizeExportResult run_quantize_export(const QuantizeExportOptions& opt, const Progress& progress = {});

// The resume folder of an output folder.
std::string resume_dir_for(const std::string& out_dir);

}  // namespace cloq
