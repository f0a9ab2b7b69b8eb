#include "export_direct.h"

#include <torch/torch.h>

#include <QFileInfo>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cloq/atomic_file.h"
#include "cloq/error.h"
#include "cloq/gptq_checkpoint.h"
#include "cloq/gptq_pack.h"
#include "cloq/hessian_factor.h"
#include "cloq/layer_solver.h"
#include "cloq/model_config.h"
#include "cloq/peft_export.h"
#include "cloq/quantized_eval.h"
#include "cloq/safetensors.h"
#include "cloq/safetensors_stream.h"
#include "model_session.h"

namespace fs = std::filesystem;

namespace cloq::ui {
namespace {

nlohmann::ordered_json metrics_json(const Discrepancy& d) {
    return {{"fro", d.fro}, {"spec", d.spec}, {"fro_rel", d.fro_rel}, {"spec_rel", d.spec_rel}};
}

// One linear module's outcome, for the report.
struct Record {
    std::string module;
    bool quantized = true;
    std::string note;
    LayerSettings settings;
    Discrepancy init, zero, loftq;
};

std::string csv_line(const Record& r, const std::string& init, const Discrepancy& d) {
    std::ostringstream s;
    s.precision(10);
    s << r.module << ',' << (r.quantized ? 1 : 0) << ',' << r.settings.quant.bits << ',' << r.settings.quant.group
      << ',' << r.settings.rank << ',' << to_string(r.settings.split) << ',' << init << ',' << d.fro << ',' << d.spec
      << ',' << d.fro_rel << ',' << d.spec_rel << '\n';
    return s.str();
}

}  // namespace

void run_direct_export(const ModelSession& session, const SettingsProfile& profile, const DirectExportOptions& opt,
                       const Progress& progress) {
    if (opt.out_dir.empty()) throw Error("export: choose an output folder");
    if (fs::exists(opt.out_dir))
        throw Error(opt.out_dir + ": the output folder already exists; choose a new name (nothing was overwritten)");
    const bool fp16 = opt.base_format == "fp16";
    if (!fp16 && opt.base_format != "gptq" && opt.base_format != "gptq_v2")
        throw Error("export: base format '" + opt.base_format + "' is not gptq, gptq_v2 or fp16");
    const GptqFormat gfmt = opt.base_format == "gptq_v2" ? GptqFormat::V2 : GptqFormat::V1;
    AtomicDir out(opt.out_dir);  // an unwritable location fails here, before any work

    const WeightSource& src = *session.files.weights;
    std::map<std::string, torch::Tensor> stored;  // linear module weight name -> what the base holds (fp16 format)
    std::map<std::string, GptqTensors> packed;    // module -> packed tensors (GPTQ formats)
    std::vector<GptqModuleInfo> ginfos;
    std::vector<PeftModuleAdapter> adapters;
    std::vector<std::string> all_modules;
    std::vector<Record> records;
    std::map<std::string, std::shared_ptr<const HessianFactor>> factors;
    int current_block = -1;

    const size_t n = session.layers.size();
    const Progress layers_p = progress.slice(0.0, 0.8);
    for (size_t i = 0; i < n; ++i) {
        const LinearLayer& L = session.layers[i];
        const std::string name = L.name();
        const Progress p = layers_p.slice(double(i) / n, double(i + 1) / n);
        p(0.0, "solving " + name);
        all_modules.push_back(name);
        bool skipped = false;
        const LayerSettings s = settings_for_layer(profile.for_module(name, &skipped), L);
        Record rec;
        rec.module = name;
        rec.settings = s;
        const torch::Tensor W = src.load(L.weight_name());
        std::string why;
        const bool packable = gptq_packable(L.out, L.in, &why);
        if (skipped || (!fp16 && !packable)) {
            // Kept as the float weight, without an adapter (GPTQ loaders cannot hold this shape, or the profile skips it).
            rec.quantized = false;
            rec.note = skipped ? "skipped by the profile" : why;
            ginfos.push_back({name, false, s.quant.bits, s.quant.group, s.quant.sym, s.act_order});
            stored[L.weight_name()] = fp16 ? W.to(torch::kFloat16) : W;
            records.push_back(rec);
            continue;
        }
        if (L.layer != current_block) {
            factors.clear();
            current_block = L.layer;
        }
        auto& factor = factors[to_string(L.group)];
        if (!factor) factor = std::make_shared<HessianFactor>(session.hessian(L), name, p.slice(0.0, 0.2));
        LayerSolver solver(W, factor, name);
        solver.update(s, p.slice(0.2, 0.6));
        solver.ensure(InitMethod::Loftq, p.slice(0.6, 0.9));
        const InitMethod m = s.init;
        if (m != InitMethod::Zero && m != InitMethod::Cloq && m != InitMethod::Loftq) solver.ensure(m, p);
        rec.init = solver.metrics(m);
        rec.zero = solver.metrics(InitMethod::Zero);
        rec.loftq = solver.metrics(InitMethod::Loftq);
        if (fp16) {
            stored[L.weight_name()] = solver.base(m).to(torch::kCPU).to(torch::kFloat16);
        } else {
            QuantizedWeight qw;
            if (m == InitMethod::Loftq) {
                if (!solver.loftq().int_weight)
                    throw Error(name + ": LoftQ with the NF quantizer has no integer codes a GPTQ checkpoint can hold; "
                                       "choose the fp16 base format or LoftQ's INT quantizer");
                qw = *solver.loftq().int_weight;
            } else {
                qw = solver.quantized();
            }
            packed[name] = pack_gptq(round_scales_to_fp16(qw), gfmt, name);
        }
        ginfos.push_back({name, true, s.quant.bits, s.quant.group, s.quant.sym, s.act_order});
        if (s.rank > 0 && m != InitMethod::Zero) {
            PeftModuleAdapter a;
            a.module = name;
            a.solved = solver.init(m);
            a.solved.A = a.solved.A.to(torch::kCPU);
            a.solved.B = a.solved.B.to(torch::kCPU);
            a.lora_alpha = m == InitMethod::Eora ? double(s.rank) : s.lora_alpha;
            adapters.push_back(std::move(a));
        }
        records.push_back(rec);
        p(1.0, name);
    }

    const std::string model_path = session.dir.toStdString();
    if (opt.write_base) {
        progress(0.8, "writing the quantized base");
        const std::string base = out.file("base");
        fs::create_directories(base);
        std::vector<SafetensorsEntry> entries;
        for (const std::string& tn : src.names()) {
            if (auto it = stored.find(tn); it != stored.end()) {
                const torch::Tensor t = it->second;
                entries.push_back({tn, t.scalar_type(), t.sizes().vec(), [t] { return t; }});
                continue;
            }
            const std::string module = tn.size() > 7 ? tn.substr(0, tn.size() - 7) : tn;  // drop ".weight"
            if (auto it = packed.find(module); it != packed.end() && tn == module + ".weight") {
                for (auto& e : gptq_entries(module, it->second)) entries.push_back(std::move(e));
                continue;
            }
            const auto shape = src.shape(tn);
            const torch::ScalarType dt = fp16 ? torch::kFloat16 : torch::kFloat32;
            entries.push_back({tn, dt, shape, [&src, tn, dt] { return src.load(tn).to(dt).contiguous(); }});
        }
        nlohmann::ordered_json source_config;
        const fs::path cfg = fs::path(model_path) / "config.json";
        if (fs::is_regular_file(cfg)) {
            source_config = read_json_file(cfg.string());
        } else {
            source_config = nlohmann::ordered_json::parse(model_config_to_hf_json(session.files.config).dump());
        }
        const Progress wp = progress.slice(0.8, 0.9);
        if (fp16) {
            write_safetensors_streamed((fs::path(base) / "model.safetensors").string(), entries, {{"format", "pt"}}, wp);
            source_config.erase("quantization_config");
            source_config["torch_dtype"] = "float16";
            write_json_file_atomic((fs::path(base) / "config.json").string(), source_config);
        } else {
            const LayerSettings& g = profile.global;
            GptqExportConfig gc;
            gc.bits = g.quant.bits;
            gc.group_size = g.quant.group;
            gc.desc_act = g.act_order;
            gc.sym = g.quant.sym;
            gc.damp_percent = g.damp;
            gc.static_groups = g.static_groups;
            gc.format = gfmt;
            write_gptq_checkpoint(base, source_config, gptq_quantization_config(gc, ginfos), entries, wp);
        }
        if (fs::is_directory(model_path)) copy_tokenizer_files(model_path, base);
    }
    if (opt.write_adapter) {
        progress(0.9, "writing the adapter");
        if (adapters.empty())
            throw Error(opt.out_dir + ": no module has an adapter (rank 0 or zero init everywhere); untick Adapter");
        const std::string ad = out.file("adapter");
        fs::create_directories(ad);
        write_peft_adapter(ad, adapters, all_modules, model_path, opt.adapter_fp16 ? torch::kFloat16 : torch::kFloat32);
    }
    if (opt.write_profile) save_profile(out.file("profile.json"), profile);
    if (opt.write_report) {
        progress(0.93, "writing the report");
        nlohmann::ordered_json r;
        r["tool"] = std::string("CLoQ Studio ") + CLOQ_VERSION;
        r["model"] = model_path;
        r["format"] = opt.base_format;
        r["calibration"] = nlohmann::ordered_json::parse(to_json(session.calib).dump());
        r["profile"] = to_json(profile);
        r["modules"] = nlohmann::ordered_json::array();
        std::string csv = "module,quantized,bits,group,rank,split,init,fro,spec,fro_rel,spec_rel\n";
        for (const Record& rec : records) {
            nlohmann::ordered_json j;
            j["module"] = rec.module;
            j["quantized"] = rec.quantized;
            if (!rec.note.empty()) j["note"] = rec.note;
            j["settings"] = nlohmann::ordered_json::parse(to_json(rec.settings).dump());
            if (rec.quantized) {
                j[to_string(rec.settings.init)] = metrics_json(rec.init);
                j["zero"] = metrics_json(rec.zero);
                j["loftq"] = metrics_json(rec.loftq);
                csv += csv_line(rec, to_string(rec.settings.init), rec.init);
                if (rec.settings.init != InitMethod::Zero) csv += csv_line(rec, "zero", rec.zero);
                if (rec.settings.init != InitMethod::Loftq) csv += csv_line(rec, "loftq", rec.loftq);
            }
            r["modules"].push_back(j);
        }
        write_json_file_atomic(out.file("report.json"), r);
        write_file_atomic(out.file("report.csv"), csv);
    }
    if (opt.add_files) opt.add_files(out.path());
    progress(0.99, "committing");
    out.commit();
}

}  // namespace cloq::ui
