// Mixed-precision training (FineTuneOptions::autocast): the autocast region of the training forward, and the loss
// scaling float16 needs. Private to finetune/.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "cloq/finetune/finetune.h"

namespace cloq {

// Turns LibTorch's autocast on for `device` in `precision` for its lifetime and restores the previous state after.
// Autocast runs matmuls and linears in the lower precision and keeps reductions (softmax, cross-entropy, norms) in
// float32, as torch.autocast does; the weights and the LoRA factors stay float32. Off: does nothing. The backward
// runs outside it (as PyTorch recommends), except for the recomputation of a checkpointed block, which re-enters it.
class AutocastGuard {
public:
    AutocastGuard(torch::Device device, Autocast precision);
    ~AutocastGuard();
    AutocastGuard(const AutocastGuard&) = delete;
    AutocastGuard& operator=(const AutocastGuard&) = delete;

private:
    bool on_ = false, cuda_ = false, was_enabled_ = false;
    at::ScalarType was_dtype_ = at::kFloat;
};

// Dynamic loss scaling, PyTorch's GradScaler: float16 gradients of a small loss underflow to zero, so the loss is
// multiplied by a scale before the backward and the gradients divided by it before the optimizer step. A step whose
// gradients hold inf or NaN is skipped and the scale halved; after `interval` good steps in a row it doubles. Scales
// are powers of two, so scaling and unscaling are exact in float32.
class LossScaler {
public:
    explicit LossScaler(double init = 65536.0, int interval = 2000) : scale_(init), interval_(interval) {}
    torch::Tensor scale(const torch::Tensor& loss) const { return loss * scale_; }
    // Divides the gradients by the scale in place; true when all of them are finite (the step may be taken).
    bool unscale(const std::vector<torch::Tensor>& params) const;
    // After each step: `finite` as unscale returned it.
    void update(bool finite);
    double value() const { return scale_; }
    int skipped() const { return skipped_; }

private:
    double scale_;
    int interval_, good_ = 0, skipped_ = 0;
};

}  // namespace cloq
