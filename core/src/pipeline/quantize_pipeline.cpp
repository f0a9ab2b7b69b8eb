#include "cloq/pipeline/quantize_pipeline.h"

#include "pipeline/pipeline.h"

namespace cloq {

std::string to_string(BaseFormat f) {
    switch (f) {
    case BaseFormat::Gptq:
        return "gptq";
    case BaseFormat::GptqV2:
        return "gptq_v2";
    case BaseFormat::Fp16:
        return "fp16";
    }
    return "?";
}

BaseFormat parse_base_format(const std::string& s) {
    if (s == "gptq") return BaseFormat::Gptq;
    if (s == "gptq_v2") return BaseFormat::GptqV2;
    if (s == "fp16") return BaseFormat::Fp16;
    throw Error("unknown base format '" + s + "' (use gptq, gptq_v2 or fp16)");
}

}  // namespace cloq

namespace cloq::pipeline {

QuantizeExportResult Pipeline::run() {
    const Stopwatch t_start;
    if (opt_.out_dir.empty()) throw Error("no output folder given");
    if (fs::exists(opt_.out_dir))
        throw Error("output folder " + opt_.out_dir +
                    " already exists; choose another name or delete it (nothing was written)");
    AtomicDir out(opt_.out_dir);  // the temporary sibling: an unwritable location fails here, before any work
    res_.out_dir = opt_.out_dir;
    progress(0.0, "opening " + opt_.model_path);

    mf_ = open_model(opt_.model_path);
    layers_ = linear_layers(mf_.config);
    for (const auto& L : layers_) {
        bool skip = false;
        settings_[L.name()] = opt_.profile.for_module(L.name(), &skip);
        if (skip) skipped_.insert(L.name());
    }
    keep_eval_ = !opt_.eval_text.empty();

    // What a finished block depends on: model, calibration, settings, format.
    ContentHash h;
    h.update("cloq-quantize-resume").update_u64(kResumeVersion);
    h.update(mf_.weights->fingerprint());
    h.update(to_json(opt_.calib).dump());
    h.update(to_json(opt_.profile).dump());
    h.update(to_string(opt_.format)).update(std::string(c10::toString(opt_.adapter_dtype)));
    h.update_u64(opt_.compare).update_u64(opt_.spectral);
    run_key_ = h.hex();

    const torch::Device dev = resolve_device(opt_.device);
    device_ = dev;
    LlamaModel model(mf_, dev, forward_dtype(dev, false));
    bool created_resume = !fs::exists(resume_dir_for(opt_.out_dir));
    prepare_resume();
    try {
        CalibrationRequest req;
        req.settings = opt_.calib;
        t_layers_.restart();
        if (opt_.calib.sequential) {
            // GPTQ-style: each block is quantized as soon as its inputs (from the quantized blocks before) are known,
            // and the model continues with what the files will hold.
            req.quantizer_key = to_json(opt_.profile).dump() + to_string(opt_.format);
            req.quantizer = [this](int layer, const BlockHessians& H, BlockWeights& w) {
                Block b;
                if (load_finished_block(layer, b))
                    ++res_.resumed_blocks;
                else
                    b = process_block(
                        layer, [&H](InputGroup g) { return H[static_cast<size_t>(g)]; }, layer_progress(layer));
                for (const auto& L : block_linear_layers(mf_.config, layer))
                    w.linear(L.module) =
                        b.eff.at(L.name()).to(w.linear(L.module).device(), w.linear(L.module).scalar_type());
                finish_block(layer, std::move(b));
            };
        }
        const Calibration calib = calibrate(model, req, progress_.slice(0.0, opt_.calib.sequential ? 0.85 : 0.25));
        for (const auto& n : calib.notices) res_.notices.push_back(n);
        if (!opt_.calib.sequential) {
            t_layers_.restart();
            for (int l = 0; l < mf_.config.num_layers; ++l) {
                Block b;
                if (load_finished_block(l, b))
                    ++res_.resumed_blocks;
                else
                    b = process_block(
                        l, [&calib, l](InputGroup g) { return calib.hessian(l, g); }, layer_progress(l));
                finish_block(l, std::move(b));
            }
        }
        if (res_.resumed_blocks > 0)
            run_notices_.push_back("resumed " + std::to_string(res_.resumed_blocks) + " finished block(s) from " +
                                   resume_);
        layer_seconds_ = t_layers_.seconds();

        assemble(out.path(), calib);
        if (keep_eval_) evaluate(out.path());
        res_.seconds_total = t_start.seconds();
        res_.report = report_json(calib);
        if (keep_eval_) {
            nlohmann::ordered_json p;
            p["text"] = opt_.eval_text;
            if (!opt_.eval_part.whole()) p["part"] = to_string(opt_.eval_part);
            p["seqlen"] = opt_.eval_seqlen;
            p["nsamples"] = opt_.eval_nsamples;
            p["float"] = res_.ppl_float;
            if (res_.ppl_solved > 0) p["solved_fp32"] = res_.ppl_solved;
            p["export_in_memory"] = res_.ppl_export;
            if (res_.ppl_files > 0) p["from_files"] = res_.ppl_files;
            res_.report["perplexity"] = p;
        }
        // Everything that differs between two runs of the same export: durations, the calibration cache, resuming.
        nlohmann::ordered_json per_module;
        for (const auto& m : res_.modules) per_module[m.module] = m.seconds;
        res_.report["timings"] = {
            {"calibration", calib.seconds}, {"calibration_from_cache", calib.from_cache}, {"layers", layer_seconds_},
            {"total", t_start.seconds()},   {"resumed_blocks", res_.resumed_blocks},      {"modules", per_module}};
        if (opt_.write_report) {
            write_json_file_atomic((fs::path(out.path()) / "report.json").string(), res_.report);
            write_file_atomic((fs::path(out.path()) / "report.csv").string(), report_csv());
        }
        if (opt_.add_files) opt_.add_files(out.path());
        progress(0.995, "finishing " + opt_.out_dir);
        out.commit();
    } catch (...) {
        // Finished blocks stay for --resume; a resume folder with none (we just created it) is removed.
        if (created_resume && blocks_done_ == res_.resumed_blocks && blocks_done_ == 0) remove_folder_atomic(resume_);
        throw;
    }
    for (auto& n : run_notices_) res_.notices.push_back(std::move(n));
    remove_folder_atomic(resume_);  // OUT is complete: the checkpoints are no longer needed
    res_.seconds_total = t_start.seconds();
    progress(1.0, "wrote " + opt_.out_dir);
    return res_;
}

}  // namespace cloq::pipeline

namespace cloq {

QuantizeExportResult run_quantize_export(const QuantizeExportOptions& opt, const Progress& progress) {
    pipeline::Pipeline p(opt, progress);
    return p.run();
}

}  // namespace cloq
