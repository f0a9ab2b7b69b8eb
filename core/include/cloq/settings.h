// The settings a user chooses for one linear layer (quantizer + low-rank init) and for calibration.
// Shared by the CLI flags, the GUI's settings panel and settings profiles (JSON).
#pragma once
#include <nlohmann/json_fwd.hpp>
#include <torch/types.h>

#include <cstdint>
#include <string>

#include "cloq/quant_int.h"

namespace cloq {

enum class QuantMethod { Rtn, Gptq };
enum class InitMethod { Zero, Svd, Loftq, Cloq, Eora };
enum class Split { Default, Sqrt, UVs };   // paper Table 6: where the singular values go
enum class LoftqQuant { Int, Nf };          // LoftQ's inner quantizer: the same INT as CLoQ, or NF (QLoRA)
enum class DeviceChoice { Auto, Cpu, Cuda };

struct LayerSettings {
    IntQuantSpec quant;                  // bits / group / sym
    QuantMethod method = QuantMethod::Gptq;
    bool magr = false;                   // MagR preprocessing before quantization
    double damp = 0.01;                  // GPTQ dampening, fraction of mean(diag H)
    int blocksize = 128;                 // GPTQ block size
    bool act_order = false;              // GPTQ desc_act
    bool static_groups = false;          // GPTQ static groups (with act_order)
    int rank = 64;
    InitMethod init = InitMethod::Cloq;
    Split split = Split::Default;
    int loftq_iters = 5;
    LoftqQuant loftq_quant = LoftqQuant::Int;
    double lora_alpha = 16.0;

    bool operator==(const LayerSettings& o) const;
    bool operator!=(const LayerSettings& o) const { return !(*this == o); }
};

struct CalibSettings {
    std::string text_path;   // calibration text file
    int nsamples = 128;
    int seqlen = 2048;       // capped at the model's context length by the caller, with a notice
    uint64_t seed = 0;
    bool sequential = false; // GPTQ-style: feed each block the outputs of the already-quantized blocks
    std::string cache_dir;   // where H matrices are cached; empty = no cache
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
