#include <iomanip>
#include <sstream>

#include "cli.h"

namespace cloq::cli {

ArgParser::ArgParser(std::string command, std::string synopsis, std::string description)
    : command_(std::move(command)), synopsis_(std::move(synopsis)), description_(std::move(description)) {}

ArgParser::Opt* ArgParser::find(const std::string& name) {
    for (auto& o : opts_)
        if (o.name == name) return &o;
    return nullptr;
}

void ArgParser::section(const std::string& title) { current_section_ = title; }

void ArgParser::flag(const std::string& name, bool* target, const std::string& help) {
    Opt o;
    o.name = name;
    o.help = help;
    o.is_flag = true;
    o.flag_target = target;
    o.section = current_section_;
    opts_.push_back(std::move(o));
}

void ArgParser::option(const std::string& name, std::function<void(const std::string&)> set, const std::string& metavar,
                       const std::string& help, const std::string& default_text) {
    Opt o;
    o.name = name;
    o.metavar = metavar;
    o.help = help;
    o.default_text = default_text;
    o.set = std::move(set);
    o.section = current_section_;
    opts_.push_back(std::move(o));
}

void ArgParser::option(const std::string& name, std::string* target, const std::string& metavar,
                       const std::string& help, bool required) {
    option(
        name, [target](const std::string& v) { *target = v; }, metavar, help, target->empty() ? "" : *target);
    opts_.back().required = required;
}

namespace {
template <typename T>
T parse_number(const std::string& name, const std::string& v) {
    std::istringstream in(v);
    T x{};
    in >> x;
    if (in.fail() || !in.eof()) throw UsageError("--" + name + " expects a number, got '" + v + "'");
    return x;
}
template <typename T>
std::string show(T v) {
    std::ostringstream s;
    s << v;
    return s.str();
}
}  // namespace

void ArgParser::option(const std::string& name, int* target, const std::string& metavar, const std::string& help) {
    option(
        name, [name, target](const std::string& v) { *target = parse_number<int>(name, v); }, metavar, help,
        show(*target));
}
void ArgParser::option(const std::string& name, double* target, const std::string& metavar, const std::string& help) {
    option(
        name, [name, target](const std::string& v) { *target = parse_number<double>(name, v); }, metavar, help,
        show(*target));
}
void ArgParser::option(const std::string& name, uint64_t* target, const std::string& metavar, const std::string& help) {
    option(
        name,
        [name, target](const std::string& v) {
            if (!v.empty() && v[0] == '-') throw UsageError("--" + name + " must not be negative");
            *target = parse_number<uint64_t>(name, v);
        },
        metavar, help, show(*target));
}

void ArgParser::positional(const std::string& metavar, std::string* target, const std::string& help) {
    positionals_.emplace_back(metavar, target, help);
}

bool ArgParser::was_set(const std::string& name) const { return seen_.count(name) > 0; }

bool ArgParser::parse(const std::vector<std::string>& args, std::ostream& out) {
    size_t next_positional = 0;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--help" || a == "-h") {
            out << help();
            return false;
        }
        if (a.rfind("--", 0) == 0) {
            std::string name = a.substr(2), value;
            bool has_inline = false;
            if (auto eq = name.find('='); eq != std::string::npos) {
                value = name.substr(eq + 1);
                name = name.substr(0, eq);
                has_inline = true;
            }
            Opt* o = find(name);
            if (!o) throw UsageError("unknown option --" + name + " (see 'cloq " + command_ + " --help')");
            if (seen_.count(name)) throw UsageError("--" + name + " given twice");
            seen_[name] = true;
            if (o->is_flag) {
                if (has_inline) throw UsageError("--" + name + " takes no value");
                *o->flag_target = true;
                continue;
            }
            if (!has_inline) {
                if (i + 1 >= args.size()) throw UsageError("--" + name + " needs a value (" + o->metavar + ")");
                value = args[++i];
            }
            try {
                o->set(value);
            } catch (const UsageError&) {
                throw;
            } catch (const Error& e) {
                throw UsageError("--" + name + ": " + e.what());
            }
            continue;
        }
        if (next_positional < positionals_.size()) {
            *std::get<1>(positionals_[next_positional++]) = a;
            continue;
        }
        throw UsageError("unexpected argument '" + a + "' (see 'cloq " + command_ + " --help')");
    }
    for (const auto& o : opts_)
        if (o.required && !seen_.count(o.name)) throw UsageError("missing required option --" + o.name);
    if (next_positional < positionals_.size())
        throw UsageError("missing argument " + std::get<0>(positionals_[next_positional]));
    return true;
}

