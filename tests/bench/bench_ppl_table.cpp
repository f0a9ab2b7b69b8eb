// bench_ppl_table: the bits × rank × base quantizer × init → perplexity table of a real model (issues 4 and 9), with
// the time each quantized model took to build. Calibrates once (cached like every other command), then for every
// setting quantizes all linear layers, initializes the adapter with zero / LoftQ (T=5) / CLoQ, folds Q + B·A into the
// model and measures perplexity on the evaluation windows. Writes JSON and a markdown table into the section
// `<!-- ppl_table:NAME -->` of a markdown file (README.md), and reports whether CLoQ < LoftQ < zero held.
//
//   bench_ppl_table --model M --calib TEXT --data TEXT --name NAME [--bits 2,3] [--ranks 16,64] [--group 64]
//                   [--calib-nsamples 32] [--calib-seqlen 256] [--seqlen 256] [--nsamples 32]
//                   [--calib-part 0.5:1] [--data-part 0:0.25]
//                   [--quantizers gptq,rtn] [--damp 0.01] [--magr off|on] [--json FILE] [--markdown FILE]
// --quantizers lists the bases for zero and CLoQ (GPTQ is the paper's; RTN is LoftQ's data-free grid, so that row
// compares the three inits on the same kind of base). --magr on runs MagR before the base quantizer (the paper's
// Sec. 4.1 pipeline, MagR + OPTQ). LoftQ quantizes inside its own loop: one run per bits × rank. The zero init is
// the plain base, the same at every rank: it is measured once per bits and base and repeated in each rank's row.
// --calib-part / --data-part take the windows from parts of the texts' tokens (fractions A:B); with one corpus for
// both they must be disjoint (the paper's protocol: calibrate and evaluate on the same corpus, never the same text).
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cloq/analysis/calibration.h"
#include "cloq/analysis/quantized_eval.h"
#include "cloq/base/atomic_file.h"
#include "cloq/base/timing.h"
#include "cloq/model/model_files.h"
#include "cloq/model/perplexity.h"
#include "cloq/model/resource_limits.h"
#include "markdown_section.h"

using namespace cloq;

namespace {
// "2,3" -> {"2", "3"}, each item converted by `parse`.
template <typename T, typename Parse>
std::vector<T> parse_list(const std::string& s, Parse parse) {
    std::vector<T> v;
    std::stringstream ss(s);
    for (std::string item; std::getline(ss, item, ',');) v.push_back(parse(item));
    return v;
}

std::vector<int> int_list(const std::string& s) {
    return parse_list<int>(s, [](const std::string& i) { return std::stoi(i); });
}

// Perplexities span 5 to 10⁶ at 2 bits: 4 significant digits below 10⁴, then mantissa·10^k ("1.21e6").
std::string fmt_ppl(double v) {
    char buf[32];
    if (v < 1e4) {
        std::snprintf(buf, sizeof buf, v < 10 ? "%.3f" : v < 100 ? "%.2f" : v < 1000 ? "%.1f" : "%.0f", v);
    } else {
        const int e = static_cast<int>(std::floor(std::log10(v)));
        std::snprintf(buf, sizeof buf, "%.2fe%d", v / std::pow(10.0, e), e);
    }
    return buf;
}

}  // namespace

