// A fast non-cryptographic 128-bit content hash for cache keys (model weights, calibration text, settings).
// Not for security: it only has to change when the content does.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace cloq {

class ContentHash {
public:
    ContentHash& update(const void* data, size_t size);
    ContentHash& update(const std::string& s) {
        update_u64(s.size());  // length first, so ("ab","c") and ("a","bc") differ
        return update(s.data(), s.size());
    }
    ContentHash& update_u64(uint64_t v) { return update(&v, sizeof v); }
    std::string hex() const;  // 32 hex digits

private:
    // Two independent FNV-1a-style lanes over 64-bit words, finished with a strong mixer.
    uint64_t a_ = 0xcbf29ce484222325ull, b_ = 0x84222325cbf29ce4ull, n_ = 0;
};

// Hash of a whole file's bytes; throws cloq::Error naming the file when it cannot be read.
std::string hash_file(const std::string& path);

}  // namespace cloq
