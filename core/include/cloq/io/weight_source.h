// Read-only access to a model's tensors by their Hugging Face names ("model.layers.0.self_attn.q_proj.weight"),
// whatever the container (safetensors folder, GGUF file). Loading returns float32 on the CPU; a 7B model is
// never loaded whole: callers load the tensors of one decoder block at a time.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace cloq {

class WeightSource {
public:
    virtual ~WeightSource() = default;
    virtual std::vector<std::string> names() const = 0;
    virtual bool contains(const std::string& name) const = 0;
    virtual std::vector<int64_t> shape(const std::string& name) const = 0;
    virtual std::string dtype(const std::string& name) const = 0;  // as stored: "F32", "BF16", "Q4_1", ...
    // float32, CPU, contiguous, in the HF layout; throws cloq::Error naming the file for a missing tensor
    virtual torch::Tensor load(const std::string& name) const = 0;
    virtual std::string describe() const = 0;  // e.g. "model.safetensors (47 tensors, F32)"
    // A hex string that changes when the weights change (cache keys for calibration). The default hashes names,
    // shapes, dtypes and a sample of every tensor's loaded values; containers with raw bytes do it cheaper.
    virtual std::string fingerprint() const;
};

}  // namespace cloq
