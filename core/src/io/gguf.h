// GGUF (llama.cpp's single-file model format, versions 2 and 3): header, metadata key/values of every type
// (nested arrays included), tensor infos, alignment and memory-mapped tensor data, dequantized to float32 on load.
// Everything is bounds-checked with checked 64-bit arithmetic: a malformed or hostile file gives a cloq::Error
// naming the file and the problem, never a read past the buffer, and lying counts never cause large allocations.
//
// Spec: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md. Layout: magic "GGUF", u32 version,
// u64 tensor_count, u64 kv_count, kv_count × {string key, u32 value type, value}, tensor_count × {string name,
// u32 n_dims, n_dims × u64 ne (ne[0] = fastest varying = row length), u32 ggml type, u64 offset}, padding to
// `general.alignment` (default 32), tensor data (offsets relative to its start, each a multiple of the alignment).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/gguf_dequant.h"

namespace cloq {

enum class GgufValueType : uint32_t {
    Uint8 = 0,
    Int8 = 1,
    Uint16 = 2,
    Int16 = 3,
    Uint32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    Uint64 = 10,
    Int64 = 11,
    Float64 = 12,
};
std::string to_string(GgufValueType t);

// One metadata value. Arrays of fixed-size scalars keep their raw little-endian bytes (a compact copy, so a large
// honest array costs no more memory than its bytes in the file); string arrays and nested arrays are expanded.
class GgufValue {
public:
    GgufValueType type() const { return type_; }
    bool is_integer() const;  // any of the 8 integer types
    bool is_float() const { return type_ == GgufValueType::Float32 || type_ == GgufValueType::Float64; }
    bool is_array() const { return type_ == GgufValueType::Array; }

    // Scalars. Each throws cloq::Error (without a file name; GgufFile's getters add it) on a type mismatch.
    int64_t as_int() const;    // integer types (a uint64 above INT64_MAX is an error)
    double as_double() const;  // integer or float types
    bool as_bool() const;
    const std::string& as_string() const;

    // Arrays.
    GgufValueType element_type() const { return elem_; }
    uint64_t size() const { return count_; }
    std::vector<int64_t> int_array() const;    // element type integer (or bool)
    std::vector<double> double_array() const;  // element type integer or float
    const std::vector<std::string>& string_array() const;
    const std::vector<GgufValue>& nested_array() const;

    // Short human-readable form for `cloq info`: `30`, `"llama"`, `[string × 49152]`.
    std::string summary() const;

private:
    friend class GgufParser;
    GgufValueType type_ = GgufValueType::Uint8;
    GgufValueType elem_ = GgufValueType::Uint8;
    uint64_t count_ = 0;
    uint64_t scalar_ = 0;  // bits of a scalar, zero-extended little-endian
    std::string str_;
    std::vector<uint8_t> raw_;
    std::vector<std::string> strings_;
    std::vector<GgufValue> nested_;

    int64_t int_at(uint64_t i) const;
    double double_at(uint64_t i) const;
};

struct GgufTensorInfo {
    std::string name;
    std::vector<int64_t> ne;  // GGUF order: ne[0] is the row length (fastest varying)
    uint32_t type_id = 0;     // a GgmlType value (checked to be supported at open)
    uint64_t offset = 0;      // from the start of the data section
    uint64_t n_bytes = 0;
    int64_t n_elements = 0;

    GgmlType type() const { return static_cast<GgmlType>(type_id); }
    std::string type_name() const { return ggml_type_name(type_id); }
    // PyTorch shape: ne reversed ([out, in] for a GGUF matrix with ne = {in, out}).
    std::vector<int64_t> torch_shape() const { return {ne.rbegin(), ne.rend()}; }
};

class GgufFile {
public:
    // Memory-maps and validates the whole header. Throws cloq::Error naming `path` and the problem.
    static std::shared_ptr<const GgufFile> open(const std::string& path);
    // Parses a copy of `bytes` (for tests and fuzzing); `name` stands for the file in messages.
    static std::shared_ptr<const GgufFile> from_bytes(std::string_view bytes, const std::string& name);

    const std::string& path() const { return path_; }
    uint32_t version() const { return version_; }
    uint64_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }  // absolute file offset of the data section
    uint64_t file_size() const { return size_; }

    // Metadata in file order, and lookup by key.
    const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
    const GgufValue* find(const std::string& key) const;
    // Typed getters: cloq::Error naming the file and key when missing (get_*) or of the wrong type (both).
    int64_t get_int(const std::string& key) const;
    std::optional<int64_t> find_int(const std::string& key) const;
    double get_double(const std::string& key) const;
    std::optional<double> find_double(const std::string& key) const;
    std::string get_string(const std::string& key) const;
    std::optional<std::string> find_string(const std::string& key) const;
    std::optional<bool> find_bool(const std::string& key) const;
    const GgufValue& get_array(const std::string& key, GgufValueType element_type) const;

    // Tensors in file order, and lookup by GGUF name.
    const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
    const GgufTensorInfo* find_tensor(const std::string& name) const;
    // The tensor's stored bytes (n_bytes of them; the span was checked at open).
    const uint8_t* tensor_data(const GgufTensorInfo& t) const { return base_ + data_offset_ + t.offset; }
    // float32, CPU, contiguous, in PyTorch layout (torch_shape()). Throws for an unknown name.
    torch::Tensor load_float(const std::string& name) const;

private:
    friend class GgufParser;
    std::string path_;
    std::shared_ptr<const void> storage_;  // keeps the mapping (or the byte copy) alive
    const uint8_t* base_ = nullptr;
    uint64_t size_ = 0;
    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    std::vector<std::pair<std::string, GgufValue>> kv_;
    std::unordered_map<std::string, size_t> kv_index_;
    std::vector<GgufTensorInfo> tensors_;
    std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace cloq
