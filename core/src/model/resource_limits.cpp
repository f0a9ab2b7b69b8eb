#include "cloq/model/resource_limits.h"

#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include "cloq/base/error.h"

namespace cloq {
namespace {

// Sizes come from files users hand us (a config.json may declare hidden_size 1e12), so the estimates are summed
// in double and saturate instead of wrapping around to a small number that would let the work start.
uint64_t saturate(double bytes) {
    if (!(bytes >= 0)) return 0;
    if (bytes >= 1.8e19) return std::numeric_limits<uint64_t>::max();
    return static_cast<uint64_t>(bytes);
}

double d(int64_t v) { return static_cast<double>(std::max<int64_t>(v, 0)); }

// "MemAvailable:   16825712 kB" -> bytes; 0 when the key is missing.
uint64_t meminfo_value(const std::string& key) {
    std::ifstream in("/proc/meminfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(key + ":", 0) != 0) continue;
        std::istringstream fields(line.substr(key.size() + 1));
        uint64_t kb = 0;
        if (fields >> kb) return kb * 1024;
    }
    return 0;
}

bool read_u64(const std::string& path, uint64_t& value) {
    std::ifstream in(path);
    std::string text;
    if (!(in >> text) || text == "max") return false;
    errno = 0;
    char* end = nullptr;
    unsigned long long v = std::strtoull(text.c_str(), &end, 10);
    if (errno != 0 || end == text.c_str() || *end != '\0') return false;
    value = v;
    return true;
}

uint64_t stat_value(const std::string& path, const std::string& key) {
    std::ifstream in(path);
    std::string k;
    uint64_t v = 0;
    while (in >> k >> v)
        if (k == key) return v;
    return 0;
}

// Remaining room under a container's memory limit (reclaimable page cache counted as free), or 0 if no limit.
uint64_t cgroup_room(std::string& source) {
    uint64_t limit = 0, usage = 0;
    if (read_u64("/sys/fs/cgroup/memory.max", limit) && read_u64("/sys/fs/cgroup/memory.current", usage)) {
        source = "cgroup memory.max";
        const uint64_t cache = stat_value("/sys/fs/cgroup/memory.stat", "inactive_file");
        return limit > usage ? limit - usage + cache : cache;
    }
    if (read_u64("/sys/fs/cgroup/memory/memory.limit_in_bytes", limit) &&
        read_u64("/sys/fs/cgroup/memory/memory.usage_in_bytes", usage) && limit < (uint64_t{1} << 60)) {
        source = "cgroup memory.limit_in_bytes";
        const uint64_t cache = stat_value("/sys/fs/cgroup/memory/memory.stat", "total_inactive_file");
        return limit > usage ? limit - usage + cache : cache;
    }
    return 0;
}

uint64_t parse_size(const std::string& text) {
    const std::string where = "CLOQ_MEMORY_LIMIT='" + text + "'";
    size_t pos = 0;
    double value = 0;
    try {
        value = std::stod(text, &pos);
    } catch (const std::exception&) {
        throw Error(where + ": not a size (use bytes or a number with K, M, G or T, e.g. 8G)");
    }
    std::string suffix = text.substr(pos);
    double scale = 1;
    if (!suffix.empty()) {
        const char c = static_cast<char>(std::toupper(static_cast<unsigned char>(suffix[0])));
        const std::string rest = suffix.substr(1);
        switch (c) {
        case 'K':
            scale = 1024.0;
            break;
        case 'M':
            scale = 1024.0 * 1024;
            break;
        case 'G':
            scale = 1024.0 * 1024 * 1024;
            break;
        case 'T':
            scale = 1024.0 * 1024 * 1024 * 1024;
            break;
        default:
            throw Error(where + ": unknown size suffix '" + suffix + "' (use K, M, G or T)");
        }
        if (rest != "" && rest != "B" && rest != "iB")
            throw Error(where + ": unknown size suffix '" + suffix + "' (use K, M, G or T)");
    }
    if (!(value > 0) || !std::isfinite(value)) throw Error(where + ": must be a positive size");
    return saturate(value * scale);
}

// Float64 Hs of one decoder block: attn_in [h,h] (q/k/v), o_proj's input [nh*hd, nh*hd], mlp_in [h,h]
// (gate/up), down_proj's input [i,i].
double block_hessian_bytes(const ModelConfig& c) {
    const double h = d(c.hidden_size), i = d(c.intermediate_size), a = d(c.num_heads) * d(c.head_dim);
    return 8.0 * (2 * h * h + a * a + i * i);
}

// Float32 weights of one decoder block (the seven linear layers; norms are negligible).
double block_weight_bytes(const ModelConfig& c) {
    const double h = d(c.hidden_size), i = d(c.intermediate_size);
    const double q = d(c.num_heads) * d(c.head_dim), kv = d(c.num_kv_heads) * d(c.head_dim);
    return 4.0 * (h * q + 2 * h * kv + q * h + 3 * h * i);
}

double layer_solve_bytes(double out, double in, double rank) {
    const double k = std::min(in, out);
    const double f32 = 4.0 * (2 * out * in);    // W and Q
    const double h64 = 8.0 * (3 * in * in);     // H, H_λ's eigenvectors, R (or GPTQ's Cholesky)
    const double dw64 = 8.0 * (2 * out * in);   // ΔW and R·ΔWᵀ in float64
    const double svd64 = 8.0 * (in + out) * k;  // singular vectors
    const double lora = 4.0 * rank * (in + out);
    return f32 + h64 + dw64 + svd64 + lora;
}

}  // namespace

double peak_rss_mib() {
    struct rusage u {};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_maxrss) / 1024.0;  // Linux reports KiB
}

