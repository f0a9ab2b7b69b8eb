// LoRA fine-tuning on the quantized base (docs/design.md, Fine-tuning): what each initialization trains into.
//
// Every adapted linear layer computes y = x·Qᵀ + s·(x·lora_Aᵀ)·lora_Bᵀ with Q the frozen quantized base that the
// init sits on (the same Q `cloq quantize` exports for that init) and s = lora_alpha / r, PEFT's scaling. lora_A and
// lora_B start from the init's factors, saved as PEFT saves them (lora_A = A / s), so step 0 is exactly the
// initialized model that `cloq eval` measures. Zero init is QLoRA's: lora_B = 0 and PEFT's Kaiming-uniform lora_A
// (bound 1/√in), seeded, since A = B = 0 would have zero gradients forever.
//
// Training follows the paper's Table 9 recipe for WikiText-2: AdamW (β = 0.9/0.999, ε = 1e-8, decoupled weight decay),
// linear warmup then cosine decay to 0 as transformers' get_cosine_schedule_with_warmup computes it (the first step
// has lr 0 when there is warmup), global gradient-norm clipping, next-token NLL averaged over the batch's predicted
// positions. Training windows are drawn without replacement in a seeded shuffled order (reshuffled each epoch).
// CPU: float32; CUDA: float32 weights with the forward in the model's dtype.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cloq/analysis/calibration.h"
#include "cloq/base/progress.h"
#include "cloq/lowrank/lowrank.h"
#include "cloq/model/llama_model.h"
#include "cloq/model/model_files.h"
#include "cloq/model/perplexity.h"
#include "cloq/settings/profile.h"
#include "cloq/settings/settings.h"

namespace cloq {

// Mixed precision of the training forward (torch autocast): off = float32 throughout; bfloat16 on the CPU or CUDA;
// float16 on CUDA only (LibTorch's CPU autocast has no float16), with dynamic loss scaling because float16 gradients
// underflow. The weights, the LoRA factors, the optimizer state and the evaluation stay float32.
enum class Autocast { Off, BFloat16, Float16 };
Autocast parse_autocast(const std::string& s);  // "off" | "bfloat16" | "float16" (also "bf16", "fp16"); cloq::Error
std::string to_string(Autocast a);
// Throws cloq::Error when `a` cannot run on `device` (float16 off CUDA).
void check_autocast_device(Autocast a, torch::Device device);

struct FineTuneOptions {
    int steps = 200;
    int batch = 4;
    int seqlen = 256;
    double lr = 7e-4;  // paper Table 10, WikiText-2, g64, 3-bit
    double weight_decay = 0.1;
    double warmup_ratio = 0.03;
    double max_grad_norm = 1.0;  // <= 0: no clipping
    int eval_every = 50;         // also at step 0 and at the last step
    int eval_windows = -1;       // -1: every full window of the evaluation text
    uint64_t seed = 0;
    // Gradient checkpointing: keep only each decoder block's input for the backward and run the block again there
    // (one more forward per step; activation memory of one block instead of all). The gradients are the same.
    bool grad_checkpoint = false;
    Autocast autocast = Autocast::Off;
};
void validate(const FineTuneOptions& o);  // throws cloq::Error naming the bad option

// transformers' get_cosine_schedule_with_warmup: the learning rate of step t (0-based) of `steps`.
double cosine_lr(const FineTuneOptions& o, int t);

// One init to fine-tune: the init and, for CLoQ and plain SVD, the split of the singular values (paper Table 6).
struct FineTuneInit {
    InitMethod init = InitMethod::Cloq;
    Split split = Split::Default;
    std::string label() const;  // "cloq", "cloq-sqrt", "loftq", ...
};
std::vector<FineTuneInit> parse_finetune_inits(const std::string& inits, const std::string& splits);

// The trainable model: the frozen quantized base and one LoRA path per adapted layer.
class LoraFineTuner {
public:
    // Solves every layer's base and init under `p` (per-module settings, skipped modules stay float without
    // adapter) on `cal`'s Hs. Throws cloq::Error / cloq::Cancelled.
    LoraFineTuner(const ModelFiles& files, const ResolvedProfile& p, FineTuneInit init, const Calibration& cal,
                  const FineTuneOptions& opt, torch::Device device = torch::kCPU, const Progress& progress = {});
    ~LoraFineTuner();
    LoraFineTuner(LoraFineTuner&&) noexcept;

    const ModelConfig& config() const;
    int64_t trainable_parameters() const;
    std::vector<torch::Tensor> parameters() const;  // lora_A, lora_B of every adapted layer (requires_grad)
    // The frozen weight module `module` computes with (its init's Q; W for a skipped module), float32 CPU.
    const torch::Tensor& base_weight(const std::string& module) const;
    // The trainable path of an adapted module (its A and B carry .grad() after a backward); throws when none.
    const LoraPath& path(const std::string& module) const;

    // Mean next-token NLL of the windows ids [B, T], differentiable in the LoRA factors.
    torch::Tensor loss(const torch::Tensor& ids) const;
    // One optimizer step at step index t (schedule position) on ids; returns the loss before the update.
    double train_step(const torch::Tensor& ids, int t);
    // Perplexity of the current model (Q + s·B·A merged, as `cloq eval --adapter` merges) on `tokens`' windows.
    PerplexityResult evaluate(const std::vector<int32_t>& tokens, const PerplexityOptions& opt,
                              const Progress& progress = {}) const;

    // The current adapter of each adapted module as PEFT saves it (lora_A, lora_B, lora_alpha), for export.
    struct SavedAdapter {
        std::string module;
        torch::Tensor lora_A, lora_B;  // float32 CPU
        double lora_alpha = 16;
    };
    std::vector<SavedAdapter> adapters() const;
    // Writes adapter_config.json + adapter_model.safetensors into the existing folder `dir` (each atomically).
    void write_peft_adapter(const std::string& dir, const std::string& base_model_name_or_path) const;

private:
    struct State;
    std::unique_ptr<State> st_;
};

// One fine-tuning run's measurements.
struct FineTuneCurve {
    FineTuneInit init;
    std::vector<double> train_loss;                // per step: the batch's mean NLL before the step
    std::vector<double> lr;                        // per step
    std::vector<std::pair<int, double>> eval_ppl;  // (steps done, ppl); step 0 = the initialized model
    double setup_seconds = 0;                      // quantize + init solve
    std::vector<double> step_seconds;              // per step: the wall time of train_step
    double seconds_per_step = 0;                   // mean over the training steps (evaluation excluded)
    double tokens_per_second = 0;                  // trained tokens (batch·seqlen per step) per second of training
    int64_t peak_rss_bytes = 0;                    // the process's peak resident memory after the run
    int64_t trainable_parameters = 0;
};

// Cuts `train_tokens` into windows of opt.seqlen and runs opt.steps steps, evaluating on `eval_tokens` at step 0,
// every opt.eval_every steps and at the end. `on_update` sees the curve after every step and evaluation.
// Throws cloq::Error before any work when a text holds no window.
FineTuneCurve finetune(LoraFineTuner& tuner, const std::vector<int32_t>& train_tokens,
                       const std::vector<int32_t>& eval_tokens, const FineTuneOptions& opt,
                       const Progress& progress = {}, const std::function<void(const FineTuneCurve&)>& on_update = {});

}  // namespace cloq
