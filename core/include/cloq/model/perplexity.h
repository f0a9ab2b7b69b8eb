// Perplexity exactly as issue 4 defines it: tokenize the whole file once with BOS at the start, cut the token
// stream into consecutive non-overlapping windows of `seqlen`, evaluate the first `nsamples` (default all), and
// ppl = exp(mean next-token NLL over all predicted positions) — each window predicts its tokens 2..seqlen from the
// ones before it, so 32 windows of 256 give 32 × 255 = 8160 predictions.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cloq/base/progress.h"
#include "cloq/model/llama_model.h"
#include "cloq/settings/settings.h"
#include "cloq/tokenize/tokenizer.h"

namespace cloq {

struct PerplexityOptions {
    int seqlen = 256;
    int nsamples = -1;  // -1: every full window of the text
};

struct PerplexityResult {
    double ppl = 0;
    double mean_nll = 0;
    int64_t tokens = 0;   // predicted positions
    int64_t windows = 0;  // windows evaluated
    int64_t available_windows = 0;
    double seconds = 0;
};

// The whole file as token ids with BOS first (the tokenizer's BOS, which must exist). Errors name the file.
std::vector<int32_t> tokenize_file(const Tokenizer& tok, const std::string& path, const Progress& progress = {});
// The tokens of one part of a text: tokens [floor(begin·n), floor(end·n)) of `tokens` (the whole text: a copy).
// Errors name `where` (the text's path) when the part holds no token.
std::vector<int32_t> text_part_tokens(const std::vector<int32_t>& tokens, const TextPart& part,
                                      const std::string& where);

// Throws cloq::Error when the text has no full window or seqlen exceeds the model's context.
PerplexityResult perplexity(const LlamaModel& model, const std::vector<int32_t>& tokens, const PerplexityOptions& opt,
                            const Progress& progress = {});

}  // namespace cloq
