// Writing a large .safetensors file one tensor at a time (exports of models that never fit in memory): the header
// is built from declared names, dtypes and shapes; each tensor is produced only when its bytes are due, checked
// against its declaration, written and dropped. Same format and atomic replace as write_safetensors().
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "cloq/base/progress.h"

namespace cloq {

struct SafetensorsEntry {
    std::string name;
    torch::ScalarType dtype = torch::kFloat32;
    std::vector<int64_t> shape;
    std::function<torch::Tensor()> produce;  // called once, in file order; must return exactly dtype/shape
};

// Writes the entries in the given order (names unique, not "__metadata__"). Progress is reported per tensor and
// checks cancellation; on any error or cancellation the temporary file is removed and `path` is untouched.
void write_safetensors_streamed(const std::string& path, const std::vector<SafetensorsEntry>& entries,
                                const std::map<std::string, std::string>& metadata = {}, const Progress& progress = {});

}  // namespace cloq
