#include "cloq/magr.h"

#include <torch/torch.h>

#include "cloq/error.h"

namespace cloq {

torch::Tensor magr_preprocess(const torch::Tensor&, const torch::Tensor&, int, const MagrOptions&, const Progress&) {
    throw Error("MagR is not implemented yet in this build");
}
torch::Tensor project_l1_ball(const torch::Tensor&, double) { throw Error("MagR is not implemented yet in this build"); }
torch::Tensor prox_linf(const torch::Tensor&, double) { throw Error("MagR is not implemented yet in this build"); }

}  // namespace cloq
