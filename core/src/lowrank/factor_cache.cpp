#include "cloq/lowrank/factor_cache.h"

namespace cloq {

std::string FactorCache::group_key(const LinearLayer& l) {
    return "layers." + std::to_string(l.layer) + "." + to_string(l.group);
}

std::shared_ptr<const HessianFactor> FactorCache::get(const LinearLayer& l,
                                                      const std::function<torch::Tensor()>& hessian,
                                                      const Progress& progress) {
    return get(group_key(l), l.layer, hessian, progress);
}

std::shared_ptr<const HessianFactor> FactorCache::get(const std::string& key, int block,
                                                      const std::function<torch::Tensor()>& hessian,
                                                      const Progress& progress) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (keep_ == Keep::CurrentBlock && block != block_) {
        factors_.clear();
        made_.clear();
        block_ = block;
    }
    auto& slot = factors_[key];
    if (slot) return slot;
    slot = std::make_shared<const HessianFactor>(hessian(), key + " H", progress);
    auto made = slot;
    made_.push_back(key);
    while (keep_ == Keep::Bounded && made_.size() > capacity_) {
        factors_.erase(made_.front());
        made_.erase(made_.begin());
    }
    return made;
}

void FactorCache::clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    factors_.clear();
    made_.clear();
    block_ = -1;
}

}  // namespace cloq
