// `cloq finetune --model M --train TEXT --eval TEXT --out DIR [--calib TEXT] [--inits ...] [--splits ...] [options]`:
// LoRA fine-tuning of the quantized model from each init (docs/design.md, Fine-tuning). OUT receives curves.json
// and curves.csv (train loss and lr per step, eval perplexity every --eval-every steps, time per step, tokens/s,
// peak memory) and adapters/<init>/ with each run's fine-tuned PEFT adapter. OUT appears only when every run ended.
#include <torch/torch.h>

#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "cli.h"
#include "cloq/base/atomic_file.h"
#include "cloq/base/timing.h"
#include "cloq/finetune/finetune.h"
#include "cloq/model/perplexity.h"
#include "commands.h"
#include "model_cli.h"

namespace cloq::cli {

namespace {
nlohmann::ordered_json text_json(const std::string& path, const TextPart& part, size_t tokens, int seqlen) {
    return {{"text", path},
            {"part", to_string(part)},
            {"tokens", tokens},
            {"windows", static_cast<int64_t>(tokens) / seqlen},
            {"seqlen", seqlen}};
}

nlohmann::ordered_json curve_json(const FineTuneCurve& c) {
    nlohmann::ordered_json j;
    j["label"] = c.init.label();
    j["init"] = to_string(c.init.init);
    j["split"] = to_string(c.init.split);
    j["adapter"] = "adapters/" + c.init.label();
    j["trainable_parameters"] = c.trainable_parameters;
    j["setup_seconds"] = c.setup_seconds;
    j["seconds_per_step"] = c.seconds_per_step;
    j["step_seconds"] = c.step_seconds;
    j["tokens_per_second"] = c.tokens_per_second;
    j["peak_rss_bytes"] = c.peak_rss_bytes;
    j["eval"] = nlohmann::ordered_json::array();
    for (const auto& [step, ppl] : c.eval_ppl) j["eval"].push_back({{"step", step}, {"ppl", ppl}});
    j["train_loss"] = c.train_loss;
    j["lr"] = c.lr;
    return j;
}

std::string curves_csv(const std::vector<FineTuneCurve>& curves) {
    std::ostringstream o;
    o << std::setprecision(9) << "run,step,train_loss,lr,eval_ppl\n";
    for (const auto& c : curves) {
        // One row per step done (0..N): the loss and lr of step t are those of the update that led to t.
        size_t e = 0;
        for (size_t t = 0; t <= c.train_loss.size(); ++t) {
            o << c.init.label() << "," << t << ",";
            if (t > 0)
                o << c.train_loss[t - 1] << "," << c.lr[t - 1];
            else
                o << ",";
            o << ",";
            if (e < c.eval_ppl.size() && c.eval_ppl[e].first == static_cast<int>(t)) o << c.eval_ppl[e++].second;
            o << "\n";
        }
    }
    return o.str();
}

double ppl_at(const FineTuneCurve& c, int step) {
    for (const auto& [s, p] : c.eval_ppl)
        if (s == step) return p;
    return -1;
}
}  // namespace

int cmd_finetune(const Args& args, std::ostream& out, std::ostream& err) {
    std::string model_path, train_path, eval_path, out_dir, profile_path, inits = "zero,loftq,cloq", splits = "default";
    TextPart train_part, eval_part;
    CalibSettings calib;
    calib.nsamples = 32;
    calib.seqlen = 256;
    LayerSettings quant;
    quant.rank = 16;
    FineTuneOptions ft;
    ft.eval_every = 0;  // 0 until parsed: the default is a quarter of --steps
    DeviceChoice device = DeviceChoice::Cpu;
    bool no_cache = false, json = false;
    ArgParser p("finetune", "--model DIR --train FILE --eval FILE --out DIR [options]",
                "LoRA fine-tuning of the quantized model from each initialization, to see what each init trains "
                "into. Every linear layer gets the quantized base Q of its init (frozen) and a trainable LoRA "
                "adapter started from the init (zero = QLoRA's: lora_B = 0, random lora_A). AdamW with weight "
                "decay, linear warmup + cosine decay, gradient clipping (paper Table 9). Calibration, training and "
                "evaluation should come from disjoint parts of the text(s): use --calib-part, --train-part and "
                "--eval-part. OUT gets curves.json, curves.csv and adapters/<init>/ (PEFT files for the base that "
                "`cloq quantize` exports with the same settings and init).");
    p.section("Model and texts");
    p.option("model", &model_path, "DIR", "HF model folder or .gguf file", true);
    p.option("train", &train_path, "FILE", "training text (UTF-8); cut into windows of --seqlen", true);
    add_text_part_option(p, "train-part", train_part, "train on this part of --train's tokens only, e.g. 0.25:0.75");
    p.option("eval", &eval_path, "FILE", "evaluation text (UTF-8)", true);
    add_text_part_option(p, "eval-part", eval_part, "evaluate on this part of --eval's tokens only, e.g. 0:0.25");
    p.option("out", &out_dir, "DIR", "new or empty output folder (written when every run has ended)", true);
    p.flag("json", &json, "print curves.json's summary (final perplexities) as the last line");
    p.section("Fine-tuning");
    p.option("inits", &inits, "LIST",
             "comma-separated inits to fine-tune from: zero, svd, loftq, cloq, eora, qera-exact, qera-approx");
    p.option("splits", &splits, "LIST", "comma-separated splits for cloq and svd: default, sqrt, u-vs (paper Table 6)");
    p.option("steps", &ft.steps, "N", "optimizer steps per run");
    p.option("batch", &ft.batch, "B", "windows per step");
    p.option("seqlen", &ft.seqlen, "L", "tokens per training and evaluation window");
    p.option("lr", &ft.lr, "F", "peak learning rate (paper Table 10: 4e-4..7e-4)");
    p.option("weight-decay", &ft.weight_decay, "F", "AdamW weight decay");
    p.option("warmup", &ft.warmup_ratio, "F", "warmup as a fraction of --steps");
    p.option("max-grad-norm", &ft.max_grad_norm, "F", "clip the global gradient norm (0 = off)");
    p.option("eval-every", &ft.eval_every, "K", "evaluate every K steps (default: --steps / 4)");
    p.option("eval-windows", &ft.eval_windows, "N", "evaluate on the first N windows (-1 = all)");
    p.option("train-seed", &ft.seed, "S", "seed for the window order and zero init's random lora_A");
    p.flag("grad-checkpoint", &ft.grad_checkpoint,
           "gradient checkpointing: keep only each block's input and recompute the block in the backward (less "
           "memory, one more forward per step; the same gradients)");
    std::string autocast = "off";
    p.option("autocast", &autocast, "P",
             "mixed-precision training forward: off (float32), bfloat16 (CPU or CUDA) or float16 (CUDA, with dynamic "
             "loss scaling); weights, adapters, optimizer and evaluation stay float32");
    add_device_option(p, device);
    add_quant_options(p, quant);
    add_profile_option(p, profile_path);
    add_calib_options(p, calib, /*calib_required=*/false);
    add_no_cache_option(p, no_cache);
    if (!p.parse(args, out)) return 0;
    for (const char* o : {"init", "split"})
        if (p.was_set(o))
            throw UsageError("--" + std::string(o) + " picks one init; fine-tuning takes --inits and --splits lists");
    if (ft.eval_every == 0) ft.eval_every = std::max(1, ft.steps / 4);
    try {
        ft.autocast = parse_autocast(autocast);
        validate(ft);
        if (ft.autocast == Autocast::Float16 && device == DeviceChoice::Cpu)
            throw Error("--autocast float16 needs --device cuda (LibTorch's CPU autocast has bfloat16 only)");
    } catch (const Error& e) {
        throw UsageError(e.what());
    }
    const std::vector<FineTuneInit> runs = parse_finetune_inits(inits, splits);
    resolve_cache(p, calib, no_cache);
    if (calib.text_path.empty()) calib.text_path = train_path;
    auto overlap_note = [&](const std::string& a, const TextPart& pa, const char* na, const std::string& b,
                            const TextPart& pb, const char* nb) {
        if (a == b && overlaps(pa, pb))
            err << "note: " << na << " part " << to_string(pa) << " and " << nb << " part " << to_string(pb) << " of "
                << a << " overlap; give disjoint parts for a fair measurement\n";
    };
    overlap_note(train_path, train_part, "training", eval_path, eval_part, "evaluation");
    overlap_note(calib.text_path, calib.part, "calibration", eval_path, eval_part, "evaluation");
    const SettingsProfile profile = settings_profile(p, quant, profile_path);
    validate(profile.global);

    // Everything that can fail cheaply fails before calibration: the output folder, the model, the texts.
    const bool out_exists = check_out_dir(out_dir);
    AtomicDir dir(out_dir, /*replace_existing=*/out_exists);
    const auto model = open_llama(model_path, device);
    check_autocast_device(ft.autocast, model->device());  // before calibration, not in the tuner after it
    if (!model->files().tokenizer)
        throw Error(model_path + ": the model ships no tokenizer (tokenizer.model or tokenizer.json)");
    if (ft.seqlen > model->config().max_position_embeddings)
        throw UsageError("--seqlen " + std::to_string(ft.seqlen) + " exceeds the model's context of " +
                         std::to_string(model->config().max_position_embeddings) + " tokens");
    const auto& tok = *model->files().tokenizer;
    const auto train_tokens = text_part_tokens(tokenize_file(tok, train_path), train_part, train_path);
    const auto eval_tokens = text_part_tokens(tokenize_file(tok, eval_path), eval_part, eval_path);
    if (static_cast<int64_t>(train_tokens.size()) / ft.seqlen < ft.batch)
        throw Error(train_path + ": part " + to_string(train_part) + " holds " + std::to_string(train_tokens.size()) +
                    " tokens, fewer than one batch of " + std::to_string(ft.batch) + " windows of " +
                    std::to_string(ft.seqlen));
    if (static_cast<int64_t>(eval_tokens.size()) < ft.seqlen)
        throw Error(eval_path + ": part " + to_string(eval_part) + " holds " + std::to_string(eval_tokens.size()) +
                    " tokens, fewer than one window of " + std::to_string(ft.seqlen));
    std::vector<std::string> names;
    for (const auto& l : linear_layers(model->config())) names.push_back(l.name());
    const ResolvedProfile resolved = resolve_profile(profile, names);

    CalibrationRequest req;
    req.settings = calib;
    const Calibration cal = run_calibration(*model, req, err);

    std::vector<FineTuneCurve> curves;
    const std::string adapters_dir = dir.file("adapters");
    std::filesystem::create_directories(adapters_dir);
    for (const FineTuneInit& run : runs) {
        TerminalProgress bar(err, "fine-tuning " + run.label());
        const Stopwatch setup;
        LoraFineTuner tuner(model->files(), resolved, run, cal, ft, model->device(), bar.progress().slice(0.0, 0.1));
        const double setup_seconds = setup.seconds();
        FineTuneCurve c = finetune(tuner, train_tokens, eval_tokens, ft, bar.progress().slice(0.1, 1.0));
        c.init = run;
        c.setup_seconds = setup_seconds;
        bar.finish();
        const std::string adir = adapters_dir + "/" + run.label();
        std::filesystem::create_directories(adir);
        tuner.write_peft_adapter(adir, model_path);
        out << run.label() << ": ppl " << fmt(c.eval_ppl.front().second, 6) << " -> "
            << fmt(c.eval_ppl.back().second, 6) << " after " << ft.steps << " steps (" << fmt(c.seconds_per_step, 3)
            << " s/step, " << fmt(c.tokens_per_second, 4) << " tokens/s)\n";
        curves.push_back(std::move(c));
    }

    nlohmann::ordered_json j;
    j["format"] = "cloq-finetune";
    j["version"] = 1;
    j["model"] = model_path;
    j["settings"] = nlohmann::ordered_json::parse(to_json(profile.global).dump());
    if (!profile_path.empty()) j["profile"] = profile_path;
    j["calibration"] = {{"text", calib.text_path},  {"part", to_string(calib.part)},
                        {"nsamples", cal.nsamples}, {"seqlen", cal.seqlen},
                        {"seed", calib.seed},       {"key", cal.key}};
    j["train"] = text_json(train_path, train_part, train_tokens.size(), ft.seqlen);
    j["eval"] = text_json(eval_path, eval_part, eval_tokens.size(), ft.seqlen);
    j["eval"]["windows_evaluated"] = ft.eval_windows < 0
                                         ? static_cast<int64_t>(eval_tokens.size()) / ft.seqlen
                                         : std::min<int64_t>(ft.eval_windows, eval_tokens.size() / ft.seqlen);
    j["options"] = {{"steps", ft.steps},
                    {"batch", ft.batch},
                    {"seqlen", ft.seqlen},
                    {"lr", ft.lr},
                    {"weight_decay", ft.weight_decay},
                    {"warmup_ratio", ft.warmup_ratio},
                    {"max_grad_norm", ft.max_grad_norm},
                    {"eval_every", ft.eval_every},
                    {"seed", ft.seed},
                    {"grad_checkpoint", ft.grad_checkpoint},
                    {"autocast", to_string(ft.autocast)},
                    {"device", model->device().str()},
                    {"threads", torch::get_num_threads()}};
    j["runs"] = nlohmann::ordered_json::array();
    for (const auto& c : curves) j["runs"].push_back(curve_json(c));
    write_file_atomic(dir.file("curves.json"), j.dump(2) + "\n");
    write_file_atomic(dir.file("curves.csv"), curves_csv(curves));
    dir.commit();

    // The table a README wants: perplexity at steps 0, N/4, N/2 and N (where evaluated).
    out << "\n" << std::left << std::setw(12) << "init";
    const int marks[] = {0, ft.steps / 4, ft.steps / 2, ft.steps};
    for (int m : marks) out << std::right << std::setw(12) << ("step " + std::to_string(m));
    out << "\n";
    for (const auto& c : curves) {
        out << std::left << std::setw(12) << c.init.label();
        for (int m : marks) {
            const double v = ppl_at(c, m);
            out << std::right << std::setw(12) << (v < 0 ? std::string("-") : fmt(v, 5));
        }
        out << "\n";
    }
    out << "wrote " << out_dir << "/curves.json, curves.csv and adapters/\n";
    if (json) {
        nlohmann::ordered_json s = nlohmann::ordered_json::object();
        for (const auto& c : curves) s[c.init.label()] = c.eval_ppl.back().second;
        out << nlohmann::ordered_json{{"final_ppl", s}}.dump() << "\n";
    }
    return 0;
}

}  // namespace cloq::cli
