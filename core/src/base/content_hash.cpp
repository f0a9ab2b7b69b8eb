#include "base/content_hash.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "cloq/base/error.h"

namespace cloq {

namespace {
uint64_t mix(uint64_t x) {  // splitmix64 finalizer
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
}  // namespace

ContentHash& ContentHash::update(const void* data, size_t size) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < size; ++i) {
        a_ = (a_ ^ p[i]) * 0x100000001b3ull;
        b_ = (b_ ^ p[i]) * 0x00000100000001b3ull + 0x9e3779b97f4a7c15ull;
    }
    n_ += size;
    return *this;
}

std::string ContentHash::hex() const {
    const uint64_t h[2] = {mix(a_ ^ mix(n_)), mix(b_ + a_ * 31 + n_)};
    char buf[33];
    std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(h[0]),
                  static_cast<unsigned long long>(h[1]));
    return buf;
}

std::string hash_file(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw Error("cannot read " + path + ": " + std::strerror(errno));
    ContentHash h;
    std::vector<char> buf(1 << 20);
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) h.update(buf.data(), n);
    const bool bad = std::ferror(f) != 0;
    std::fclose(f);
    if (bad) throw Error("cannot read " + path + ": read error");
    return h.hex();
}

}  // namespace cloq
