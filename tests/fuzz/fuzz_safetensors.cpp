// libFuzzer target: the safetensors reader (cloq/safetensors.h). The input is a whole .safetensors file
// (8-byte header length, JSON header, data); every tensor of an accepted file is read back in its stored dtype
// and as float32, which exercises the offset/shape/dtype validation: an accepted file must never make a read
// leave the buffer. With the first byte odd, the rest is instead a sharded model's index.json (weight_map) next
// to a fixed valid shard, and the folder is opened as SafetensorsWeights.
#include <cstring>

#include "cloq/io/safetensors.h"
#include "fuzz_support.h"

namespace {

// A valid two-tensor shard "model-00001-of-00001.safetensors" ("a" F32 [2], "b" F16 [3]) for the index variant.
std::string valid_shard() {
    const std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                               R"("b":{"dtype":"F16","shape":[3],"data_offsets":[8,14]}})";
    std::string out(8, '\0');
    uint64_t n = header.size();
    std::memcpy(&out[0], &n, 8);  // little-endian host (x86-64, the only target the fuzz stage runs on)
    out += header;
    out += std::string(14, '\x11');
    return out;
}

void read_everything(const cloq::SafetensorsFile& f) {
    for (const auto& name : f.names()) {
        const auto& info = f.info(name);
        if (info.end < info.begin) std::abort();  // validated offsets must be ordered
        (void)f.bytes(name);
        cloq::fuzz::expect_success_or_error([&] { (void)f.tensor(name); });  // exotic dtypes may refuse
        cloq::fuzz::expect_success_or_error([&] { (void)f.load_float(name); });
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto& dir = cloq::fuzz::scratch();
    const uint8_t selector = cloq::fuzz::take_selector(data, size);
    if (selector % 2 == 0) {
        const std::string path = dir.write("model.safetensors", data, size);
        cloq::fuzz::expect_success_or_error([&] { read_everything(cloq::SafetensorsFile(path)); });
        return 0;
    }
    static const bool shard_written = [&] {
        dir.write("shard/model-00001-of-00001.safetensors", valid_shard());
        return true;
    }();
    (void)shard_written;
    dir.write("shard/model.safetensors.index.json", data, size);
    cloq::fuzz::expect_success_or_error([&] {
        cloq::SafetensorsWeights w(dir.path() + "/shard");
        for (const auto& name : w.names()) {
            (void)w.shape(name);
            (void)w.dtype(name);
            cloq::fuzz::expect_success_or_error([&] { (void)w.load(name); });
        }
    });
    return 0;
}
