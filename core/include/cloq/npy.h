// NumPy .npy files: the exchange format of `cloq layer` (weights, Gram matrices, activations, results).
// Only what NumPy writes for plain arrays: format versions 1.0, 2.0 and 3.0, little-endian (or byte-order-free)
// f2/f4/f8/i4/i8/u1/b1, C order. The header is validated in full (magic, version, header length bounds, the dict's
// syntax and keys, shape, data size exactly matching) and every error names the file and the problem.
#pragma once
#include <torch/types.h>

#include <string>

namespace cloq {

// Reads an array as a CPU tensor of the file's dtype (float16/32/64, int32/64, uint8, bool). A 0-d array gives a
// 0-d tensor. Throws cloq::Error ("FILE: what is wrong") for unreadable or malformed files and fortran_order=True.
torch::Tensor read_npy(const std::string& path);

// Writes a tensor (any device; the supported dtypes above) as a version 1.0 .npy in C order. Atomic: written to a
// temporary sibling, fsynced and renamed, so a failed write leaves no partial file. Throws cloq::Error.
void write_npy(const std::string& path, const torch::Tensor& t);

}  // namespace cloq
