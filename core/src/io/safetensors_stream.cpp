#include "cloq/io/safetensors_stream.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <set>

#include "cloq/base/atomic_file.h"
#include "cloq/base/error.h"
#include "cloq/io/safetensors.h"

namespace cloq {

void write_safetensors_streamed(const std::string& path, const std::vector<SafetensorsEntry>& entries,
                                const std::map<std::string, std::string>& metadata, const Progress& progress) {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) {
        nlohmann::ordered_json m = nlohmann::ordered_json::object();
        for (const auto& [k, v] : metadata) m[k] = v;
        header["__metadata__"] = m;
    }
    std::set<std::string> seen;
    uint64_t offset = 0;
    std::vector<uint64_t> sizes;
    sizes.reserve(entries.size());
    for (const auto& e : entries) {
        if (e.name.empty() || e.name == "__metadata__") throw Error(path + ": invalid tensor name '" + e.name + "'");
        if (!seen.insert(e.name).second) throw Error(path + ": tensor '" + e.name + "' given twice");
        if (!e.produce) throw Error(path + ": tensor '" + e.name + "' has no data");
        uint64_t count = 1;
        for (const auto d : e.shape) {
            if (d < 0 || __builtin_mul_overflow(count, static_cast<uint64_t>(d), &count))
                throw Error(path + ": tensor '" + e.name + "' has an invalid shape");
        }
        const uint64_t nbytes = count * c10::elementSize(e.dtype);
        header[e.name] = {{"dtype", safetensors_dtype_name(e.dtype)},
                          {"shape", e.shape},
                          {"data_offsets", {offset, offset + nbytes}}};
        offset += nbytes;
        sizes.push_back(nbytes);
    }
    std::string h = header.dump();
    h.append((8 - h.size() % 8) % 8, ' ');  // the data buffer starts 8-aligned, as the reference writer does
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>((static_cast<uint64_t>(h.size()) >> (8 * i)) & 0xff);

    AtomicFile f(path);
    f.write(len, 8);
    f.write(h);
    for (size_t i = 0; i < entries.size(); ++i) {
        const auto& e = entries[i];
        progress(static_cast<double>(i) / std::max<size_t>(entries.size(), 1), "writing " + e.name);
        auto t = e.produce();
        if (!t.defined() || t.scalar_type() != e.dtype || t.sizes().vec() != e.shape)
            throw Error(path + ": tensor '" + e.name + "' came out with a different type or shape than declared");
        t = t.detach().to(torch::kCPU).contiguous();
        const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * t.element_size();
        if (nbytes != sizes[i]) throw Error(path + ": tensor '" + e.name + "' has an unexpected byte size");
        if (nbytes > 0) f.write(t.data_ptr(), static_cast<size_t>(nbytes));
    }
    f.commit();
    progress(1.0, "wrote " + path);
}

}  // namespace cloq
