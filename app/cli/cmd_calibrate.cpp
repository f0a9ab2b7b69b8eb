// `cloq calibrate --model DIR --calib FILE [calibration options]`: computes (or finds in the cache) the H = XᵀX of
// every linear layer's inputs, so later analyze/eval/quantize runs and the GUI start from them.
#include <nlohmann/json.hpp>
#include <ostream>

#include "cli.h"
#include "cloq/analysis/calibration.h"
#include "cloq/analysis/quantized_eval.h"
#include "cloq/base/atomic_file.h"
#include "cloq/model/perplexity.h"
#include "commands.h"
#include "model_cli.h"

namespace cloq::cli {

int cmd_calibrate(const Args& args, std::ostream& out, std::ostream& err) {
    std::string model_path;
    CalibSettings calib;
    LayerSettings quant;
    DeviceChoice device = DeviceChoice::Auto;
    bool json = false, no_cache = false;
    ArgParser p("calibrate", "--model DIR --calib FILE [options]",
                "Runs the full-precision model over random windows of a text and accumulates H = X^T X (float64) "
                "for every input group (q/k/v share attn_in, gate/up share mlp_in, o_proj, down_proj) of every "
                "block. The Hs are cached (keyed by model, text and settings) for analyze, eval, quantize and the "
                "GUI. With --sequential each block is quantized (quantization options below) before the next block's "
                "inputs are computed.");
    p.option("model", &model_path, "DIR", "HF model folder or .gguf file", true);
    p.flag("json", &json, "print a JSON summary as the last line");
    add_device_option(p, device);
    add_calib_options(p, calib, /*calib_required=*/true);
    add_no_cache_option(p, no_cache);
    add_quant_options(p, quant);
    std::string windows_json;
    p.option("windows-json", &windows_json, "FILE",
             "also write the token ids of the calibration windows as JSON {\"windows\": [[ids]...]} (to calibrate "
             "another tool, e.g. GPTQModel, on exactly the same tokens)");
    if (!p.parse(args, out)) return 0;
    resolve_cache(p, calib, no_cache);
    if (!windows_json.empty()) check_output_file(windows_json);  // before the work, not after it

    auto model = open_llama(model_path, device);
    CalibrationRequest req;
    req.settings = calib;
    std::unique_ptr<QuantizedWeights> qw;
    if (calib.sequential) {
        qw = std::make_unique<QuantizedWeights>(quant, quant.init);
        req.quantizer = qw->block_quantizer(model->config());
        req.quantizer_key = qw->key();
    }
    const Calibration cal = run_calibration(*model, req, err);
    double trace_sum = 0;
    for (int l = 0; l < cal.num_layers(); ++l)
        for (InputGroup g : kInputGroups) trace_sum += cal.hessian(l, g).trace().item<double>();
    if (!std::isfinite(trace_sum)) throw Error("calibration produced non-finite H (the model overflows on this text)");
    out << (cal.from_cache ? "found " : "computed ") << cal.num_layers() * 4 << " Gram matrices from " << cal.nsamples
        << " windows x " << cal.seqlen << " tokens (" << cal.tokens << " tokens of " << cal.text_tokens << ") in "
        << fmt(cal.seconds, 3) << " s" << (cal.sequential ? ", sequential" : "") << "\n";
    if (!cal.cache_path.empty()) out << "cache: " << cal.cache_path << "\n";
    if (!windows_json.empty()) {
        // The same tokens and starts as calibrate() (docs/design.md, Calibration).
        const auto tokens =
            text_part_tokens(tokenize_file(*model->files().tokenizer, calib.text_path), calib.part, calib.text_path);
        nlohmann::json w = nlohmann::json::array();
        for (int64_t s :
             calibration_window_starts(static_cast<int64_t>(tokens.size()), cal.seqlen, cal.nsamples, calib.seed))
            w.push_back(std::vector<int32_t>(tokens.begin() + s, tokens.begin() + s + cal.seqlen));
        write_file_atomic(windows_json, nlohmann::json{{"windows", w}}.dump());
    }
    if (json) {
        nlohmann::json j = {{"key", cal.key},
                            {"nsamples", cal.nsamples},
                            {"seqlen", cal.seqlen},
                            {"tokens", cal.tokens},
                            {"text_tokens", cal.text_tokens},
                            {"sequential", cal.sequential},
                            {"from_cache", cal.from_cache},
                            {"seconds", cal.seconds},
                            {"cache", cal.cache_path},
                            {"notices", cal.notices}};
        out << j.dump() << "\n";
    }
    return 0;
}

}  // namespace cloq::cli
