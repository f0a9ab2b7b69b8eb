// libFuzzer target: the .npy reader (cloq/npy.h). An accepted array must have exactly as many bytes as its
// shape and dtype say, and must survive write_npy -> read_npy unchanged.
#include <torch/torch.h>

#include <cstring>

#include "cloq/io/npy.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto& dir = cloq::fuzz::scratch();
    const std::string path = dir.write("array.npy", data, size);
    cloq::fuzz::expect_success_or_error([&] {
        const torch::Tensor t = cloq::read_npy(path);
        if (!t.is_contiguous() || !t.device().is_cpu()) std::abort();
        if (static_cast<size_t>(t.numel()) * t.element_size() > size) std::abort();  // data came from the file
        const std::string back = dir.path() + "/back.npy";
        cloq::write_npy(back, t);
        const torch::Tensor u = cloq::read_npy(back);
        if (u.scalar_type() != t.scalar_type() || u.sizes() != t.sizes()) std::abort();
        if (t.numel() > 0 && !torch::equal(u, t)) {
            // NaN payloads compare unequal to themselves: compare the bytes instead.
            if (std::memcmp(u.data_ptr(), t.data_ptr(), t.numel() * t.element_size()) != 0) std::abort();
        }
    });
    return 0;
}
