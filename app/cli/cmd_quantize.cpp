// `cloq quantize`: the whole-model batch export (issue 5); the work is run_quantize_export (quantize_pipeline.h).
#include <filesystem>
#include <iomanip>
#include <map>
#include <ostream>

#include "cli.h"
#include "cloq/pipeline/quantize_pipeline.h"
#include "cloq/settings/profile.h"
#include "commands.h"
#include "model_cli.h"

#ifdef CLOQ_HAVE_ZIP
#include "zip_bundle.h"
#endif

namespace fs = std::filesystem;

namespace cloq::cli {

namespace {
torch::ScalarType parse_adapter_dtype(const std::string& s) {
    if (s == "float32") return torch::kFloat32;
    if (s == "float16") return torch::kFloat16;
    if (s == "bfloat16") return torch::kBFloat16;
    throw Error("unknown adapter dtype '" + s + "' (use float32, float16 or bfloat16)");
}
}  // namespace

int cmd_quantize(const Args& args, std::ostream& out, std::ostream& err) {
    QuantizeExportOptions opt;
    LayerSettings flags;
    std::string format = "gptq", profile_path, zip_path, adapter_dtype = "float32";
    bool no_compare = false, no_spectral = false, json = false, no_cache = false;
    opt.calib.nsamples = 128;
    opt.calib.seqlen = 2048;
    ArgParser p("quantize", "--model DIR --calib FILE --out OUT [options]",
                "Quantizes every linear layer of a model, initializes LoRA adapters (CLoQ by default) and writes\n"
                "OUT/adapter (PEFT), OUT/base (GPTQ checkpoint or float16 model), OUT/profile.json and\n"
                "OUT/report.json/.csv. OUT appears only when complete; Ctrl-C stops within a layer and\n"
                "--resume continues from the finished blocks kept in OUT.cloq-resume.");
    p.option("model", &opt.model_path, "DIR", "input model (HF folder or .gguf); never modified", true);
    p.option("out", &opt.out_dir, "OUT", "output folder (must not exist)", true);
    add_calib_options(p, opt.calib, true);
    add_no_cache_option(p, no_cache);
    add_quant_options(p, flags);
    p.option("lora-alpha", &flags.lora_alpha, "A", "LoRA alpha written to the adapter (the scaling is compensated)");
    p.section("Export");
    p.option("format", &format, "gptq|gptq_v2|fp16",
             "base format: GPTQ checkpoint storing zero-1 (zero points kept >= 1 so it can) or zero, or float16");
    p.option("adapter-dtype", &adapter_dtype, "T", "adapter tensors: float32, float16 or bfloat16");
    add_profile_option(p, profile_path);
    p.option("zip", &zip_path, "OUT.zip", "also bundle OUT into one zip file");
    p.flag("resume", &opt.resume, "continue an interrupted run from OUT.cloq-resume");
    p.flag("no-compare", &no_compare, "skip the zero/LoftQ comparison in the report (faster)");
    p.flag("no-spectral", &no_spectral, "report Frobenius discrepancies only (faster)");
    p.section("Evaluation");
    p.option("eval", &opt.eval_text, "FILE", "measure perplexity on this text: float model, solution, export, files");
    p.option("eval-seqlen", &opt.eval_seqlen, "L", "perplexity window length");
    p.option("eval-nsamples", &opt.eval_nsamples, "N", "perplexity windows (-1 = all)");
    add_text_part_option(p, "eval-part", opt.eval_part, "evaluate this part of --eval's tokens only, e.g. 0:0.5");
    add_device_option(p, opt.device);
    p.flag("json", &json, "print the report as JSON on stdout at the end");
    if (!p.parse(args, out)) return 0;
    resolve_cache(p, opt.calib, no_cache);  // the calibration cache shared with analyze/eval/calibrate and the GUI

    try {
        opt.format = parse_base_format(format);
        opt.adapter_dtype = parse_adapter_dtype(adapter_dtype);
    } catch (const Error& e) {
        throw UsageError(e.what());
    }
    if (!zip_path.empty()) {
#ifndef CLOQ_HAVE_ZIP
        throw UsageError(
            "--zip is unavailable: this build has no zip support (QuaZip comes with the GUI build, "
            "CLOQ_BUILD_GUI=ON); zip OUT with any zip tool instead");
#else
        if (fs::exists(zip_path)) throw Error("zip bundle " + zip_path + " already exists (nothing was written)");
#endif
    }
    opt.profile = settings_profile(p, flags, profile_path);
    opt.compare = !no_compare;
    opt.spectral = !no_spectral;

    TerminalProgress tp(err, "quantize");
    QuantizeExportResult r;
    try {
        r = run_quantize_export(opt, tp.progress());
    } catch (const Cancelled&) {
        tp.finish();
        err << "cloq quantize: cancelled; " << opt.out_dir << " was not written";
        if (fs::exists(resume_dir_for(opt.out_dir)))
            err << " (finished blocks are kept in " << resume_dir_for(opt.out_dir) << ": rerun with --resume)";
        err << "\n";
        return 130;
    }
    tp.finish();
#ifdef CLOQ_HAVE_ZIP
    if (!zip_path.empty()) {
        TerminalProgress zp(err, "zip");
        zip::write_zip_bundle(zip_path, opt.out_dir, fs::path(opt.out_dir).filename().string(), zp.progress());
        zp.finish();
    }
#endif
    for (const auto& n : r.notices) err << "note: " << n << "\n";
    if (json) {
        out << r.report.dump(2) << "\n";
        return 0;
    }
    const auto& s = r.report["summary"];
    out << "wrote " << opt.out_dir << " (" << to_string(opt.format) << " base, " << s["quantized_modules"]
        << " modules quantized, " << s["unquantized_modules"] << " kept in float) in " << std::fixed
        << std::setprecision(1) << r.seconds_total << " s\n";
    const std::string init = to_string(opt.profile.global.init);
    out << std::setprecision(4);
    if (s.contains("mean_fro_rel_" + init))
        out << "mean relative ||X(Q+BA-W)^T||_F: " << init << " " << s["mean_fro_rel_" + init].get<double>();
    for (const std::string other : {"zero", "loftq"})  // the comparisons, each once (the init itself came first)
        if (other != init && s.contains("mean_fro_rel_" + other))
            out << ", " << other << " " << s["mean_fro_rel_" + other].get<double>();
    out << "\n";
    if (r.ppl_export > 0) {
        out << "perplexity: float " << r.ppl_float;
        if (r.ppl_solved > 0) out << ", solved (fp32) " << r.ppl_solved;
        out << ", export in memory " << r.ppl_export;
        if (r.ppl_files > 0) out << ", from the files " << r.ppl_files;
        out << "\n";
    }
    if (!zip_path.empty()) out << "bundled into " << zip_path << "\n";
    return 0;
}

}  // namespace cloq::cli