std::string ArgParser::help() const {
    std::ostringstream h;
    h << "Usage: cloq " << command_ << " " << synopsis_ << "\n\n" << description_ << "\n";
    if (!positionals_.empty()) {
        h << "\nArguments:\n";
        for (const auto& [meta, target, text] : positionals_)
            h << "  " << std::left << std::setw(28) << meta << text << "\n";
    }
    std::string section = "\x01";
    for (const auto& o : opts_) {
        if (o.section != section) {
            section = o.section;
            h << "\n" << (section.empty() ? "Options" : section) << ":\n";
        }
        std::string left = "--" + o.name + (o.is_flag ? "" : " " + o.metavar);
        // A long flag gets its description on the next line rather than running into it.
        if (left.size() >= 28)
            h << "  " << left << "\n" << std::string(30, ' ') << o.help;
        else
            h << "  " << std::left << std::setw(28) << left << o.help;
        if (o.required)
            h << " (required)";
        else if (!o.is_flag && !o.default_text.empty())
            h << " [default: " << o.default_text << "]";
        h << "\n";
    }
    h << "  " << std::left << std::setw(28) << "--help"
      << "show this help\n";
    return h.str();
}

void add_quant_options(ArgParser& p, LayerSettings& s) {
    p.section("Quantization");
    p.option("bits", &s.quant.bits, "B", "bit width: 2, 3, 4 or 8");
    p.option("group", &s.quant.group, "G", "group size along in-features, -1 = per channel");
    p.flag("sym", &s.quant.sym, "symmetric quantization (default asymmetric)");
    p.option(
        "quantizer", [&s](const std::string& v) { s.method = parse_quant_method(v); }, "gptq|rtn",
        "quantizer for the base weight", to_string(s.method));
    p.flag("magr", &s.magr, "MagR preprocessing (l-infinity proximal step) before quantizing");
    p.option("damp", &s.damp, "F", "GPTQ dampening as a fraction of mean(diag H)");
    p.option("blocksize", &s.blocksize, "N", "GPTQ block size");
    p.flag("act-order", &s.act_order, "GPTQ: quantize columns in order of decreasing diag(H)");
    p.flag("static-groups", &s.static_groups, "GPTQ: fix group parameters before act-order");
    p.section("Low-rank initialization");
    p.option("rank", &s.rank, "R", "LoRA rank");
    p.option(
        "init", [&s](const std::string& v) { s.init = parse_init_method(v); },
        "cloq|loftq|zero|svd|eora|qera-exact|qera-approx", "adapter initialization", to_string(s.init));
    p.option(
        "split", [&s](const std::string& v) { s.split = parse_split(v); }, "default|sqrt|u-vs",
        "CLoQ factor split (paper Table 6)", to_string(s.split));
    p.option("loftq-iters", &s.loftq_iters, "T", "LoftQ alternating steps");
    p.option(
        "loftq-quant", [&s](const std::string& v) { s.loftq_quant = parse_loftq_quant(v); }, "int|nf",
        "LoftQ's quantizer: int = the grid above, rounded to nearest (data-free, as in LoftQ); nf = QLoRA normal float",
        to_string(s.loftq_quant));
}

void add_device_option(ArgParser& p, DeviceChoice& d) {
    p.option(
        "device", [&d](const std::string& v) { d = parse_device(v); }, "auto|cpu|cuda",
        "where to compute; auto picks CUDA when present", to_string(d));
}

void add_text_part_option(ArgParser& p, const std::string& name, TextPart& part, const std::string& help) {
    p.option(
        name, [&part](const std::string& v) { part = parse_text_part(v); }, "A:B", help, to_string(part));
}

void add_calib_options(ArgParser& p, CalibSettings& s, bool calib_required) {
    p.section("Calibration");
    p.option("calib", &s.text_path, "FILE", "calibration text (UTF-8)", calib_required);
    add_text_part_option(p, "calib-part", s.part,
                         "draw the windows from this part of the text's tokens only, e.g. 0.5:1 (keep calibration "
                         "and evaluation parts disjoint)");
    p.option("calib-nsamples", &s.nsamples, "N", "number of random calibration windows");
    p.option("calib-seqlen", &s.seqlen, "L", "tokens per window (capped at the model's context length)");
    p.option("seed", &s.seed, "S", "random seed for choosing the windows");
    p.flag("sequential", &s.sequential, "feed each block the outputs of the already-quantized blocks");
    p.option("cache", &s.cache_dir, "DIR", "cache folder for H matrices (reused by later runs and the GUI)");
}

}  // namespace cloq::cli
