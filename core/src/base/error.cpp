#include "cloq/base/error.h"

#include <c10/util/Exception.h>

#include <new>

namespace cloq {

namespace {

constexpr const char* kOutOfMemory =
    "out of memory; try smaller settings (a lower rank, fewer or shorter calibration windows, --device cpu)";

// LibTorch reports a failed allocation as a c10::Error whose text names the allocator (CPU) or says "out of
// memory" (CUDA); both mean the same to a user.
bool is_allocation_failure(const std::string& text) {
    return text.find("out of memory") != std::string::npos || text.find("can't allocate memory") != std::string::npos ||
           text.find("DefaultCPUAllocator") != std::string::npos;
}

}  // namespace

std::string error_message(const std::exception& e) {
    if (dynamic_cast<const Error*>(&e)) return e.what();
    if (dynamic_cast<const std::bad_alloc*>(&e)) return kOutOfMemory;
    if (const auto* t = dynamic_cast<const c10::Error*>(&e)) {
        const std::string text = t->what_without_backtrace();
        if (is_allocation_failure(text)) return kOutOfMemory;
        return "internal tensor error: " + text;
    }
    return e.what();
}

}  // namespace cloq
