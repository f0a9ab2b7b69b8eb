// What the export reports: report.json / report.csv (per-module settings and discrepancies) and the perplexity of
// the float model, the solution in memory, the export and the files read back.
#include "pipeline/pipeline.h"

namespace cloq::pipeline {

nlohmann::ordered_json Pipeline::report_json(const Calibration& calib) const {
    nlohmann::ordered_json r;
    r["tool"] = std::string("cloq quantize ") + CLOQ_VERSION;
    r["model"] = opt_.model_path;
    r["format"] = to_string(opt_.format);
    r["adapter_dtype"] = std::string(c10::toString(opt_.adapter_dtype));
    nlohmann::ordered_json c = to_ordered(to_json(opt_.calib));
    c["key"] = calib.key;
    c["tokens"] = calib.tokens;
    c["seqlen_used"] = calib.seqlen;
    c["notices"] = calib.notices;
    r["calibration"] = c;
    r["profile"] = to_json(opt_.profile);
    r["modules"] = nlohmann::ordered_json::array();
    double sum_init = 0, sum_zero = 0, sum_loftq = 0;
    int n_init = 0, n_zero = 0, n_loftq = 0;
    for (const auto& m : res_.modules) {
        auto mj = record_json(m);
        mj.erase("seconds");  // under "timings"
        r["modules"].push_back(mj);
        if (!m.quantized) continue;
        sum_init += m.init.fro_rel, ++n_init;
        if (m.has_zero) sum_zero += m.zero.fro_rel, ++n_zero;
        if (m.has_loftq) sum_loftq += m.loftq.fro_rel, ++n_loftq;
    }
    nlohmann::ordered_json s;
    s["quantized_modules"] = n_init;
    s["unquantized_modules"] = static_cast<int>(res_.modules.size()) - n_init;
    if (n_init) s["mean_fro_rel_" + to_string(opt_.profile.global.init)] = sum_init / n_init;
    if (n_zero) s["mean_fro_rel_zero"] = sum_zero / n_zero;
    if (n_loftq) s["mean_fro_rel_loftq"] = sum_loftq / n_loftq;
    r["summary"] = s;
    r["notices"] = res_.notices;
    return r;
}

std::string Pipeline::report_csv() const {
    std::ostringstream o;
    o.precision(9);
    o << "module,layer,in,out,quantized,bits,group,rank,init,lora_alpha,fro,fro_rel,spec,spec_rel,"
         "zero_fro_rel,zero_spec_rel,loftq_fro_rel,loftq_spec_rel,export_fro_rel,note\n";
    for (const auto& m : res_.modules) {
        const auto& s = m.settings;
        o << m.module << ',' << m.layer << ',' << m.in << ',' << m.out << ',' << (m.quantized ? 1 : 0) << ','
          << s.quant.bits << ',' << s.quant.group << ',' << s.rank << ',' << to_string(s.init) << ',' << s.lora_alpha
          << ',' << m.init.fro << ',' << m.init.fro_rel << ',' << m.init.spec << ',' << m.init.spec_rel << ',';
        if (m.has_zero)
            o << m.zero.fro_rel << ',' << m.zero.spec_rel << ',';
        else
            o << ",,";
        if (m.has_loftq)
            o << m.loftq.fro_rel << ',' << m.loftq.spec_rel << ',';
        else
            o << ",,";
        std::string note = m.note;
        for (auto& ch : note)
            if (ch == '"') ch = '\'';
        o << m.export_fro_rel << ",\"" << note << "\"\n";  // seconds: report.json "timings"
    }
    return o.str();
}

void Pipeline::evaluate(const std::string& temp_out) {
    const Progress ep = progress_.slice(0.92, 0.99);
    if (!mf_.tokenizer) throw Error(opt_.model_path + ": the model has no tokenizer, so perplexity cannot be measured");
    const auto tokens = text_part_tokens(tokenize_file(*mf_.tokenizer, opt_.eval_text), opt_.eval_part, opt_.eval_text);
    PerplexityOptions po;
    po.seqlen = opt_.eval_seqlen;
    po.nsamples = opt_.eval_nsamples;
    const torch::Device dev = resolve_device(opt_.device);
    auto ppl_of = [&](ModelFiles files, WeightTransform t, const Progress& p) {
        LlamaModel m(std::move(files), dev, forward_dtype(dev, false));
        if (t) m.set_weight_transform(std::move(t));
        return perplexity(m, tokens, po, p).ppl;
    };
    res_.ppl_float = ppl_of(mf_, {}, ep.slice(0, 0.25));
    if (solved_complete_ && !solved_.empty())
        res_.ppl_solved = ppl_of(
            mf_, [this](const LinearLayer& l, const torch::Tensor&) { return solved_.at(l.name()); },
            ep.slice(0.25, 0.5));
    else
        res_.notices.push_back("perplexity of the unrounded solution not measured: some blocks were resumed");
    ModelFiles view = mf_;
    if (opt_.format == BaseFormat::Fp16) view.weights = std::make_shared<RoundedWeights>(mf_.weights);
    res_.ppl_export = ppl_of(
        view, [this](const LinearLayer& l, const torch::Tensor&) { return eff_.at(l.name()); }, ep.slice(0.5, 0.75));
    if (opt_.eval_files && opt_.write_base) {
        const std::string ad = (fs::path(temp_out) / "adapter").string();
        auto files = open_exported_model(opt_.model_path, (fs::path(temp_out) / "base").string(),
                                         opt_.write_adapter && fs::exists(ad) ? ad : std::string());
        res_.ppl_files = ppl_of(files, {}, ep.slice(0.75, 1.0));
    }
}

}  // namespace cloq::pipeline
