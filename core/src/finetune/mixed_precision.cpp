#include "finetune/mixed_precision.h"

#include <ATen/autocast_mode.h>

#include <cmath>

namespace cloq {

AutocastGuard::AutocastGuard(torch::Device device, Autocast precision)
    : on_(precision != Autocast::Off), cuda_(device.is_cuda()) {
    if (!on_) return;
    const at::ScalarType dtype = precision == Autocast::Float16 ? at::kHalf : at::kBFloat16;
    if (cuda_) {
        was_enabled_ = at::autocast::is_enabled();
        was_dtype_ = at::autocast::get_autocast_gpu_dtype();
        at::autocast::set_enabled(true);
        at::autocast::set_autocast_gpu_dtype(dtype);
    } else {
        was_enabled_ = at::autocast::is_cpu_enabled();
        was_dtype_ = at::autocast::get_autocast_cpu_dtype();
        at::autocast::set_cpu_enabled(true);
        at::autocast::set_autocast_cpu_dtype(dtype);
    }
    at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
    if (!on_) return;
    // Autocast caches the low-precision copies of leaf tensors that require grad (the LoRA factors) while it is on;
    // leaving the outermost region drops them, so an optimizer step is never hidden behind a stale copy.
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    if (cuda_) {
        at::autocast::set_enabled(was_enabled_);
        at::autocast::set_autocast_gpu_dtype(was_dtype_);
    } else {
        at::autocast::set_cpu_enabled(was_enabled_);
        at::autocast::set_autocast_cpu_dtype(was_dtype_);
    }
}

bool LossScaler::unscale(const std::vector<torch::Tensor>& params) const {
    torch::NoGradGuard no_grad;
    bool finite = true;
    for (const auto& p : params) {
        if (!p.grad().defined()) continue;
        torch::Tensor g = p.grad();
        g.div_(scale_);
        if (finite && !torch::isfinite(g).all().item<bool>()) finite = false;
    }
    return finite;
}

void LossScaler::update(bool finite) {
    if (!finite) {
        scale_ *= 0.5;
        good_ = 0;
        ++skipped_;
        return;
    }
    if (++good_ >= interval_) {
        scale_ *= 2.0;
        good_ = 0;
    }
}

}  // namespace cloq
