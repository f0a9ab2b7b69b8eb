// The settings a user chooses for one linear layer (quantizer + low-rank init) and for calibration.
// Shared by the CLI flags, the GUI's settings panel and settings profiles (JSON).
#pragma once
#include <torch/types.h>
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>

namespace cloq {

// The INT grid of the quantized base (quant/quant_int implements it).
struct IntQuantSpec {
    int bits = 2;      // 2, 3, 4 or 8
    int group = 64;    // group size along in-features; -1 = one group per row (per channel)
    bool sym = false;  // symmetric (GPTQ's sym=True) instead of asymmetric
    // Zero points kept in 1..maxq, so that checkpoint format `gptq` (v1), which stores zero − 1 in b bits, can
    // hold every one (v1 loaders read a stored −1 as 2^b − 1, wrong weights). Set by the exporter for that format;
    // not a user setting. A group whose zero would round to 0 gets zero 1 and scale xmax/(maxq − 1), which still
    // spans [xmin, xmax] without clipping (see find_group_params).
    bool zero_from_one = false;

    int maxq() const { return (1 << bits) - 1; }
    int64_t group_size(int64_t in_features) const { return group < 0 ? in_features : group; }
    int64_t num_groups(int64_t in_features) const {
        const int64_t g = group_size(in_features);
        return (in_features + g - 1) / g;
    }
};

// Throws cloq::Error for bits outside {2,3,4,8}, group 0 or below -1.
void validate(const IntQuantSpec& spec);

enum class QuantMethod { Rtn, Gptq };
// QeraExact / QeraApprox: QERA (Zhang et al., ICLR 2025), the published method closest to CLoQ: the same calibrated
// objective with the symmetric root of the unregularized H and a pseudo-inverse (exact), or with the diagonal root
// diag(H)^½ (approx). Against CLoQ they show what the ridge λ and the full root change (docs/design.md).
enum class InitMethod { Zero, Svd, Loftq, Cloq, Eora, QeraExact, QeraApprox };
// Whether the split setting applies: it places the singular values of an SVD-based factorization (CLoQ, SVD, QERA);
// LoftQ always uses √S on both sides, zero init has none, EoRA is fixed by its definition.
inline bool init_has_split(InitMethod m) {
    return m == InitMethod::Cloq || m == InitMethod::Svd || m == InitMethod::QeraExact || m == InitMethod::QeraApprox;
}
enum class Split { Default, Sqrt, UVs };  // paper Table 6: where the singular values go
enum class LoftqQuant { Int, Nf };        // LoftQ's inner quantizer: the same INT as CLoQ, or NF (QLoRA)
enum class DeviceChoice { Auto, Cpu, Cuda };

struct LayerSettings {
    IntQuantSpec quant;  // bits / group / sym
    QuantMethod method = QuantMethod::Gptq;
    bool magr = false;           // MagR preprocessing before quantization
    double damp = 0.01;          // GPTQ dampening, fraction of mean(diag H)
    int blocksize = 128;         // GPTQ block size
    bool act_order = false;      // GPTQ desc_act
    bool static_groups = false;  // GPTQ static groups (with act_order)
    int rank = 64;
    InitMethod init = InitMethod::Cloq;
    Split split = Split::Default;
    int loftq_iters = 5;
    LoftqQuant loftq_quant = LoftqQuant::Int;
    double lora_alpha = 16.0;

    bool operator==(const LayerSettings& o) const;
    bool operator!=(const LayerSettings& o) const { return !(*this == o); }
};

// A contiguous part of a text's token stream, as fractions [begin, end) of its tokens, so that calibration,
// fine-tuning and evaluation windows can come from disjoint parts of one text (docs/design.md, Measurement
// protocol). Written "A:B" ("0:0.5", "0.5:1"); the whole text is "0:1".
struct TextPart {
    double begin = 0.0, end = 1.0;
    bool whole() const { return begin == 0.0 && end == 1.0; }
    bool operator==(const TextPart& o) const { return begin == o.begin && end == o.end; }
    bool operator!=(const TextPart& o) const { return !(*this == o); }
};
// "A:B" with 0 <= A < B <= 1; throws cloq::Error naming the accepted form.
TextPart parse_text_part(const std::string& s);
std::string to_string(const TextPart& p);
bool overlaps(const TextPart& a, const TextPart& b);

struct CalibSettings {
    std::string text_path;  // calibration text file
    TextPart part;          // the windows are drawn from this part of its tokens only
    int nsamples = 128;
    int seqlen = 2048;  // capped at the model's context length by the caller, with a notice
    uint64_t seed = 0;
    bool sequential = false;  // GPTQ-style: feed each block the outputs of the already-quantized blocks
    std::string cache_dir;    // where H matrices are cached; empty = no cache
};

std::string to_string(QuantMethod m);
std::string to_string(InitMethod m);
std::string to_string(Split s);
std::string to_string(LoftqQuant q);
std::string to_string(DeviceChoice d);
// Parsers accept exactly the CLI spellings and throw cloq::Error naming the accepted values.
QuantMethod parse_quant_method(const std::string& s);
InitMethod parse_init_method(const std::string& s);
Split parse_split(const std::string& s);
LoftqQuant parse_loftq_quant(const std::string& s);
DeviceChoice parse_device(const std::string& s);

// True when `a` and `b` give the same quantized base Q: they differ at most in the low-rank part (rank, init,
// split, LoftQ's options, alpha). The one rule for "does this change re-quantize" (the solver's cache, the GUI).
bool same_quantization(const LayerSettings& a, const LayerSettings& b);

// Checks ranges (bits, group, rank >= 0, iters >= 1, damp > 0, blocksize > 0, alpha > 0); throws cloq::Error.
void validate(const LayerSettings& s);

// JSON form used in profiles and reports (keys: bits, group, sym, quantizer, magr, damp, blocksize, act_order,
// static_groups, rank, init, split, loftq_iters, loftq_quant, lora_alpha). from_json accepts partial objects:
// missing keys keep the values of `base`; unknown keys and wrong types throw cloq::Error.
nlohmann::json to_json(const LayerSettings& s);
LayerSettings layer_settings_from_json(const nlohmann::json& j, const LayerSettings& base, const std::string& where);
nlohmann::json to_json(const CalibSettings& s);

// auto -> CUDA when this build and machine have it, else CPU; cuda without CUDA throws cloq::Error.
torch::Device resolve_device(DeviceChoice d);
bool cuda_available();

}  // namespace cloq
