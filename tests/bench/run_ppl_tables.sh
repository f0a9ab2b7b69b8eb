#!/usr/bin/env bash
# Regenerates the README's init-only perplexity tables (tests/bench/bench_ppl_table) under the one protocol of
# docs/design.md (Measurement protocol): calibration and evaluation windows from disjoint parts of the same corpus,
# plus one out-of-domain row. Evaluation: the first 32 windows of 256 tokens of the text's first half (part 0:0.5);
# calibration: 32 random windows of 256 tokens from its second half (part 0.5:1). Slow (SmolLM2: ~25 min on 2 cores).
#   tests/bench/run_ppl_tables.sh [BUILD_DIR] [stories260K|smollm2|qwen|all]
# Qwen2.5-Coder-0.5B (issue 18, ~4.5x SmolLM2's compute per token): 3-bit GPTQ only, 16 evaluation windows (~30 min).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
WHICH=${2:-all}
SHARED=${CLOQ_SHARED_DIR:-../shared}
BENCH=$BUILD/tests/bench/bench_ppl_table
TINY=$SHARED/data/tinystories-valid.txt
WIKI=$SHARED/data/wikitext-2-test.txt
IN_DOMAIN=(--calib-part 0.5:1 --data-part 0:0.5 --calib-nsamples 32 --calib-seqlen 256 --seqlen 256 --nsamples 32)
if [[ $WHICH == stories260K || $WHICH == all ]]; then
  "$BENCH" --model "$SHARED/models/stories260K" --calib "$TINY" --data "$TINY" "${IN_DOMAIN[@]}" --bits 2,3 \
    --ranks 8,16 --quantizers gptq,rtn --name stories260K --markdown README.md --json docs/ppl_stories260K.json
fi
if [[ $WHICH == smollm2 || $WHICH == all ]]; then
  GGUF=${CLOQ_SMOLLM2_GGUF:-$(bash packaging/fetch-smollm2.sh)}
  "$BENCH" --model "$GGUF" --calib "$WIKI" --data "$WIKI" "${IN_DOMAIN[@]}" --bits 2,3 --ranks 16,64 \
    --quantizers gptq,rtn --name SmolLM2-135M --markdown README.md --json docs/ppl_SmolLM2-135M.json
  # The out-of-domain row: calibration on TinyStories (its second half), evaluation as above on WikiText-2.
  "$BENCH" --model "$GGUF" --calib "$TINY" --data "$WIKI" "${IN_DOMAIN[@]}" --bits 3 --ranks 16 \
    --quantizers gptq,rtn --name SmolLM2-135M-ood --markdown README.md --json docs/ppl_SmolLM2-135M-ood.json
fi
if [[ $WHICH == qwen || $WHICH == all ]]; then
  GGUF=${CLOQ_QWEN_GGUF:-$(bash packaging/fetch-qwen2.5-coder.sh)}
  "$BENCH" --model "$GGUF" --calib "$WIKI" --data "$WIKI" "${IN_DOMAIN[@]}" --nsamples 16 --bits 3 --ranks 16,64 \
    --quantizers gptq --name Qwen2.5-Coder-0.5B --markdown README.md --json docs/ppl_Qwen2.5-Coder-0.5B.json
fi
