// The factors of H shared by the linear layers that read the same inputs: q/k/v of a block share one, gate/up
// share one (docs/design.md, Numerics). Each is computed once, on first use, by whoever asks first. Passes in model
// order keep only the current block's, so memory stays flat on big models; the GUI, which revisits layers in any
// order, keeps every factor it has made. Thread safe: a forward pass may ask from several threads.
#pragma once
#include <torch/types.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cloq/base/progress.h"
#include "cloq/lowrank/hessian_factor.h"
#include "cloq/model/model_layout.h"

namespace cloq {

class FactorCache {
public:
    // CurrentBlock: factors of other blocks are forgotten as a new block is asked for. Bounded: at most `capacity`
    // factors of any blocks, the oldest made forgotten first.
    enum class Keep { CurrentBlock, Bounded };
    explicit FactorCache(Keep keep = Keep::CurrentBlock, size_t capacity = 0) : keep_(keep), capacity_(capacity) {}

    // The factor of `l`'s (block, input group); `hessian` gives that group's H on first use.
    std::shared_ptr<const HessianFactor> get(const LinearLayer& l, const std::function<torch::Tensor()>& hessian,
                                             const Progress& progress = {});
    // The same for any key (a model layer's is group_key(l); the playground's synthetic layers have their own);
    // `block` decides what Keep::CurrentBlock forgets.
    std::shared_ptr<const HessianFactor> get(const std::string& key, int block,
                                             const std::function<torch::Tensor()>& hessian,
                                             const Progress& progress = {});

    void clear();

    // "layers.3.attn_in": what the layers sharing one factor have in common.
    static std::string group_key(const LinearLayer& l);

private:
    Keep keep_;
    size_t capacity_;
    std::mutex mutex_;
    int block_ = -1;
    std::map<std::string, std::shared_ptr<const HessianFactor>> factors_;
    std::vector<std::string> made_;  // keys in the order their factors were made (Bounded)
};

}  // namespace cloq
