#include "quantize_dispatch.h"

#include <torch/torch.h>

#include "cloq/error.h"

#if __has_include("cloq/quantize.h")
#include "cloq/quantize.h"
#define CLOQ_HAVE_QUANTIZE_WEIGHT 1
#endif
#if __has_include("cloq/nf_quant.h")
#include "cloq/nf_quant.h"
#define CLOQ_HAVE_NF_QUANT 1
#endif

namespace cloq::detail {

bool have_gptq() {
#ifdef CLOQ_HAVE_QUANTIZE_WEIGHT
    return true;
#else
    return false;
#endif
}

bool have_nf() {
#ifdef CLOQ_HAVE_NF_QUANT
    return true;
#else
    return false;
#endif
}

QuantizedWeight quantize_int(const torch::Tensor& W, const torch::Tensor& H, const LayerSettings& s,
                             const Progress& progress) {
#ifdef CLOQ_HAVE_QUANTIZE_WEIGHT
    return quantize_weight(W, H, s, progress);
#else
    (void)H;
    if (s.method != QuantMethod::Rtn || s.magr)
        throw Error("this build has no GPTQ/MagR quantizer yet; use --quantizer rtn without --magr");
    progress(0.0, "RTN quantization");
    return quantize_rtn(W.to(torch::kFloat32), s.quant);
#endif
}

torch::Tensor quantize_nf_dequantized(const torch::Tensor& W, int bits) {
#ifdef CLOQ_HAVE_NF_QUANT
    return quantize_nf(W.to(torch::kFloat32), bits, 64).Q.to(torch::kFloat32);
#else
    (void)W;
    (void)bits;
    throw Error("this build has no NF quantizer yet; use --loftq-quant int");
#endif
}

}  // namespace cloq::detail
