// Refusing, before starting, work whose memory would exceed what the machine has: a clear message instead of the
// kernel's OOM killer half way through a calibration (issue 8, "Resource limits").
//
// The estimates are deliberately generous upper bounds of the PEAK resident memory of one step, written from the
// algorithms (docs/design.md): block-by-block forward with the calibration hidden states of every sample resident,
// float64 H per input group, float64 eigh/SVD per layer. They must never refuse what runs (so they only count what
// certainly exists at the peak) and must refuse what cannot (an H of 1e5 x 1e5, a million-sample calibration).
#pragma once
#include <cstdint>
#include <string>

#include "cloq/model/model_config.h"
#include "cloq/settings/settings.h"

namespace cloq {

struct MemoryBudget {
    uint64_t available_bytes = 0;  // what may still be allocated
    std::string source;            // where the number came from, for the message ("MemAvailable in /proc/meminfo")
};

// MemAvailable from /proc/meminfo, lowered to the cgroup's remaining limit when the process runs in a container
// with a memory limit (cgroup v2 memory.max / v1 memory.limit_in_bytes). The environment variable
// CLOQ_MEMORY_LIMIT (bytes, or with a K/M/G/T suffix) overrides it: to keep a shared machine's headroom, and
// for tests that need a small machine. Throws cloq::Error when nothing can be read or the variable is malformed.
MemoryBudget memory_budget();
// The same with CLOQ_MEMORY_LIMIT's value given (null or empty: not set). Tests call this one: changing the
// environment while another thread reads it (QtTest's watchdog does) is a data race.
MemoryBudget memory_budget(const char* limit);

// Peak bytes of one calibration pass (forward of the full-precision model block by block, H = XᵀX per input
// group): one decoder block's float32 weights + embeddings/head, hidden states in and out for all
// nsamples x seqlen tokens, one sample's intermediate activations and attention scores, and the float64 Hs of
// one block (attn_in, o_proj, mlp_in, down_proj).
uint64_t estimate_calibration_bytes(const ModelConfig& c, const CalibSettings& s);

// Peak bytes of solving one linear layer W [out, in] with H [in, in] (LayerSolver: quantizer incl. GPTQ's
// float64 Cholesky, eigh of H_λ, SVD of R·ΔWᵀ, the inits compared, metrics).
uint64_t estimate_layer_solve_bytes(int64_t out_features, int64_t in_features, const LayerSettings& s);

// Peak bytes of analysing (or exporting) a whole model with settings `s`: the largest layer's solve plus the Hs of
// one decoder block and that block's weights.
uint64_t estimate_analysis_bytes(const ModelConfig& c, const LayerSettings& s);

// Throws cloq::Error when `needed_bytes` exceeds the budget:
//   "<what> needs about 12.3 GiB of memory but only 7.9 GiB is available (MemAvailable in /proc/meminfo); <hint>"
void require_memory(uint64_t needed_bytes, const std::string& what, const std::string& hint,
                    const MemoryBudget& budget = memory_budget());

// Convenience wrappers with hints that name the settings to lower.
void check_calibration_memory(const ModelConfig& c, const CalibSettings& s,
                              const MemoryBudget& budget = memory_budget());
void check_analysis_memory(const ModelConfig& c, const LayerSettings& s, const MemoryBudget& budget = memory_budget());
void check_layer_memory(int64_t out_features, int64_t in_features, const LayerSettings& s,
                        const MemoryBudget& budget = memory_budget());

// The process's peak resident memory so far (getrusage ru_maxrss), in MiB: what the benchmarks and `cloq analyze`
// report after each stage (a running maximum, so a stage's value includes everything before it).
double peak_rss_mib();

// "12.3 GiB", "512 MiB": for messages.
std::string format_bytes(uint64_t bytes);

}  // namespace cloq
