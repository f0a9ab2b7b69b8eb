#include "cloq/analysis/calibration.h"

#include <torch/torch.h>

#include <cstdlib>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "base/content_hash.h"
#include "cloq/base/atomic_file.h"
#include "cloq/base/error.h"
#include "cloq/base/timing.h"
#include "cloq/io/safetensors.h"
#include "cloq/model/perplexity.h"

namespace fs = std::filesystem;

namespace cloq {

namespace {

std::string block_file_name(int layer) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "block_%03d.safetensors", layer);
    return buf;
}

int64_t group_in_features(const ModelConfig& c, InputGroup g) {
    switch (g) {
    case InputGroup::AttnIn:
    case InputGroup::MlpIn:
        return c.hidden_size;
    case InputGroup::OProj:
        return c.q_out();
    case InputGroup::DownProj:
        return c.intermediate_size;
    }
    return 0;
}

// Reads and checks a cache entry; throws cloq::Error describing the first problem. Blocks are loaded into memory
// when `load` (else left empty, read on demand).
std::vector<BlockHessians> read_cache(const std::string& dir, const std::string& key, const ModelConfig& cfg,
                                      bool load) {
    const std::string manifest_path = dir + "/manifest.json";
    std::ifstream in(manifest_path);
    if (!in) throw Error("no manifest.json");
    nlohmann::json m;
    try {
        m = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception&) {
        throw Error("manifest.json is not valid JSON");
    }
    if (!m.is_object() || m.value("format_version", -1) != kCalibrationFormatVersion)
        throw Error("format version differs from " + std::to_string(kCalibrationFormatVersion));
    if (m.value("key", std::string()) != key) throw Error("key differs");
    if (m.value("num_layers", int64_t(-1)) != cfg.num_layers) throw Error("layer count differs");
    std::vector<BlockHessians> blocks(static_cast<size_t>(cfg.num_layers));
    for (int l = 0; l < cfg.num_layers; ++l) {
        SafetensorsFile f(dir + "/" + block_file_name(l));  // validates the container
        auto it = f.metadata().find("key");
        if (it == f.metadata().end() || it->second != key) throw Error(block_file_name(l) + " has another key");
        for (InputGroup g : kInputGroups) {
            const std::string name = to_string(g);
            if (!f.contains(name)) throw Error(block_file_name(l) + " lacks " + name);
            const auto& info = f.info(name);
            const int64_t n = group_in_features(cfg, g);
            if (info.dtype != "F64" || info.shape != std::vector<int64_t>{n, n})
                throw Error(block_file_name(l) + ": " + name + " is not F64 [" + std::to_string(n) + ", " +
                            std::to_string(n) + "]");
            if (load) {
                auto H = f.tensor(name);
                if (!torch::isfinite(H).all().item<bool>())
                    throw Error(block_file_name(l) + ": " + name + " is not finite");
                blocks[static_cast<size_t>(l)][static_cast<size_t>(g)] = H;
            }
        }
    }
    return blocks;
}

}  // namespace

torch::Tensor Calibration::hessian(int layer, InputGroup g) const {
    if (layer < 0 || layer >= num_layers())
        throw Error("calibration has no layer " + std::to_string(layer) + " (it has " + std::to_string(num_layers()) +
                    ")");
    const auto& t = blocks_[static_cast<size_t>(layer)][static_cast<size_t>(g)];
    if (t.defined()) return t;
    if (cache_path.empty()) throw Error("calibration data for layer " + std::to_string(layer) + " is not available");
    SafetensorsFile f(cache_path + "/" + block_file_name(layer));
    return f.tensor(to_string(g));
}

std::vector<int64_t> calibration_window_starts(int64_t num_tokens, int64_t seqlen, int64_t nsamples, uint64_t seed) {
    if (seqlen < 1 || nsamples < 1) throw Error("calibration needs at least one window of at least one token");
    if (num_tokens < seqlen + 1)
        throw Error("the calibration text has " + std::to_string(num_tokens) + " tokens, too few for windows of " +
                    std::to_string(seqlen));
    std::mt19937_64 rng(seed);
    const auto span = static_cast<uint64_t>(num_tokens - seqlen + 1);
    std::vector<int64_t> starts(static_cast<size_t>(nsamples));
    for (auto& s : starts) s = static_cast<int64_t>(rng() % span);
    return starts;
}

