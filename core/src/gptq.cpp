#include "cloq/gptq.h"

#include <torch/torch.h>

#include "cloq/error.h"

namespace cloq {

QuantizedWeight quantize_gptq(const torch::Tensor&, const torch::Tensor&, const IntQuantSpec&, const GptqOptions&,
                              const Progress&) {
    throw Error("GPTQ is not implemented yet in this build");
}

}  // namespace cloq