int main(int argc, char** argv) {
    std::map<std::string, std::string> opt = {{"bits", "2,3"},          {"ranks", "16,64"},      {"group", "64"},
                                              {"calib-nsamples", "32"}, {"calib-seqlen", "256"}, {"seqlen", "256"},
                                              {"nsamples", "32"},       {"name", "model"},       {"quantizers", "gptq"},
                                              {"damp", "0.01"},         {"magr", "off"},         {"calib-part", "0:1"},
                                              {"data-part", "0:1"}};
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        if (k.rfind("--", 0) != 0) {
            std::cerr << "bench_ppl_table: unexpected argument " << k << "\n";
            return 2;
        }
        opt[k.substr(2)] = argv[i + 1];
    }
    for (const char* req : {"model", "calib", "data"})
        if (!opt.count(req)) {
            std::cerr << "bench_ppl_table: --" << req << " is required\n";
            return 2;
        }
    try {
        const ModelFiles files = open_model(opt["model"]);
        if (!files.tokenizer) throw Error(opt["model"] + ": no tokenizer");
        // Calibration and evaluation come from parts of their texts (docs/design.md, Measurement protocol): the
        // same corpus split into disjoint parts, or two corpora.
        const TextPart calib_part = parse_text_part(opt["calib-part"]), data_part = parse_text_part(opt["data-part"]);
        if (opt["calib"] == opt["data"] && overlaps(calib_part, data_part))
            throw Error("--calib-part " + opt["calib-part"] + " and --data-part " + opt["data-part"] + " of " +
                        opt["data"] + " overlap: calibration and evaluation windows must be disjoint");
        const auto data_tokens = tokenize_file(*files.tokenizer, opt["data"]);
        const auto eval_tokens = text_part_tokens(data_tokens, data_part, opt["data"]);
        const PerplexityOptions popt{std::stoi(opt["seqlen"]), std::stoi(opt["nsamples"])};

        Stopwatch t0;
        LlamaModel fp_model(files);
        const double fp_ppl = perplexity(fp_model, eval_tokens, popt).ppl;
        const double fp_secs = t0.seconds();
        const double fp_rss = peak_rss_mib();
        std::cerr << "float ppl " << fp_ppl << " (" << fp_secs << " s, peak " << fp_rss << " MiB)\n";

        CalibrationRequest req;
        req.settings.text_path = opt["calib"];
        req.settings.part = calib_part;
        req.settings.nsamples = std::stoi(opt["calib-nsamples"]);
        req.settings.seqlen = std::stoi(opt["calib-seqlen"]);
        t0.restart();
        const Calibration cal = calibrate(fp_model, req);
        const double cal_secs = t0.seconds();
        const double cal_rss = peak_rss_mib();
        std::cerr << "calibration " << cal_secs << " s, peak " << cal_rss << " MiB\n";

        nlohmann::json rows = nlohmann::json::array();
        bool order_holds = true;
        const auto bases = parse_list<QuantMethod>(opt["quantizers"], parse_quant_method);
        const double damp = std::stod(opt["damp"]);  // GPTQ's dampening, a fraction of mean(diag H)
        if (opt["magr"] != "on" && opt["magr"] != "off") throw Error("--magr takes on or off, not " + opt["magr"]);
        const bool magr = opt["magr"] == "on";
        std::map<std::pair<int, QuantMethod>, nlohmann::json> zero_of;  // (bits, base) -> the zero init's cell
        // One quantized model: build, evaluate, record ppl / time / peak memory under row[key].
        auto measure = [&](const LayerSettings& s, InitMethod init, nlohmann::json& row, const std::string& key) {
            const Stopwatch t1;
            const double ppl = quantized_perplexity(files, s, init, cal, eval_tokens, popt).ppl;
            row[key] = {{"ppl", ppl}, {"seconds", t1.seconds()}, {"peak_rss_mib", peak_rss_mib()}};
            std::cerr << s.quant.bits << "-bit r" << s.rank << " "
                      << (init == InitMethod::Loftq ? std::string() : to_string(s.method) + " ") << key << ": ppl "
                      << ppl << " (" << t1.seconds() << " s)\n";
        };
        for (int bits : int_list(opt["bits"]))
            for (int rank : int_list(opt["ranks"])) {
                LayerSettings s;
                s.quant.bits = bits;
                s.quant.group = std::stoi(opt["group"]);
                s.rank = rank;
                s.loftq_iters = 5;
                s.damp = damp;
                s.magr = magr;
                nlohmann::json loftq;
                measure(s, InitMethod::Loftq, loftq, "loftq");  // its own RTN grid: independent of the base
                for (QuantMethod base : bases) {
                    s.method = base;
                    nlohmann::json row = {{"bits", bits},
                                          {"group", s.quant.group},
                                          {"rank", rank},
                                          {"quantizer", to_string(base)},
                                          {"loftq", loftq["loftq"]}};
                    auto& zero = zero_of[{bits, base}];
                    if (zero.is_null()) measure(s, InitMethod::Zero, zero, "zero");
                    row["zero"] = zero["zero"];
                    measure(s, InitMethod::Cloq, row, "cloq");
                    const double z = row["zero"]["ppl"], l = row["loftq"]["ppl"], c = row["cloq"]["ppl"];
                    row["cloq_lt_loftq_lt_zero"] = c < l && l < z;
                    order_holds = order_holds && c < l && l < z;
                    rows.push_back(row);
                }
            }

        nlohmann::json all = {{"model", opt["model"]},
                              {"calib", opt["calib"]},
                              {"data", opt["data"]},
                              {"calib_part", to_string(calib_part)},
                              {"data_part", to_string(data_part)},
                              {"data_part_tokens", eval_tokens.size()},
                              {"calib_text_tokens", cal.text_tokens},
                              {"float_ppl", fp_ppl},
                              {"float_seconds", fp_secs},
                              {"calibration_seconds", cal_secs},
                              {"float_peak_rss_mib", fp_rss},
                              {"calibration_peak_rss_mib", cal_rss},
                              {"gptq_damp", damp},
                              {"magr", magr},
                              {"calib_nsamples", req.settings.nsamples},
                              {"calib_seqlen", req.settings.seqlen},
                              {"seqlen", popt.seqlen},
                              {"nsamples", popt.nsamples},
                              {"rows", rows},
                              {"order_holds", order_holds}};
        if (opt.count("json")) write_file_atomic(opt["json"], all.dump(2) + "\n");

        std::ostringstream md;
        char buf[256];
        const auto file_of = [](const std::string& p) { return "`" + p.substr(p.find_last_of('/') + 1) + "`"; };
        const auto part_text = [](const TextPart& p) {
            return p.whole() ? std::string("all") : "part " + to_string(p) + " (fractions of its tokens)";
        };
        md << "Evaluation: the first " << popt.nsamples << " windows of " << popt.seqlen << " tokens of "
           << file_of(opt["data"]) << ", " << part_text(data_part) << ", " << eval_tokens.size() << " tokens. "
           << "Calibration: " << req.settings.nsamples << " random windows of " << req.settings.seqlen
           << " tokens (seed 0) drawn from " << file_of(opt["calib"]) << ", " << part_text(calib_part) << ", "
           << cal.text_tokens << " tokens"
           << (opt["calib"] == opt["data"] ? " (the same corpus, a disjoint part)" : " (another corpus)") << "; "
           << std::to_string(static_cast<int>(cal_secs + 0.5)) << " s. Asymmetric INT, group " << opt["group"]
           << "; base = the quantizer of zero and CLoQ (" << (magr ? "MagR, then " : "")
           << "GPTQ with the calibration H, dampening " << opt["damp"] << " × mean diag H, or data-free RTN"
           << (magr ? " after MagR" : "")
           << "); the zero init is rank-independent (measured once per bits and base); LoftQ T = 5 is data-free INT on "
              "the same grid (its own alternating RTN + SVD, the same in every base's row). Time = quantize + "
              "initialize every linear layer + evaluate, on this machine. Generated by `tests/bench/bench_ppl_table`."
              "\n\n";
        md << "| bits | rank | base | float | zero (QLoRA) | LoftQ T=5 | CLoQ | CLoQ < LoftQ < zero |\n"
              "|---|---|---|---:|---:|---:|---:|:---:|\n";
        for (const auto& r : rows) {
            auto cell = [&](const char* init, bool bold) {
                const auto& c = r[init];
                return (bold ? "**" : "") + fmt_ppl(c["ppl"].get<double>()) + (bold ? "**" : "") + " (" +
                       std::to_string(static_cast<int>(c["seconds"].get<double>() + 0.5)) + " s)";
            };
            std::string base = r["quantizer"].get<std::string>();
            std::transform(base.begin(), base.end(), base.begin(), ::toupper);
            if (magr) base = "MagR + " + base;
            md << "| " << r["bits"].get<int>() << " | " << r["rank"].get<int>() << " | " << base << " | "
               << fmt_ppl(fp_ppl) << " | " << cell("zero", false) << " | " << cell("loftq", false) << " | "
               << cell("cloq", true) << " | " << (r["cloq_lt_loftq_lt_zero"].get<bool>() ? "yes" : "**no**") << " |\n";
        }
        double peak = cal_rss;
        for (const auto& r : rows)
            for (const char* init : {"zero", "loftq", "cloq"})
                peak = std::max(peak, r[init]["peak_rss_mib"].get<double>());
        std::snprintf(
            buf, sizeof buf,
            "\nTime and peak memory per stage: float evaluation %.1f s (peak %.0f MiB), calibration %.1f s "
            "(peak %.0f MiB), quantized rows up to peak %.0f MiB (process resident set, a running maximum).\n",
            fp_secs, fp_rss, cal_secs, cal_rss, peak);
        md << buf;
        if (opt.count("markdown")) bench::write_markdown_section(opt["markdown"], "ppl_table:" + opt["name"], md.str());
        std::cout << md.str();
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "bench_ppl_table: " << e.what() << "\n";
        return 1;
    }
}
