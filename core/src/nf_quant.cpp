#include "cloq/nf_quant.h"

#include <torch/torch.h>

#include "cloq/error.h"

namespace cloq {

const std::vector<float>& nf_table(int) { throw Error("NF quantization is not implemented yet in this build"); }
NfQuantized quantize_nf(const torch::Tensor&, int, int) {
    throw Error("NF quantization is not implemented yet in this build");
}
torch::Tensor dequantize_nf(const NfQuantized&) { throw Error("NF quantization is not implemented yet in this build"); }

}  // namespace cloq