std::string default_calibration_cache() {
    if (const char* d = std::getenv("CLOQ_CACHE_DIR"); d && *d) return std::string(d) + "/calibration";
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/cloq-studio/calibration";
    if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/cloq-studio/calibration";
    return "";
}

Calibration calibrate(const LlamaModel& model, const CalibrationRequest& req, const Progress& progress) {
    const auto& tok = model.files().tokenizer;
    if (!tok)
        throw Error(model.files().path + ": the model ships no tokenizer (tokenizer.model or tokenizer.json), so " +
                    "the calibration text cannot be read");
    if (req.settings.text_path.empty()) throw Error("no calibration text given");
    const auto tokens = text_part_tokens(tokenize_file(*tok, req.settings.text_path, progress.slice(0, 0.02)),
                                         req.settings.part, req.settings.text_path);
    return calibrate_tokens(model, tokens, hash_file(req.settings.text_path), req, progress.slice(0.02, 1.0));
}

Calibration calibrate_tokens(const LlamaModel& model, const std::vector<int32_t>& tokens, const std::string& text_hash,
                             const CalibrationRequest& req, const Progress& progress) {
    torch::NoGradGuard no_grad;
    const Stopwatch t0;
    const auto& cfg = model.config();
    const auto& s = req.settings;
    if (s.nsamples < 1) throw Error("--calib-nsamples must be at least 1");
    if (s.seqlen < 1) throw Error("--calib-seqlen must be at least 1");
    if (s.sequential && !req.quantizer)
        throw Error("sequential calibration needs quantization settings (it quantizes each block before the next)");
    Calibration cal;
    cal.nsamples = s.nsamples;
    cal.seqlen = s.seqlen;
    cal.sequential = s.sequential;
    cal.text_tokens = static_cast<int64_t>(tokens.size());
    if (cal.seqlen > cfg.max_position_embeddings) {
        cal.notices.push_back("calibration seqlen " + std::to_string(cal.seqlen) +
                              " capped at the model's context of " + std::to_string(cfg.max_position_embeddings) +
                              " tokens");
        cal.seqlen = cfg.max_position_embeddings;
    }
    cal.tokens = cal.nsamples * cal.seqlen;
    const auto starts = calibration_window_starts(cal.text_tokens, cal.seqlen, cal.nsamples, s.seed);

    ContentHash key;
    key.update_u64(kCalibrationFormatVersion)
        .update(model.files().weights->fingerprint())
        .update(model_config_to_hf_json(cfg).dump())
        .update(text_hash);
    key.update(tokens.data(), tokens.size() * sizeof(int32_t));
    key.update_u64(static_cast<uint64_t>(cal.nsamples))
        .update_u64(static_cast<uint64_t>(cal.seqlen))
        .update_u64(s.seed);
    key.update_u64(s.sequential ? 1 : 0).update(s.sequential ? req.quantizer_key : std::string());
    cal.key = key.hex();

    const auto total_bytes = [&] {
        int64_t b = 0;
        for (InputGroup g : kInputGroups) b += group_in_features(cfg, g) * group_in_features(cfg, g) * 8;
        return b * cfg.num_layers;
    }();
    // Big models keep their Hs on disk only (a 7B model's are ~44 GB in float64), read per layer on demand.
    const bool keep_in_memory = s.cache_dir.empty() || total_bytes < (int64_t(4) << 30);

    if (!s.cache_dir.empty()) {
        cal.cache_path = (fs::path(s.cache_dir) / cal.key).string();
        if (fs::exists(cal.cache_path)) {
            try {
                cal.set_blocks(read_cache(cal.cache_path, cal.key, cfg, keep_in_memory));
                cal.from_cache = true;
                cal.seconds = t0.seconds();
                progress(1.0, "loaded from cache");
                return cal;
            } catch (const Error& e) {
                cal.notices.push_back("calibration cache " + cal.cache_path + " is invalid (" + e.what() +
                                      "); recomputing it");
            }
        }
        std::error_code ec;
        fs::create_directories(s.cache_dir, ec);
        if (ec) throw Error("cannot create the cache folder " + s.cache_dir + ": " + ec.message());
    }
    std::unique_ptr<AtomicDir> out;
    if (!s.cache_dir.empty()) out = std::make_unique<AtomicDir>(cal.cache_path, /*replace_existing=*/true);

    // The windows, then the model block by block over all of them.
    std::vector<int64_t> flat;
    flat.reserve(static_cast<size_t>(cal.tokens));
    for (auto st : starts)
        for (int64_t t = 0; t < cal.seqlen; ++t) flat.push_back(tokens[static_cast<size_t>(st + t)]);
    auto ids = torch::tensor(flat, torch::kLong).view({cal.nsamples, cal.seqlen});
    auto h = model.embed(ids);
    // Chunks bound the attention scores [chunk, heads, T, T] to about 256 MB.
    const int64_t chunk = std::max<int64_t>(
        1, std::min<int64_t>(cal.nsamples, (int64_t(256) << 20) / (cfg.num_heads * cal.seqlen * cal.seqlen * 4)));
    const int64_t nchunks = (cal.nsamples + chunk - 1) / chunk;
    const int64_t steps = cfg.num_layers * nchunks * (s.sequential ? 2 : 1);
    int64_t step = 0;
    const auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(model.device());

    std::vector<BlockHessians> blocks(static_cast<size_t>(cfg.num_layers));
    for (int l = 0; l < cfg.num_layers; ++l) {
        BlockWeights w = model.load_block(l);
        BlockHessians acc;
        for (InputGroup g : kInputGroups)
            acc[static_cast<size_t>(g)] = torch::zeros({group_in_features(cfg, g), group_in_features(cfg, g)}, f64);
        auto hook = [&acc](int, InputGroup g, const torch::Tensor& x) {
            auto xd = x.to(torch::kFloat64);
            acc[static_cast<size_t>(g)].addmm_(xd.t(), xd);
        };
        auto pass = [&](const LinearInputHook& hk, bool keep_outputs) {
            std::vector<torch::Tensor> outs;
            for (int64_t c0 = 0; c0 < cal.nsamples; c0 += chunk) {
                progress(static_cast<double>(step++) / steps,
                         "block " + std::to_string(l + 1) + "/" + std::to_string(cfg.num_layers));
                auto o = model.run_block(l, w, h.slice(0, c0, std::min(cal.nsamples, c0 + chunk)), hk);
                if (keep_outputs) outs.push_back(o);
            }
            if (keep_outputs) h = torch::cat(outs, 0);
        };
        if (!s.sequential) {
            pass(hook, true);
        } else {
            pass(hook, false);  // H of block l on the outputs of the already-quantized blocks
        }
        BlockHessians Hcpu;
        for (size_t g = 0; g < 4; ++g) Hcpu[g] = acc[g].to(torch::kCPU);
        if (s.sequential) {
            req.quantizer(l, Hcpu, w);
            pass({}, true);  // outputs of the quantized block feed the next one
        }
        if (out) {
            std::vector<std::pair<std::string, torch::Tensor>> ts;
            for (InputGroup g : kInputGroups) ts.emplace_back(to_string(g), Hcpu[static_cast<size_t>(g)]);
            write_safetensors(out->file(block_file_name(l)), ts,
                              {{"key", cal.key},
                               {"layer", std::to_string(l)},
                               {"format_version", std::to_string(kCalibrationFormatVersion)}});
        }
        if (keep_in_memory) blocks[static_cast<size_t>(l)] = std::move(Hcpu);
    }
    cal.set_blocks(std::move(blocks));
    if (out) {
        const nlohmann::json manifest = {
            {"format_version", kCalibrationFormatVersion},
            {"key", cal.key},
            {"model", model.files().path},
            {"model_fingerprint", model.files().weights->fingerprint()},
            {"text", s.text_path},
            {"text_hash", text_hash},
            {"text_tokens", cal.text_tokens},
            {"nsamples", cal.nsamples},
            {"seqlen", cal.seqlen},
            {"seed", s.seed},
            {"sequential", s.sequential},
            {"quantizer", s.sequential ? req.quantizer_key : std::string()},
            {"num_layers", cfg.num_layers},
            {"groups", {"attn_in", "o_proj", "mlp_in", "down_proj"}},
        };
        write_file_atomic(out->file("manifest.json"), manifest.dump(2) + "\n");
        out->commit();
    }
    cal.seconds = t0.seconds();
    progress(1.0, "done");
    return cal;
}

}  // namespace cloq
