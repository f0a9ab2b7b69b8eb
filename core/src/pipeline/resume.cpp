// The resume folder OUT.cloq-resume: created with its run key, one tensor file and one record file per finished
// block, read back by --resume (docs/design.md, File formats).
#include "pipeline/pipeline.h"

namespace cloq {

std::string resume_dir_for(const std::string& out_dir) {
    std::string d = out_dir;
    while (d.size() > 1 && d.back() == '/') d.pop_back();
    return d + ".cloq-resume";
}

}  // namespace cloq

namespace cloq::pipeline {

std::string block_stem(const std::string& resume, int layer) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "block_%04d", layer);
    return (fs::path(resume) / buf).string();
}

nlohmann::ordered_json record_json(const ModuleRecord& r) {
    nlohmann::ordered_json j;
    j["module"] = r.module;
    j["layer"] = r.layer;
    j["in"] = r.in;
    j["out"] = r.out;
    j["quantized"] = r.quantized;
    if (!r.note.empty()) j["note"] = r.note;
    j["settings"] = to_ordered(to_json(r.settings));
    nlohmann::ordered_json m;
    m[to_string(r.settings.init)] = discrepancy_json(r.init);
    if (r.has_zero) m["zero"] = discrepancy_json(r.zero);
    if (r.has_loftq) m["loftq"] = discrepancy_json(r.loftq);
    j["metrics"] = m;
    j["export_fro_rel"] = r.export_fro_rel;
    j["seconds"] = r.seconds;
    return j;
}

ModuleRecord record_from_json(const nlohmann::json& j, const std::string& where) {
    ModuleRecord r;
    r.module = j.at("module").get<std::string>();
    r.layer = j.at("layer").get<int>();
    r.in = j.at("in").get<int64_t>();
    r.out = j.at("out").get<int64_t>();
    r.quantized = j.at("quantized").get<bool>();
    if (j.contains("note")) r.note = j["note"].get<std::string>();
    r.settings = layer_settings_from_json(j.at("settings"), LayerSettings{}, where);
    const auto& m = j.at("metrics");
    r.init = discrepancy_from_json(m.at(to_string(r.settings.init)));
    if (m.contains("zero")) {
        r.zero = discrepancy_from_json(m["zero"]);
        r.has_zero = true;
    }
    if (m.contains("loftq")) {
        r.loftq = discrepancy_from_json(m["loftq"]);
        r.has_loftq = true;
    }
    r.export_fro_rel = j.at("export_fro_rel").get<double>();
    r.seconds = j.at("seconds").get<double>();
    return r;
}

void Pipeline::prepare_resume() {
    resume_ = resume_dir_for(opt_.out_dir);
    const std::string run_path = (fs::path(resume_) / "run.json").string();
    if (fs::exists(resume_)) {
        if (!opt_.resume)
            throw Error(resume_ +
                        " holds the finished blocks of an interrupted run: pass --resume to continue it, "
                        "or delete that folder to start over");
        if (!fs::exists(run_path))
            throw Error(resume_ + " is not a cloq resume folder (no run.json); delete it to start over");
        const auto run = read_json_file(run_path);
        if (!run.contains("key") || run["key"] != run_key_)
            throw Error(resume_ +
                        " was made with another model, calibration or settings; run with the same options "
                        "or delete that folder to start over");
        return;
    }
    if (opt_.resume) run_notices_.push_back("nothing to resume in " + resume_ + ": starting from the first block");
    // Built under a temporary name and renamed into place with its run.json, so a kill here never leaves a
    // resume folder that a rerun with --resume would have to refuse.
    nlohmann::ordered_json run;
    run["format"] = "cloq-resume";
    run["version"] = kResumeVersion;
    run["key"] = run_key_;
    run["out"] = opt_.out_dir;
    AtomicDir folder(resume_);
    write_json_file_atomic(folder.file("run.json"), run);
    folder.commit();
}

bool Pipeline::load_finished_block(int layer, Block& b) {
    const std::string stem = block_stem(resume_, layer);
    if (!fs::exists(stem + ".json") || !fs::exists(stem + ".safetensors")) return false;
    const auto j = read_json_file(stem + ".json");
    if (j.value("key", std::string()) != run_key_) return false;
    for (const auto& r : j.at("records")) b.records.push_back(record_from_json(r, stem + ".json"));
    for (const auto& r : b.records)  // the notices process_block gave when it made this block
        if (!r.quantized && r.note != "skipped by the profile") res_.notices.push_back(r.module + ": " + r.note);
    // The effective weights (for sequential calibration and the in-memory perplexity) from what the block stored.
    const SafetensorsFile f(stem + ".safetensors");
    for (const auto& r : b.records) {
        torch::Tensor Q;
        if (f.contains(r.module + ".qweight")) {
            GptqTensors t{f.tensor(r.module + ".qweight"), f.tensor(r.module + ".qzeros"),
                          f.tensor(r.module + ".scales"), f.tensor(r.module + ".g_idx")};
            Q = unpack_gptq(t, r.settings.quant.bits, r.settings.quant.group, r.settings.quant.sym, gptq_format(),
                            f.path() + ": " + r.module)
                    .Q;
        } else {
            Q = f.load_float(r.module + ".weight");
        }
        const std::string na = peft_tensor_name(r.module, 'A'), nb = peft_tensor_name(r.module, 'B');
        if (f.contains(na)) {
            const auto A = f.load_float(na), B = f.load_float(nb);
            const double alpha = r.settings.init == InitMethod::Eora && r.quantized ? static_cast<double>(A.size(0))
                                                                                    : r.settings.lora_alpha;
            Q = merge_lora(Q, lora_delta(A, B, alpha / static_cast<double>(A.size(0))));
        }
        b.eff[r.module] = Q;
    }
    return true;
}

void Pipeline::finish_block(int layer, Block&& b) {
    for (auto& r : b.records) res_.modules.push_back(std::move(r));
    if (keep_eval_) {
        for (auto& [k, v] : b.eff) eff_[k] = std::move(v);
        if (b.solved.empty()) solved_complete_ = false;
        for (auto& [k, v] : b.solved) solved_[k] = std::move(v);
    }
    ++blocks_done_;
    const double elapsed = t_layers_.seconds();
    const int left = static_cast<int>(mf_.config.num_layers) - blocks_done_;
    std::ostringstream s;
    s << "block " << layer + 1 << "/" << mf_.config.num_layers << " done";
    if (left > 0 && blocks_done_ > res_.resumed_blocks)
        s << ", about " << static_cast<int>(std::ceil(elapsed / (blocks_done_ - res_.resumed_blocks) * left))
          << " s left";
    progress(0.25 + 0.6 * blocks_done_ / std::max<int64_t>(1, mf_.config.num_layers), s.str());
}

}  // namespace cloq::pipeline
