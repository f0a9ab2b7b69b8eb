#include "quant/quantize.h"

#include <torch/torch.h>

#include "cloq/base/error.h"
#include "quant/gptq.h"
#include "quant/magr.h"

namespace cloq {

QuantizedWeight quantize_weight(const torch::Tensor& W, const torch::Tensor& H, const LayerSettings& s,
                                const Progress& progress) {
    validate(s);
    const bool needs_h = s.magr || s.method == QuantMethod::Gptq;
    if (needs_h && !H.defined())
        throw Error("quantizer '" + to_string(s.method) + "'" + (s.magr ? " with MagR" : "") +
                    " needs the calibration matrix H, but none was given");
    torch::Tensor Wq = W;
    // MagR costs `iters` GEMMs of [out,in]x[in,in]; GPTQ about one such GEMM: split the progress accordingly.
    const double magr_share = s.magr ? (s.method == QuantMethod::Gptq ? 0.9 : 1.0) : 0.0;
    if (s.magr) Wq = magr_preprocess(W, H, s.quant.group, MagrOptions{}, progress.slice(0.0, magr_share));
    if (s.method == QuantMethod::Rtn) {
        progress(magr_share, "RTN");
        auto qw = quantize_rtn(Wq, s.quant);
        progress(1.0, "RTN");
        return qw;
    }
    GptqOptions opt;
    opt.damp = s.damp;
    opt.blocksize = s.blocksize;
    opt.act_order = s.act_order;
    opt.static_groups = s.static_groups;
    return quantize_gptq(Wq, H, s.quant, opt, progress.slice(magr_share, 1.0));
}

}  // namespace cloq
