// Shared plumbing of the libFuzzer targets (tests/fuzz/fuzz_*.cpp).
//
// The contract every parser is fuzzed against (docs/design.md, Bad input): for ANY bytes it either succeeds or throws
// cloq::Error. A crash, a sanitizer report, a hang, an allocation bomb (libFuzzer's -rss_limit_mb/-malloc_limit_mb)
// or any other exception type escaping (nlohmann::json errors, c10::Error, std::bad_alloc, ...) is a finding:
// such an exception reaches std::terminate and libFuzzer records the input as a crash.
#pragma once
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "cloq/base/error.h"

namespace cloq::fuzz {

// The parsers open files by name (most memory-map them), so each input is written to a scratch file that lives in
// RAM (/dev/shm when present) in a folder private to this process; the folder is named like a model folder so
// parsers that look for siblings (config.json next to model.safetensors) find the fuzzed file there.
class ScratchDir {
public:
    ScratchDir() {
        const char* base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        dir_ = std::string(base) + "/cloq-fuzz-" + std::to_string(getpid());
        std::filesystem::create_directories(dir_);
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    const std::string& path() const { return dir_; }

    // Writes `data` to DIR/name (replacing it) and returns the file's path.
    std::string write(const std::string& name, const uint8_t* data, size_t size) const {
        const std::string file = dir_ + "/" + name;
        if (name.find('/') != std::string::npos)
            std::filesystem::create_directories(std::filesystem::path(file).parent_path());
        int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) std::abort();
        size_t done = 0;
        while (done < size) {
            ssize_t n = ::write(fd, data + done, size - done);
            if (n <= 0) std::abort();
            done += static_cast<size_t>(n);
        }
        ::close(fd);
        return file;
    }
    std::string write(const std::string& name, const std::string& text) const {
        return write(name, reinterpret_cast<const uint8_t*>(text.data()), text.size());
    }

private:
    std::string dir_;
};

// One scratch folder per fuzzing process, made on first use.
inline const ScratchDir& scratch() {
    static const ScratchDir dir;
    return dir;
}

// Runs `f`; cloq::Error is the one accepted way to refuse input. Anything else propagates (a finding).
template <typename F>
void expect_success_or_error(F&& f) {
    try {
        f();
    } catch (const cloq::Cancelled&) {
        std::abort();  // nothing cancels here: a parser throwing Cancelled is a bug
    } catch (const cloq::Error&) {}
}

// Splits an input into a selector byte (to pick a variant of the target) and the rest.
inline uint8_t take_selector(const uint8_t*& data, size_t& size) {
    if (size == 0) return 0;
    uint8_t s = data[0];
    ++data;
    --size;
    return s;
}

}  // namespace cloq::fuzz