std::string format_bytes(uint64_t bytes) {
    char buf[64];
    const double b = static_cast<double>(bytes);
    if (b >= 1024.0 * 1024 * 1024 * 1024 * 1024)
        std::snprintf(buf, sizeof buf, "%.3g PiB", b / std::pow(1024.0, 5));
    else if (b >= 1024.0 * 1024 * 1024 * 1024)
        std::snprintf(buf, sizeof buf, "%.1f TiB", b / std::pow(1024.0, 4));
    else if (b >= 1024.0 * 1024 * 1024)
        std::snprintf(buf, sizeof buf, "%.1f GiB", b / std::pow(1024.0, 3));
    else if (b >= 1024.0 * 1024)
        std::snprintf(buf, sizeof buf, "%.0f MiB", b / std::pow(1024.0, 2));
    else
        std::snprintf(buf, sizeof buf, "%.0f KiB", std::ceil(b / 1024.0));
    return buf;
}

MemoryBudget memory_budget() { return memory_budget(std::getenv("CLOQ_MEMORY_LIMIT")); }

MemoryBudget memory_budget(const char* limit) {
    if (limit && *limit) return {parse_size(limit), "CLOQ_MEMORY_LIMIT"};
    MemoryBudget b;
    b.available_bytes = meminfo_value("MemAvailable");
    b.source = "MemAvailable in /proc/meminfo";
    if (b.available_bytes == 0)
        throw Error(
            "/proc/meminfo: no MemAvailable line; cannot tell how much memory is free "
            "(set CLOQ_MEMORY_LIMIT, e.g. CLOQ_MEMORY_LIMIT=8G)");
    std::string cg_source;
    if (const uint64_t room = cgroup_room(cg_source); room > 0 && room < b.available_bytes) {
        b.available_bytes = room;
        b.source = cg_source;
    }
    return b;
}

uint64_t estimate_calibration_bytes(const ModelConfig& c, const CalibSettings& s) {
    const double h = d(c.hidden_size), i = d(c.intermediate_size), v = d(c.vocab_size);
    const double q = d(c.num_heads) * d(c.head_dim), kv = d(c.num_kv_heads) * d(c.head_dim);
    const double seq = d(s.seqlen), tokens = d(s.nsamples) * seq;
    const double embed = 4.0 * v * h * (c.tie_word_embeddings ? 1 : 2);
    const double hidden = 4.0 * 2 * tokens * h;                         // block input and output, all tokens
    const double per_sample = 4.0 * seq * (q + 2 * kv + 3 * h + 3 * i)  // projections, MLP, residual
                              + 4.0 * 2 * d(c.num_heads) * seq * seq;   // attention scores + softmax
    return saturate(block_weight_bytes(c) + embed + hidden + per_sample + block_hessian_bytes(c));
}

uint64_t estimate_layer_solve_bytes(int64_t out_features, int64_t in_features, const LayerSettings& s) {
    return saturate(layer_solve_bytes(d(out_features), d(in_features), d(s.rank)));
}

uint64_t estimate_analysis_bytes(const ModelConfig& c, const LayerSettings& s) {
    const double h = d(c.hidden_size), i = d(c.intermediate_size);
    const double q = d(c.num_heads) * d(c.head_dim), kv = d(c.num_kv_heads) * d(c.head_dim);
    const double r = d(s.rank);
    const double largest =
        std::max({layer_solve_bytes(q, h, r), layer_solve_bytes(kv, h, r), layer_solve_bytes(h, q, r),
                  layer_solve_bytes(i, h, r), layer_solve_bytes(h, i, r)});
    return saturate(largest + block_hessian_bytes(c) + block_weight_bytes(c));
}

void require_memory(uint64_t needed_bytes, const std::string& what, const std::string& hint,
                    const MemoryBudget& budget) {
    if (needed_bytes <= budget.available_bytes) return;
    throw Error(what + " needs about " + format_bytes(needed_bytes) + " of memory but only " +
                format_bytes(budget.available_bytes) + " is available (" + budget.source + ")" +
                (hint.empty() ? "" : "; " + hint));
}

void check_calibration_memory(const ModelConfig& c, const CalibSettings& s, const MemoryBudget& budget) {
    require_memory(estimate_calibration_bytes(c, s),
                   "calibration with " + std::to_string(s.nsamples) + " x " + std::to_string(s.seqlen) + " tokens",
                   "lower --nsamples or --seqlen", budget);
}

void check_analysis_memory(const ModelConfig& c, const LayerSettings& s, const MemoryBudget& budget) {
    require_memory(estimate_analysis_bytes(c, s), "solving this model's largest layer",
                   "a smaller model or a machine with more memory is needed", budget);
}

void check_layer_memory(int64_t out_features, int64_t in_features, const LayerSettings& s, const MemoryBudget& budget) {
    require_memory(estimate_layer_solve_bytes(out_features, in_features, s),
                   "solving a " + std::to_string(out_features) + " x " + std::to_string(in_features) + " layer",
                   "use a machine with more memory", budget);
}

}  // namespace cloq
