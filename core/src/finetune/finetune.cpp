#include "cloq/finetune/finetune.h"

#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <sstream>

#include "cloq/base/error.h"
#include "cloq/base/timing.h"

namespace cloq {

void validate(const FineTuneOptions& o) {
    if (o.steps < 1) throw Error("fine-tuning needs at least 1 step (--steps " + std::to_string(o.steps) + ")");
    if (o.batch < 1) throw Error("--batch must be at least 1, got " + std::to_string(o.batch));
    if (o.seqlen < 2) throw Error("--seqlen must be at least 2 tokens, got " + std::to_string(o.seqlen));
    if (!(o.lr > 0) || !std::isfinite(o.lr)) throw Error("--lr must be a positive number");
    if (!(o.weight_decay >= 0) || !std::isfinite(o.weight_decay))
        throw Error("--weight-decay must be a non-negative number");
    if (!(o.warmup_ratio >= 0 && o.warmup_ratio < 1)) throw Error("--warmup must be in [0, 1)");
    if (!std::isfinite(o.max_grad_norm)) throw Error("--max-grad-norm must be a number (0 = no clipping)");
    if (o.eval_every < 1) throw Error("--eval-every must be at least 1, got " + std::to_string(o.eval_every));
    if (o.eval_windows == 0 || o.eval_windows < -1) throw Error("--eval-windows must be positive (or -1 for all)");
}

Autocast parse_autocast(const std::string& s) {
    if (s == "off" || s == "float32" || s == "fp32") return Autocast::Off;
    if (s == "bfloat16" || s == "bf16") return Autocast::BFloat16;
    if (s == "float16" || s == "fp16") return Autocast::Float16;
    throw Error("unknown autocast precision '" + s + "' (expected off, bfloat16 or float16)");
}

std::string to_string(Autocast a) {
    switch (a) {
    case Autocast::BFloat16:
        return "bfloat16";
    case Autocast::Float16:
        return "float16";
    case Autocast::Off:
        break;
    }
    return "off";
}

void check_autocast_device(Autocast a, torch::Device device) {
    if (a == Autocast::Float16 && !device.is_cuda())
        throw Error("float16 autocast needs a CUDA device, and the model is on " + device.str() +
                    " (LibTorch's CPU autocast has bfloat16 only): use bfloat16 on the CPU, or --device cuda");
}

double cosine_lr(const FineTuneOptions& o, int t) {
    // transformers: warmup = ceil(ratio · steps); lr·t/warmup during warmup, then
    // lr·½(1 + cos(π·(t − warmup)/(steps − warmup))).
    const int warmup = static_cast<int>(std::ceil(o.warmup_ratio * o.steps));
    if (t < warmup) return o.lr * static_cast<double>(t) / std::max(1, warmup);
    const double progress = static_cast<double>(t - warmup) / std::max(1, o.steps - warmup);
    return o.lr * std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
}

std::string FineTuneInit::label() const {
    return to_string(init) + (init_has_split(init) && split != Split::Default ? "-" + to_string(split) : "");
}

std::vector<FineTuneInit> parse_finetune_inits(const std::string& inits, const std::string& splits) {
    auto items = [](const std::string& s, const char* what) {
        std::vector<std::string> out;
        std::stringstream ss(s);
        for (std::string item; std::getline(ss, item, ',');)
            if (!item.empty()) out.push_back(item);
        if (out.empty()) throw Error(std::string(what) + " lists nothing");
        return out;
    };
    std::vector<Split> split_list;
    for (const auto& s : items(splits, "--splits")) split_list.push_back(parse_split(s));
    std::vector<FineTuneInit> out;
    for (const auto& name : items(inits, "--inits")) {
        const InitMethod m = parse_init_method(name);
        for (const Split s : init_has_split(m) ? split_list : std::vector<Split>{Split::Default}) {
            const FineTuneInit fi{m, s};
            const bool dup =
                std::any_of(out.begin(), out.end(), [&](const FineTuneInit& o) { return o.init == m && o.split == s; });
            if (!dup) out.push_back(fi);
        }
    }
    return out;
}

namespace {
int64_t peak_rss_bytes() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<int64_t>(u.ru_maxrss) * 1024;  // Linux reports kilobytes
}
}  // namespace

