// The one quantization entry point used by the layer solver, the pipeline and the GUI.
#pragma once
#include <torch/types.h>

#include "cloq/base/progress.h"
#include "cloq/quant/quant_int.h"
#include "cloq/settings/settings.h"

namespace cloq {

// MagR (if s.magr, with its default α for s.quant.group) on W, then RTN or GPTQ on the result according to
// s.method / s.quant / s.damp / s.blocksize / s.act_order / s.static_groups.
// W [out, in]; H [in, in] = XᵀX (unregularized). H may be undefined only for RTN without MagR.
// The returned Q approximates the MagR-modified W; callers measure errors against the ORIGINAL W.
QuantizedWeight quantize_weight(const torch::Tensor& W, const torch::Tensor& H, const LayerSettings& s,
                                const Progress& progress = {});

}  // namespace cloq
