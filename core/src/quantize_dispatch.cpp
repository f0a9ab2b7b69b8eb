#include "quantize_dispatch.h"

#include <torch/torch.h>

#include "cloq/nf_quant.h"
#include "cloq/quantize.h"

namespace cloq::detail {

QuantizedWeight quantize_int(const torch::Tensor& W, const torch::Tensor& H, const LayerSettings& s,
                             const Progress& progress) {
    return quantize_weight(W, H, s, progress);
}

torch::Tensor quantize_nf_dequantized(const torch::Tensor& W, int bits) {
    return quantize_nf(W.to(torch::kFloat32), bits, 64).Q.to(torch::kFloat32);
}

}  // namespace cloq::detail