FineTuneCurve finetune(LoraFineTuner& tuner, const std::vector<int32_t>& train_tokens,
                       const std::vector<int32_t>& eval_tokens, const FineTuneOptions& opt, const Progress& progress,
                       const std::function<void(const FineTuneCurve&)>& on_update) {
    validate(opt);
    const int64_t T = opt.seqlen;
    const int64_t windows = static_cast<int64_t>(train_tokens.size()) / T;
    if (windows < opt.batch)
        throw Error("the training text has " + std::to_string(windows) + " windows of " + std::to_string(T) +
                    " tokens, fewer than one batch of " + std::to_string(opt.batch));
    PerplexityOptions popt;
    popt.seqlen = opt.seqlen;
    popt.nsamples = opt.eval_windows;
    if (static_cast<int64_t>(eval_tokens.size()) < T)
        throw Error("the evaluation text has " + std::to_string(eval_tokens.size()) +
                    " tokens, fewer than one window of " + std::to_string(T));

    FineTuneCurve curve;
    curve.trainable_parameters = tuner.trainable_parameters();
    // Evaluations weigh like a few steps each in the progress bar: ETA stays honest without timing them first.
    const int evals = 2 + (opt.steps - 1) / opt.eval_every;
    const double total = opt.steps + 4.0 * evals;
    double done = 0;
    auto eval_at = [&](int step) {
        const PerplexityResult r = tuner.evaluate(eval_tokens, popt, progress.slice(done / total, (done + 4) / total));
        done += 4;
        curve.eval_ppl.emplace_back(step, r.ppl);
        if (on_update) on_update(curve);
    };
    eval_at(0);

    std::mt19937_64 rng(opt.seed);
    std::vector<int64_t> order(static_cast<size_t>(windows));
    size_t next = order.size();  // forces a shuffle before the first batch
    double train_seconds = 0;
    for (int t = 0; t < opt.steps; ++t) {
        progress(done / total, "step " + std::to_string(t + 1) + " of " + std::to_string(opt.steps));
        std::vector<int64_t> ids;
        ids.reserve(static_cast<size_t>(opt.batch * T));
        for (int b = 0; b < opt.batch; ++b) {
            if (next == order.size()) {
                std::iota(order.begin(), order.end(), 0);
                std::shuffle(order.begin(), order.end(), rng);
                next = 0;
            }
            const int64_t w = order[next++];
            ids.insert(ids.end(), train_tokens.begin() + w * T, train_tokens.begin() + (w + 1) * T);
        }
        const torch::Tensor batch = torch::tensor(ids, torch::kLong).view({opt.batch, T});
        const Stopwatch sw;
        const double l = tuner.train_step(batch, t);
        curve.step_seconds.push_back(sw.seconds());
        train_seconds += curve.step_seconds.back();
        if (!std::isfinite(l))
            throw Error("fine-tuning diverged at step " + std::to_string(t + 1) + " (loss " + std::to_string(l) +
                        "); lower --lr");
        curve.train_loss.push_back(l);
        curve.lr.push_back(cosine_lr(opt, t));
        done += 1;
        curve.seconds_per_step = train_seconds / (t + 1);
        curve.tokens_per_second = static_cast<double>(opt.batch * T) * (t + 1) / std::max(train_seconds, 1e-9);
        curve.peak_rss_bytes = peak_rss_bytes();
        if (on_update) on_update(curve);
        if ((t + 1) % opt.eval_every == 0 || t + 1 == opt.steps) eval_at(t + 1);
    }
    curve.peak_rss_bytes = peak_rss_bytes();
    progress(1.0, "done");
    return curve;
}

}  // namespace cloq
