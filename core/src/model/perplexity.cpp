#include "cloq/model/perplexity.h"

#include <torch/torch.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "cloq/base/error.h"
#include "cloq/base/timing.h"

namespace cloq {

std::vector<int32_t> tokenize_file(const Tokenizer& tok, const std::string& path, const Progress& progress) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("cannot open " + path + ": " + std::strerror(errno));
    std::stringstream ss;
    ss << in.rdbuf();
    if (tok.bos_id() < 0) throw Error("the model's tokenizer has no BOS token; cannot tokenize " + path);
    progress(0.0, "tokenizing " + path);
    auto ids = tok.encode(ss.str(), /*add_bos=*/true);
    if (ids.empty() || ids[0] != tok.bos_id()) ids.insert(ids.begin(), tok.bos_id());
    progress(1.0, "tokenized");
    return ids;
}

std::vector<int32_t> text_part_tokens(const std::vector<int32_t>& tokens, const TextPart& part,
                                      const std::string& where) {
    if (part.whole()) return tokens;
    const auto n = static_cast<double>(tokens.size());
    const auto b = static_cast<size_t>(std::floor(part.begin * n)), e = static_cast<size_t>(std::floor(part.end * n));
    if (e <= b)
        throw Error(where + ": part " + to_string(part) + " of its " + std::to_string(tokens.size()) +
                    " tokens is empty");
    return std::vector<int32_t>(tokens.begin() + static_cast<std::ptrdiff_t>(b),
                                tokens.begin() + static_cast<std::ptrdiff_t>(e));
}

PerplexityResult perplexity(const LlamaModel& model, const std::vector<int32_t>& tokens, const PerplexityOptions& opt,
                            const Progress& progress) {
    torch::NoGradGuard no_grad;
    const Stopwatch t0;
    const auto& cfg = model.config();
    if (opt.seqlen < 2) throw Error("perplexity needs windows of at least 2 tokens");
    if (opt.seqlen > cfg.max_position_embeddings)
        throw Error("window length " + std::to_string(opt.seqlen) + " exceeds the model's context of " +
                    std::to_string(cfg.max_position_embeddings) + " tokens");
    PerplexityResult r;
    r.available_windows = static_cast<int64_t>(tokens.size()) / opt.seqlen;
    if (r.available_windows == 0)
        throw Error("the text has " + std::to_string(tokens.size()) + " tokens, fewer than one window of " +
                    std::to_string(opt.seqlen));
    r.windows = opt.nsamples < 0 ? r.available_windows : std::min<int64_t>(opt.nsamples, r.available_windows);
    if (r.windows == 0) throw Error("nsamples must be positive");
    const int64_t T = opt.seqlen;

    // Windows are processed in groups whose hidden states fit a memory budget; within a group the model runs
    // block by block (each block's weights are loaded once per group, cached when the model is small).
    const int64_t bytes_per_window = T * cfg.hidden_size * 4 * 3;
    const int64_t group = std::max<int64_t>(1, std::min<int64_t>(r.windows, (int64_t(512) << 20) / bytes_per_window));
    // Logits of a chunk are [chunk, T, vocab]: keep them near 256 MB.
    const int64_t chunk =
        std::max<int64_t>(1, std::min<int64_t>(group, (int64_t(256) << 20) / (T * cfg.vocab_size * 4)));
    const int64_t steps = (r.windows + group - 1) / group * (cfg.num_layers + 1);
    int64_t step = 0;
    double nll_sum = 0;
    for (int64_t g0 = 0; g0 < r.windows; g0 += group) {
        const int64_t n = std::min(group, r.windows - g0);
        auto ids =
            torch::from_blob(const_cast<int32_t*>(tokens.data()) + g0 * T, {n, T}, torch::kInt32).to(torch::kLong);
        auto h = model.embed(ids);
        for (int l = 0; l < cfg.num_layers; ++l) {
            progress(static_cast<double>(step++) / steps, "block " + std::to_string(l));
            const auto w = model.load_block(l);
            std::vector<torch::Tensor> outs;
            for (int64_t c0 = 0; c0 < n; c0 += chunk)
                outs.push_back(model.run_block(l, w, h.slice(0, c0, std::min(n, c0 + chunk))));
            h = torch::cat(outs, 0);
        }
        progress(static_cast<double>(step++) / steps, "logits");
        for (int64_t c0 = 0; c0 < n; c0 += chunk) {
            const int64_t c1 = std::min(n, c0 + chunk);
            auto lp = torch::log_softmax(model.logits(h.slice(0, c0, c1)).slice(1, 0, T - 1), -1);
            auto target = ids.slice(0, c0, c1).slice(1, 1, T).to(lp.device()).unsqueeze(-1);
            nll_sum -= lp.gather(-1, target).to(torch::kFloat64).sum().item<double>();
        }
    }
    r.tokens = r.windows * (T - 1);
    r.mean_nll = nll_sum / static_cast<double>(r.tokens);
    r.ppl = std::exp(r.mean_nll);
    r.seconds = t0.seconds();
    progress(1.0, "done");
    return r;
}

}  // namespace cloq
