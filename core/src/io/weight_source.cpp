#include "cloq/io/weight_source.h"

#include <torch/torch.h>

#include "base/content_hash.h"

namespace cloq {

std::string WeightSource::fingerprint() const {
    ContentHash h;
    for (const auto& name : names()) {
        h.update(name).update(dtype(name));
        for (auto d : shape(name)) h.update_u64(static_cast<uint64_t>(d));
        // A sample of the values: the first and last 4096 (enough to tell two checkpoints of one shape apart).
        auto t = load(name).reshape({-1}).contiguous();
        const int64_t n = t.numel(), k = std::min<int64_t>(n, 4096);
        if (k == 0) continue;
        auto head = t.slice(0, 0, k).contiguous(), tail = t.slice(0, n - k, n).contiguous();
        h.update(head.data_ptr<float>(), static_cast<size_t>(k) * sizeof(float));
        h.update(tail.data_ptr<float>(), static_cast<size_t>(k) * sizeof(float));
    }
    return h.hex();
}

}  // namespace cloq
