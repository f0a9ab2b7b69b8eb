// safetensors (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N, N bytes of
// JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the raw data buffer.
// The reader memory-maps the file and validates the header as the reference implementation does (docs/design.md, Bad
// input): header <= 100 MB, checked 64-bit arithmetic, offsets contiguous in order with no gap or overlap and
// covering the whole buffer, byte span = dtype size x element count, unknown dtypes and duplicate names rejected.
// Every error names the file. The writer replaces its target atomically.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cloq/io/weight_source.h"

namespace cloq {

inline constexpr uint64_t kSafetensorsMaxHeader = 100ull * 1000 * 1000;  // as the reference implementation

struct SafetensorsTensorInfo {
    std::string dtype;  // "F32", "F16", "BF16", "I32", ... exactly as stored
    std::vector<int64_t> shape;
    uint64_t begin = 0, end = 0;  // byte offsets into the data buffer
    uint64_t nbytes() const { return end - begin; }
};

// One memory-mapped, validated .safetensors file. Cheap to copy (the mapping is shared).
class SafetensorsFile {
public:
    explicit SafetensorsFile(const std::string& path);

    const std::string& path() const { return path_; }
    std::vector<std::string> names() const;  // in data-offset order, as stored
    bool contains(const std::string& name) const { return index_.count(name) > 0; }
    const SafetensorsTensorInfo& info(const std::string& name) const;  // throws naming the file
    const std::map<std::string, std::string>& metadata() const { return meta_->metadata; }
    // The stored bytes of a tensor (valid while any copy of this object lives).
    const uint8_t* bytes(const std::string& name) const;
    // A copy in the stored dtype (F32/F16/BF16/F64/I8..I64/U8/BOOL); other dtypes throw.
    torch::Tensor tensor(const std::string& name) const;
    // A float32 copy (F32/F16/BF16/F64 and integer dtypes converted).
    torch::Tensor load_float(const std::string& name) const;

private:
    struct Mapping;
    struct Meta {
        std::vector<std::pair<std::string, SafetensorsTensorInfo>> tensors;  // offset order
        std::map<std::string, std::string> metadata;
    };
    std::string path_;
    std::shared_ptr<const Mapping> map_;
    std::shared_ptr<const Meta> meta_;
    std::map<std::string, size_t> index_;
    const uint8_t* data_ = nullptr;  // start of the data buffer inside the mapping
};

// All tensors of a model: a single .safetensors file, a sharded model (model.safetensors.index.json with its
// "weight_map"), or a folder holding either. Implements WeightSource (load() = float32, rejects NaN/Inf).
class SafetensorsWeights : public WeightSource {
public:
    explicit SafetensorsWeights(const std::string& path);

    std::vector<std::string> names() const override;
    bool contains(const std::string& name) const override { return where_.count(name) > 0; }
    std::vector<int64_t> shape(const std::string& name) const override;
    std::string dtype(const std::string& name) const override;
    torch::Tensor load(const std::string& name) const override;
    std::string describe() const override;
    // Names, dtypes, shapes and the first and last 64 KiB of every tensor's bytes: cheap even for a 7B model,
    // and any fine-tune changes it.
    std::string fingerprint() const override;

    torch::Tensor tensor(const std::string& name) const;  // stored dtype, for copying tensors through unchanged
    const SafetensorsFile& file_of(const std::string& name) const;
    const std::vector<SafetensorsFile>& files() const { return files_; }
    const std::string& path() const { return path_; }

private:
    std::string path_;
    std::vector<SafetensorsFile> files_;
    std::map<std::string, size_t> where_;  // tensor name -> index into files_
};

// Writes tensors in the given order (names must be unique; tensors are made contiguous and moved to the CPU),
// with the optional "__metadata__" string map, replacing `path` atomically. Supported dtypes: float32/16, bfloat16,
// float64, int8/16/32/64, uint8, bool.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// The safetensors name of a torch dtype ("F32", ...); throws cloq::Error for unsupported ones.
std::string safetensors_dtype_name(torch::ScalarType t);

}  // namespace cloq
