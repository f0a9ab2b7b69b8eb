// `cloq eval --model DIR --data FILE [--seqlen 256] [--nsamples N] [--json] [quantization options | --profile P]
//  [calibration options]`:
// perplexity of the float model, or — when any quantization option is given — of the quantized base with the
// chosen adapter init folded in (Q + B·A), solved on the calibration's H (--calib defaults to --data).
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>

#include "cli.h"
#include "cloq/analysis/quantized_eval.h"
#include "cloq/base/atomic_file.h"
#include "cloq/export/exported_model.h"
#include "cloq/model/perplexity.h"
#include "commands.h"
#include "model_cli.h"

namespace cloq::cli {

int cmd_eval(const Args& args, std::ostream& out, std::ostream& err) {
    std::string model_path, data;
    PerplexityOptions popt;
    CalibSettings calib;
    calib.nsamples = 32;  // the demo's calibration size; the paper uses 128 x 2048
    calib.seqlen = 256;
    LayerSettings quant;
    DeviceChoice device = DeviceChoice::Auto;
    bool json = false, no_cache = false;
    std::string gptq_dir, adapter_dir, logits_json, profile_path;
    TextPart part;  // issue 5: evaluate an export's files
    ArgParser p("eval", "--model DIR --data FILE [options]",
                "Perplexity on a text: the whole file is tokenized once (BOS first) and cut into consecutive "
                "windows of --seqlen tokens; the first --nsamples windows (default all) are evaluated and "
                "ppl = exp(mean next-token NLL). Without quantization options the float model is evaluated; with "
                "any of them (e.g. --bits 2 --init cloq) every linear layer is replaced by its quantized base plus the "
                "initialized adapter, solved on calibration Hs (--calib defaults to --data).");
    p.option("model", &model_path, "DIR", "HF model folder or .gguf file", true);
    p.option("data", &data, "FILE", "evaluation text (UTF-8)", true);
    p.option("seqlen", &popt.seqlen, "L", "tokens per evaluation window");
    p.option("nsamples", &popt.nsamples, "N", "evaluate the first N windows (-1 = all)");
    add_text_part_option(p, "part", part, "evaluate this part of --data's tokens only, e.g. 0:0.5 (its first windows)");
    p.flag("json", &json, "print {\"ppl\": ..., \"tokens\": ...} as the last line");
    add_device_option(p, device);
    add_quant_options(p, quant);
    add_profile_option(p, profile_path);
    add_calib_options(p, calib, /*calib_required=*/false);
    add_no_cache_option(p, no_cache);
    p.section("Exported files (cloq quantize)");
    p.option("gptq", &gptq_dir, "DIR",
             "take the weights from an exported base (GPTQ checkpoint or float16 model, "
             "e.g. OUT/base); --model still gives the config and tokenizer");
    p.option("adapter", &adapter_dir, "DIR", "merge this PEFT adapter (e.g. OUT/adapter) into the weights");
    p.option("logits-json", &logits_json, "FILE", "also write the ids and logits of the first window as JSON");
    int greedy = 0;
    p.option("greedy", &greedy, "N",
             "with --logits-json: also write N greedy tokens continuing the window's first 32 tokens (what a "
             "client's generate() must reproduce)");
    if (!p.parse(args, out)) return 0;
    if (popt.nsamples == 0 || popt.nsamples < -1) throw UsageError("--nsamples must be positive (or -1 for all)");
    const bool quantized = quantization_requested(p);
    for (const char* o :
         {"calib", "calib-part", "calib-nsamples", "calib-seqlen", "seed", "sequential", "cache", "no-cache"})
        if (p.was_set(o) && !quantized)
            throw UsageError("--" + std::string(o) + " only applies to a quantized eval (give --bits/--init/...)");
    resolve_cache(p, calib, no_cache);
    if (calib.text_path.empty()) calib.text_path = data;
    if (quantized && calib.text_path == data && overlaps(calib.part, part))
        err << "note: calibration part " << to_string(calib.part) << " and evaluation part " << to_string(part)
            << " of " << data << " overlap; give --calib-part and --part that are disjoint for a fair measurement\n";
    const SettingsProfile profile = settings_profile(p, quant, profile_path);
    validate(profile.global);
    quant = profile.global;
    const bool exported = !gptq_dir.empty() || !adapter_dir.empty();
    if (exported && quantized)
        throw UsageError("--gptq/--adapter evaluate exported files; they exclude the quantization options");

    if (greedy < 0 || (greedy > 0 && logits_json.empty()))
        throw UsageError("--greedy N needs N >= 0 and --logits-json to write the tokens into");
    if (!logits_json.empty()) check_output_file(logits_json);  // before the work, not after it
    auto model =
        exported ? std::make_unique<LlamaModel>(open_exported_model(model_path, gptq_dir, adapter_dir),
                                                resolve_device(device), forward_dtype(resolve_device(device), false))
                 : open_llama(model_path, device);
    if (!model->files().tokenizer)
        throw Error(model_path + ": the model ships no tokenizer (tokenizer.model or tokenizer.json)");
    std::unique_ptr<QuantizedWeights> qw;
    Calibration cal;
    if (quantized) {
        std::vector<std::string> names;
        for (const auto& l : linear_layers(model->config())) names.push_back(l.name());
        qw = std::make_unique<QuantizedWeights>(resolve_profile(profile, names), quant.init);
        CalibrationRequest req;
        req.settings = calib;
        if (calib.sequential) {
            req.quantizer = qw->block_quantizer(model->config());
            req.quantizer_key = qw->key();
        }
        cal = run_calibration(*model, req, err);
        model->set_weight_transform(qw->transform(cal));
    }
    const auto tokens = text_part_tokens(tokenize_file(*model->files().tokenizer, data), part, data);
    TerminalProgress bar(err, quantized ? "quantizing + evaluating" : "evaluating");
    const auto r = perplexity(*model, tokens, popt, bar.progress());
    bar.finish();
    if (!logits_json.empty()) {
        const int64_t n = std::min<int64_t>(popt.seqlen, static_cast<int64_t>(tokens.size()));
        const std::vector<int32_t> ids(tokens.begin(), tokens.begin() + n);
        const auto logits = model->forward(torch::tensor(ids, torch::kLong).unsqueeze(0))[0]
                                .to(torch::kCPU, torch::kFloat64)
                                .contiguous();
        nlohmann::json j;
        j["ids"] = ids;
        j["logits"] = nlohmann::json::array();
        const double* d = logits.data_ptr<double>();
        for (int64_t t = 0; t < logits.size(0); ++t)
            j["logits"].push_back(std::vector<double>(d + t * logits.size(1), d + (t + 1) * logits.size(1)));
        if (greedy > 0) {
            const std::vector<int32_t> prompt(ids.begin(), ids.begin() + std::min<int64_t>(32, n));
            const auto all = model->generate_greedy(prompt, greedy);
            j["greedy_prompt"] = prompt;
            j["greedy"] = std::vector<int32_t>(all.begin() + static_cast<int64_t>(prompt.size()), all.end());
        }
        write_file_atomic(logits_json, j.dump());
    }
    std::string what = "float model";
    if (quantized)
        what = std::to_string(quant.quant.bits) + "-bit g" + std::to_string(quant.quant.group) + " " +
               to_string(quant.method) + " + " + to_string(quant.init) +
               (quant.init == InitMethod::Zero ? "" : " rank " + std::to_string(quant.rank)) +
               (profile_path.empty() ? "" : " (profile " + profile_path + ")");
    if (exported)
        what = "exported " + (gptq_dir.empty() ? std::string("float base") : gptq_dir) +
               (adapter_dir.empty() ? "" : " + adapter " + adapter_dir);
    out << "ppl " << fmt(r.ppl, 6) << " (mean NLL " << fmt(r.mean_nll, 6) << ") over " << r.tokens << " tokens ("
        << r.windows << " windows of " << popt.seqlen << "), " << what << ", " << fmt(r.seconds, 3) << " s\n";
    if (popt.nsamples > r.available_windows)
        err << "note: the text has only " << r.available_windows << " windows of " << popt.seqlen << "\n";
    if (json) {
        nlohmann::json j = {{"mean_nll", r.mean_nll}, {"windows", r.windows},   {"seqlen", popt.seqlen},
                            {"seconds", r.seconds},   {"quantized", quantized}, {"part", to_string(part)}};
        if (quantized) {
            j["settings"] = to_json(quant);
            if (!profile_path.empty()) j["profile"] = profile_path;
            j["calibration"] = {{"key", cal.key},
                                {"text", calib.text_path},
                                {"part", to_string(calib.part)},
                                {"nsamples", cal.nsamples},
                                {"seqlen", cal.seqlen},
                                {"seconds", cal.seconds},
                                {"from_cache", cal.from_cache}};
        }
        // The contract's keys lead the line: {"ppl": ..., "tokens": ..., then the rest} (nlohmann would sort them).
        const std::string rest = j.dump();
        out << "{\"ppl\":" << nlohmann::json(r.ppl).dump() << ",\"tokens\":" << r.tokens << "," << rest.substr(1)
            << "\n";
    }
    return 0;
}

}  // namespace cloq::cli
