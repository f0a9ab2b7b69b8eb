#include "cloq/settings/settings.h"

#include <torch/torch.h>

#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cloq/base/error.h"

namespace cloq {

TextPart parse_text_part(const std::string& s) {
    const auto bad = [&] {
        return Error("text part '" + s + "' is invalid: write A:B with 0 <= A < B <= 1, e.g. 0:0.5 or 0.5:1");
    };
    const size_t colon = s.find(':');
    if (colon == std::string::npos) throw bad();
    TextPart p;
    try {
        size_t n1 = 0, n2 = 0;
        p.begin = std::stod(s.substr(0, colon), &n1);
        p.end = std::stod(s.substr(colon + 1), &n2);
        if (n1 != colon || n2 != s.size() - colon - 1) throw bad();
    } catch (const std::logic_error&) {
        throw bad();
    }
    if (!(p.begin >= 0.0 && p.begin < p.end && p.end <= 1.0)) throw bad();
    return p;
}

std::string to_string(const TextPart& p) {
    std::ostringstream o;
    o << p.begin << ":" << p.end;
    return o.str();
}

bool overlaps(const TextPart& a, const TextPart& b) { return a.begin < b.end && b.begin < a.end; }

bool same_quantization(const LayerSettings& a, const LayerSettings& b) {
    return a.quant.bits == b.quant.bits && a.quant.group == b.quant.group && a.quant.sym == b.quant.sym &&
           a.quant.zero_from_one == b.quant.zero_from_one && a.method == b.method && a.magr == b.magr &&
           a.damp == b.damp && a.blocksize == b.blocksize && a.act_order == b.act_order &&
           a.static_groups == b.static_groups;
}

void validate(const IntQuantSpec& spec) {
    if (spec.bits != 2 && spec.bits != 3 && spec.bits != 4 && spec.bits != 8)
        throw Error("bit width " + std::to_string(spec.bits) + " is not supported (use 2, 3, 4 or 8)");
    if (spec.group == 0 || spec.group < -1)
        throw Error("group size " + std::to_string(spec.group) +
                    " is invalid (use a positive size or -1 for per channel)");
}

namespace {
template <typename E, size_t N>
E parse_enum(const std::string& s, const std::pair<const char*, E> (&table)[N], const char* what) {
    std::string accepted;
    for (const auto& [name, value] : table) {
        if (s == name) return value;
        accepted += (accepted.empty() ? "" : "|") + std::string(name);
    }
    throw Error("unknown " + std::string(what) + " '" + s + "' (use " + accepted + ")");
}
template <typename E, size_t N>
std::string enum_name(E v, const std::pair<const char*, E> (&table)[N]) {
    for (const auto& [name, value] : table)
        if (value == v) return name;
    return "?";
}
const std::pair<const char*, QuantMethod> kQuant[] = {{"gptq", QuantMethod::Gptq}, {"rtn", QuantMethod::Rtn}};
const std::pair<const char*, InitMethod> kInit[] = {{"cloq", InitMethod::Cloq},
                                                    {"loftq", InitMethod::Loftq},
                                                    {"zero", InitMethod::Zero},
                                                    {"svd", InitMethod::Svd},
                                                    {"eora", InitMethod::Eora},
                                                    {"qera-exact", InitMethod::QeraExact},
                                                    {"qera-approx", InitMethod::QeraApprox}};
const std::pair<const char*, Split> kSplit[] = {
    {"default", Split::Default}, {"sqrt", Split::Sqrt}, {"u-vs", Split::UVs}};
const std::pair<const char*, LoftqQuant> kLoftqQuant[] = {{"int", LoftqQuant::Int}, {"nf", LoftqQuant::Nf}};
const std::pair<const char*, DeviceChoice> kDevice[] = {
    {"auto", DeviceChoice::Auto}, {"cpu", DeviceChoice::Cpu}, {"cuda", DeviceChoice::Cuda}};
}  // namespace

bool LayerSettings::operator==(const LayerSettings& o) const {
    return quant.bits == o.quant.bits && quant.group == o.quant.group && quant.sym == o.quant.sym &&
           method == o.method && magr == o.magr && damp == o.damp && blocksize == o.blocksize &&
           act_order == o.act_order && static_groups == o.static_groups && rank == o.rank && init == o.init &&
           split == o.split && loftq_iters == o.loftq_iters && loftq_quant == o.loftq_quant &&
           lora_alpha == o.lora_alpha;
}

std::string to_string(QuantMethod m) { return enum_name(m, kQuant); }
std::string to_string(InitMethod m) { return enum_name(m, kInit); }
std::string to_string(Split s) { return enum_name(s, kSplit); }
std::string to_string(LoftqQuant q) { return enum_name(q, kLoftqQuant); }
std::string to_string(DeviceChoice d) { return enum_name(d, kDevice); }
QuantMethod parse_quant_method(const std::string& s) { return parse_enum(s, kQuant, "quantizer"); }
InitMethod parse_init_method(const std::string& s) { return parse_enum(s, kInit, "init"); }
Split parse_split(const std::string& s) { return parse_enum(s, kSplit, "split"); }
LoftqQuant parse_loftq_quant(const std::string& s) { return parse_enum(s, kLoftqQuant, "LoftQ quantizer"); }
DeviceChoice parse_device(const std::string& s) { return parse_enum(s, kDevice, "device"); }

void validate(const LayerSettings& s) {
    validate(s.quant);
    if (s.rank < 0) throw Error("rank " + std::to_string(s.rank) + " is negative");
    if (s.loftq_iters < 1) throw Error("LoftQ iterations must be at least 1");
    if (!(s.damp > 0) || !std::isfinite(s.damp)) throw Error("GPTQ damp must be a positive number");
    if (s.blocksize < 1) throw Error("GPTQ block size must be positive");
    if (!(s.lora_alpha > 0) || !std::isfinite(s.lora_alpha)) throw Error("lora_alpha must be a positive number");
}

nlohmann::json to_json(const LayerSettings& s) {
    return {{"bits", s.quant.bits},
            {"group", s.quant.group},
            {"sym", s.quant.sym},
            {"quantizer", to_string(s.method)},
            {"magr", s.magr},
            {"damp", s.damp},
            {"blocksize", s.blocksize},
            {"act_order", s.act_order},
            {"static_groups", s.static_groups},
            {"rank", s.rank},
            {"init", to_string(s.init)},
            {"split", to_string(s.split)},
            {"loftq_iters", s.loftq_iters},
            {"loftq_quant", to_string(s.loftq_quant)},
            {"lora_alpha", s.lora_alpha}};
}

LayerSettings layer_settings_from_json(const nlohmann::json& j, const LayerSettings& base, const std::string& where) {
    if (!j.is_object()) throw Error(where + ": settings must be a JSON object");
    LayerSettings s = base;
    auto need = [&](const std::string& key, bool ok, const char* type) {
        if (!ok) throw Error(where + ": '" + key + "' must be " + type);
    };
    // An integer that does not fit an int must not wrap around (bits 4294967298 would become 2): found by the
    // hostile-input corpus (tests/data/bad/settings_bits_wrapping).
    auto integer = [&](const std::string& key, const nlohmann::json& v) {
        need(key, v.is_number_integer(), "an integer");
        const bool fits = v.is_number_unsigned()
                              ? v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int>::max())
                              : v.get<int64_t>() >= std::numeric_limits<int>::min() &&
                                    v.get<int64_t>() <= std::numeric_limits<int>::max();
        if (!fits) throw Error(where + ": '" + key + "' is out of range (" + v.dump() + ")");
        return v.get<int>();
    };
    for (const auto& [key, v] : j.items()) {
        if (key == "bits") {
            s.quant.bits = integer(key, v);
        } else if (key == "group") {
            s.quant.group = integer(key, v);
        } else if (key == "sym") {
            need(key, v.is_boolean(), "true or false");
            s.quant.sym = v.get<bool>();
        } else if (key == "quantizer") {
            need(key, v.is_string(), "a string");
            s.method = parse_quant_method(v.get<std::string>());
        } else if (key == "magr") {
            need(key, v.is_boolean(), "true or false");
            s.magr = v.get<bool>();
        } else if (key == "damp") {
            need(key, v.is_number(), "a number");
            s.damp = v.get<double>();
        } else if (key == "blocksize") {
            s.blocksize = integer(key, v);
        } else if (key == "act_order") {
            need(key, v.is_boolean(), "true or false");
            s.act_order = v.get<bool>();
        } else if (key == "static_groups") {
            need(key, v.is_boolean(), "true or false");
            s.static_groups = v.get<bool>();
        } else if (key == "rank") {
            s.rank = integer(key, v);
        } else if (key == "init") {
            need(key, v.is_string(), "a string");
            s.init = parse_init_method(v.get<std::string>());
        } else if (key == "split") {
            need(key, v.is_string(), "a string");
            s.split = parse_split(v.get<std::string>());
        } else if (key == "loftq_iters") {
            s.loftq_iters = integer(key, v);
        } else if (key == "loftq_quant") {
            need(key, v.is_string(), "a string");
            s.loftq_quant = parse_loftq_quant(v.get<std::string>());
        } else if (key == "lora_alpha") {
            need(key, v.is_number(), "a number");
            s.lora_alpha = v.get<double>();
        } else
            throw Error(where + ": unknown setting '" + key + "'");
    }
    try {
        validate(s);
    } catch (const Error& e) {
        throw Error(where + ": " + e.what());
    }
    return s;
}

nlohmann::json to_json(const CalibSettings& s) {
    nlohmann::json j = {{"text", s.text_path},
                        {"nsamples", s.nsamples},
                        {"seqlen", s.seqlen},
                        {"seed", s.seed},
                        {"sequential", s.sequential}};
    if (!s.part.whole()) j["part"] = to_string(s.part);  // absent for the whole text: older reports read the same
    return j;
}

bool cuda_available() { return torch::cuda::is_available(); }

torch::Device resolve_device(DeviceChoice d) {
    switch (d) {
    case DeviceChoice::Cpu:
        return torch::kCPU;
    case DeviceChoice::Cuda:
        if (!cuda_available())
            throw Error("--device cuda: this build or machine has no CUDA device (use --device cpu or auto)");
        return torch::Device(torch::kCUDA, 0);
    case DeviceChoice::Auto:
        break;
    }
    return cuda_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
}

}  // namespace cloq
