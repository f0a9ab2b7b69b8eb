// OUT/base and OUT/adapter assembled from the finished blocks: the GPTQ checkpoint (or float16 model) with its
// config, the PEFT adapter with its config, streamed tensor by tensor.
#include "pipeline/pipeline.h"

namespace cloq::pipeline {

void Pipeline::assemble(const std::string& dir, const Calibration& calib) {
    const auto& src = *mf_.weights;
    std::vector<SafetensorsFile> blocks;
    for (int l = 0; l < mf_.config.num_layers; ++l) blocks.emplace_back(block_stem(resume_, l) + ".safetensors");
    const Progress wp = progress_.slice(0.85, 0.92);

    // Module infos for the configs.
    std::vector<GptqModuleInfo> ginfos;
    std::vector<PeftModuleInfo> pinfos;
    std::vector<std::string> all_modules;
    for (const auto& r : res_.modules) {
        all_modules.push_back(r.module);
        ginfos.push_back({r.module, r.quantized, r.settings.quant.bits, r.settings.quant.group, r.settings.quant.sym,
                          r.settings.act_order});
        const auto& f = blocks.at(static_cast<size_t>(r.layer));
        const std::string na = peft_tensor_name(r.module, 'A');
        const int64_t rank = f.contains(na) ? f.info(na).shape.at(0) : 0;
        const double alpha =
            r.settings.init == InitMethod::Eora && r.quantized ? static_cast<double>(rank) : r.settings.lora_alpha;
        pinfos.push_back({r.module, rank, alpha});
    }

    if (opt_.write_base) {
        const std::string base = (fs::path(dir) / "base").string();
        fs::create_directory(base);
        std::vector<SafetensorsEntry> entries;
        auto from_block = [&](size_t l, const std::string& n) {
            const auto& f = blocks[l];
            const auto& info = f.info(n);
            SafetensorsEntry e{n, f.tensor(n).scalar_type(), info.shape, [&f, n] { return f.tensor(n); }};
            return e;
        };
        std::set<std::string> done;
        for (const auto& n : src.names()) {
            if (n.rfind("model.layers.", 0) == 0) continue;  // block tensors come from the block files, in order
            auto t = stored_other(src, n, opt_.format);
            entries.push_back(
                {n, t.scalar_type(), t.sizes().vec(), [&src, n, this] { return stored_other(src, n, opt_.format); }});
            if (n == "model.embed_tokens.weight") {
                for (size_t l = 0; l < blocks.size(); ++l)
                    for (const auto& bn : blocks[l].names())
                        if (!is_adapter_tensor(bn)) entries.push_back(from_block(l, bn));
                done.insert("blocks");
            }
        }
        if (!done.count("blocks"))  // no embedding tensor first (unusual naming): blocks at the end
            for (size_t l = 0; l < blocks.size(); ++l)
                for (const auto& bn : blocks[l].names())
                    if (!is_adapter_tensor(bn)) entries.push_back(from_block(l, bn));
        nlohmann::ordered_json source_config;
        const auto cfg_path = fs::path(opt_.model_path) / "config.json";
        if (fs::is_regular_file(cfg_path))
            source_config = read_json_file(cfg_path.string());
        else
            source_config = to_ordered(model_config_to_hf_json(mf_.config));
        if (opt_.format == BaseFormat::Fp16) {
            write_safetensors_streamed((fs::path(base) / "model.safetensors").string(), entries, {{"format", "pt"}},
                                       wp.slice(0, 0.7));
            auto c = source_config;
            c.erase("quantization_config");
            c["torch_dtype"] = "float16";
            write_json_file_atomic((fs::path(base) / "config.json").string(), c);
        } else {
            const LayerSettings& g = opt_.profile.global;
            GptqExportConfig gc;
            gc.bits = g.quant.bits;
            gc.group_size = g.quant.group;
            gc.desc_act = g.act_order;
            gc.sym = g.quant.sym;
            gc.damp_percent = g.damp;
            gc.static_groups = g.static_groups;
            gc.true_sequential = true;
            gc.format = gptq_format();
            write_gptq_checkpoint(base, source_config, gptq_quantization_config(gc, ginfos, &res_.notices), entries,
                                  wp.slice(0, 0.7));
            // Checked with GPTQModel 7.7 (tests/interop/check_current_stack.sh): its own loader refuses every
            // asymmetric v1 checkpoint it did not make (loader.py: "only supported if produced by gptqmodel").
            if (gc.format == GptqFormat::V1 && !gc.sym)
                res_.notices.push_back(
                    "format gptq (v1), asymmetric: transformers + optimum and vLLM load it; GPTQModel's own loader "
                    "(GPTQModel.load) refuses asymmetric v1 files from other quantizers: export with --format gptq_v2 "
                    "for it");
        }
        if (fs::is_directory(opt_.model_path)) {
            copy_tokenizer_files(opt_.model_path, base);
        } else {
            // A GGUF model carries its tokenizer and generation defaults as metadata: written out as HF files, the
            // base is a complete model folder that AutoTokenizer and a server read as they are.
            const auto gguf = GgufFile::open(opt_.model_path);
            if (write_hf_tokenizer_files(*gguf, base).empty())
                res_.notices.push_back(opt_.model_path + ": no tokenizer metadata; OUT/base has no tokenizer files");
            write_json_file_atomic((fs::path(base) / "generation_config.json").string(),
                                   generation_config_from_gguf(*gguf));
        }
    }
    if (opt_.write_adapter) {
        const std::string ad = (fs::path(dir) / "adapter").string();
        fs::create_directory(ad);
        std::vector<SafetensorsEntry> entries;
        for (size_t l = 0; l < blocks.size(); ++l)
            for (const auto& bn : blocks[l].names())
                if (is_adapter_tensor(bn)) {
                    const auto& f = blocks[l];
                    entries.push_back(
                        {bn, f.tensor(bn).scalar_type(), f.info(bn).shape, [&f, bn] { return f.tensor(bn); }});
                }
        if (entries.empty()) {
            res_.notices.push_back("no module has an adapter (rank 0 everywhere): OUT/adapter not written");
            fs::remove(ad);
        } else {
            write_safetensors_streamed((fs::path(ad) / "adapter_model.safetensors").string(), entries,
                                       {{"format", "pt"}}, wp.slice(0.7, 1.0));
            write_json_file_atomic((fs::path(ad) / "adapter_config.json").string(),
                                   peft_adapter_config(pinfos, all_modules, adapter_base_reference()));
        }
    }
    if (opt_.write_profile) {
        // The settings actually used: the profile as given (its overrides are what chose the per-module values).
        auto p = to_json(opt_.profile);
        p["calibration"] = to_ordered(to_json(opt_.calib));
        p["export"] = {{"format", to_string(opt_.format)},
                       {"adapter_dtype", std::string(c10::toString(opt_.adapter_dtype))}};
        write_json_file_atomic((fs::path(dir) / "profile.json").string(), p);
    }
    (void)calib;
}

std::string Pipeline::adapter_base_reference() const {
    // PEFT resolves base_model_name_or_path with from_pretrained: an HF folder is that folder; a .gguf file is
    // not loadable that way, so a GGUF model's adapter names the exported base (OUT/base, its final path) when one
    // is written, and the GGUF file otherwise (a user then loads it with gguf_file=).
    if (fs::is_directory(opt_.model_path) || !opt_.write_base) return opt_.model_path;
    return (fs::absolute(opt_.out_dir) / "base").lexically_normal().string();
}

}  // namespace cloq::pipeline
