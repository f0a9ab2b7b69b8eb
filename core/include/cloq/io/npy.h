// NumPy .npy files: the exchange format of `cloq layer` (weights, Gram matrices, activations, results).
// Only what NumPy writes for plain arrays: format versions 1.0, 2.0 and 3.0, little-endian (or byte-order-free)
// f2/f4/f8/i4/i8/u1/b1, C order. The header is validated in full (magic, version, header length bounds, the dict's
// syntax and keys, shape, data size exactly matching) and every error names the file and the problem.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cloq {

// What a .npy header says. `data_offset` is where the raw data starts; `data_bytes` = itemsize × ∏shape.
struct NpyHeader {
    char kind = 'f';   // 'f' float, 'i' signed int, 'u' unsigned int, 'b' bool
    int itemsize = 4;  // bytes per element
    std::vector<int64_t> shape;
    uint64_t data_offset = 0;
    uint64_t data_bytes = 0;
};

// Validates and parses the header at the start of `bytes` (the whole file or at least its header) without
// touching the data; `file` names the file in error messages. Throws cloq::Error. Checks that the file holds
// exactly data_bytes after the header when `file_size` is given (>= 0). Torch-free: the fuzz target calls it.
NpyHeader parse_npy_header(std::string_view bytes, const std::string& file, int64_t file_size = -1);

// Reads an array as a CPU tensor of the file's dtype (float16/32/64, int32/64, uint8, bool). A 0-d array gives a
// 0-d tensor. Throws cloq::Error ("FILE: what is wrong") for unreadable or malformed files and fortran_order=True.
torch::Tensor read_npy(const std::string& path);

// Writes a tensor (any device; the supported dtypes above) as a version 1.0 .npy in C order. Atomic: written to a
// temporary sibling, fsynced and renamed, so a failed write leaves no partial file. Throws cloq::Error.
void write_npy(const std::string& path, const torch::Tensor& t);

}  // namespace cloq
