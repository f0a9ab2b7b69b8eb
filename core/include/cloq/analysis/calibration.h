// Calibration (docs/design.md, Calibration): the Gram matrices H = XᵀX of every linear layer's inputs over a sample of
// text, from the FULL-PRECISION model, in float64 — one per input group and block (q/k/v share `attn_in`, gate/up
// share `mlp_in`, o_proj and down_proj have their own). H is the plain sum over all calibration tokens (not a mean):
// every consumer (CLoQ's λ = 0.01·tr(H)/in, GPTQ's damping, relative metrics) is invariant to its scale.
//
// Windows: the text is tokenized once (BOS first); window i starts at  s_i = x_i mod (N − seqlen + 1)  where x_i is
// the i-th output of std::mt19937_64 seeded with `seed` (fully specified by the C++ standard, so the windows are the
// same on every platform and compiler) and N the number of tokens. seqlen is capped at the model's context.
//
// Cache: with a cache folder, the Hs are stored under <cache>/<key>/ (manifest.json + one safetensors file of F64
// tensors per block) where key hashes the format version, the model's weights and config, the text, the token
// stream and the settings. A cache entry is used only when its manifest, key, shapes and every block file check
// out; anything else is recomputed (with a notice) and replaced, never trusted.
//
// Sequential mode (GPTQ-style): block i's Hs are accumulated on the outputs of the already-quantized blocks 0..i-1;
// a callback then replaces block i's weights (e.g. by Q + B·A) before its outputs feed block i+1.
#pragma once
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cloq/base/progress.h"
#include "cloq/model/llama_model.h"
#include "cloq/model/model_layout.h"
#include "cloq/settings/settings.h"

namespace cloq {

inline constexpr int kCalibrationFormatVersion = 1;

using BlockHessians = std::array<torch::Tensor, 4>;  // indexed by InputGroup, float64 [in, in] on the CPU

class Calibration {
public:
    std::string key;  // the cache key (32 hex digits)
    int64_t nsamples = 0, seqlen = 0;
    int64_t tokens = 0;       // calibration tokens = nsamples × seqlen
    int64_t text_tokens = 0;  // tokens in the whole text
    bool sequential = false;
    bool from_cache = false;
    double seconds = 0;                // time to compute (or load) the Hs
    std::vector<std::string> notices;  // e.g. "seqlen capped at 512", "cache entry ... invalid: recomputed"
    std::string cache_path;            // <cache>/<key> when cached

    int64_t num_layers() const { return static_cast<int64_t>(blocks_.size()); }
    // H of an input group, float64 [in, in], CPU. Blocks not kept in memory are read from the cache on demand.
    torch::Tensor hessian(int layer, InputGroup g) const;
    torch::Tensor hessian(const LinearLayer& l) const { return hessian(l.layer, l.group); }

    // Used by calibrate(): in-memory blocks, or empty tensors for blocks that live only in the cache folder.
    void set_blocks(std::vector<BlockHessians> b) { blocks_ = std::move(b); }

private:
    std::vector<BlockHessians> blocks_;
};

// Window starts as documented above. Throws cloq::Error when the text has fewer than seqlen + 1 tokens.
std::vector<int64_t> calibration_window_starts(int64_t num_tokens, int64_t seqlen, int64_t nsamples, uint64_t seed);

// Sequential mode's callback: called with block `layer`'s Hs (accumulated on the inputs from the already-processed
// blocks) and that block's weights; it assigns new tensors to the linear weights it replaces (never modify them
// in place: they may be shared with the model's cache).
using BlockQuantizer = std::function<void(int layer, const BlockHessians& H, BlockWeights& w)>;

struct CalibrationRequest {
    CalibSettings settings;     // text_path, nsamples, seqlen, seed, sequential, cache_dir
    BlockQuantizer quantizer;   // required when settings.sequential
    std::string quantizer_key;  // what the quantizer depends on (settings JSON): part of the cache key
};

// The calibration cache every front end uses by default, so that the CLI and the GUI reuse each other's Hs:
// $CLOQ_CACHE_DIR/calibration, else $XDG_CACHE_HOME/cloq-studio/calibration, else ~/.cache/cloq-studio/calibration
// (empty when none of them is set: no cache).
std::string default_calibration_cache();

// Tokenizes settings.text_path with the model's tokenizer, then computes or loads the Hs.
Calibration calibrate(const LlamaModel& model, const CalibrationRequest& req, const Progress& progress = {});
// The same on an already tokenized text (BOS first); `text_hash` identifies the text in the cache key.
Calibration calibrate_tokens(const LlamaModel& model, const std::vector<int32_t>& tokens, const std::string& text_hash,
                             const CalibrationRequest& req, const Progress& progress = {});

}  // namespace cloq
