#!/usr/bin/env bash
# Regenerates the README's fine-tuning tables (`cloq finetune`, tests/bench/finetune_table.py) under the protocol of
# docs/design.md (Measurement protocol): calibration, training and evaluation windows from disjoint parts of one
# corpus. stories260K on TinyStories: calibration = 32 random windows of 256 from part 0.75:1, training = part
# 0.25:0.75, evaluation = the first 32 windows of 256 of part 0:0.25. Curves JSON/CSV and adapters go to
# build/bench-finetune/<name>/; the table to README.md, the SVG to docs/.
# SmolLM2-135M (GGUF) on WikiText-2: the same three parts; rank 64 at 3 and 2 bits; in the same run the training step
# is timed in PyTorch + PEFT (tests/bench/peft_step_time.py, a venv with transformers + PEFT + gguf in
# ~/.cache/cloq-bench) for the ratio. STEPS, BATCH and SEQLEN override the sizes; BITS="2" runs one bit width.
#   tests/bench/run_finetune_tables.sh [BUILD_DIR] [stories260K|smollm2]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
WHICH=${2:-stories260K}
SHARED=${CLOQ_SHARED_DIR:-../shared}
CLOQ=$BUILD/app/cloq
TINY=$SHARED/data/tinystories-valid.txt
OUT=$BUILD/bench-finetune
mkdir -p "$OUT"
if [[ $WHICH == stories260K ]]; then
  rm -rf "$OUT/stories260K"
  "$CLOQ" finetune --model "$SHARED/models/stories260K" --train "$TINY" --train-part 0.25:0.75 \
    --eval "$TINY" --eval-part 0:0.25 --eval-windows 32 --calib-part 0.75:1 --calib-nsamples 32 --calib-seqlen 256 \
    --bits 2 --group 64 --rank 16 --inits zero,loftq,cloq --splits default,sqrt,u-vs \
    --steps "${STEPS:-400}" --batch 8 --seqlen 256 --lr "${LR:-1e-3}" --out "$OUT/stories260K"
  python3 tests/bench/finetune_table.py "$OUT/stories260K/curves.json" --name stories260K --markdown README.md \
    --svg docs/finetune_stories260K.svg
  cp "$OUT/stories260K/curves.json" docs/finetune_stories260K.json
fi
if [[ $WHICH == smollm2 ]]; then
  GGUF=${CLOQ_SMOLLM2_GGUF:-$(bash packaging/fetch-smollm2.sh)}
  WIKI=$SHARED/data/wikitext-2-test.txt
  VENV=${CLOQ_BENCH_VENV:-$HOME/.cache/cloq-bench/venv}
  if ! "$VENV/bin/python" -c "import torch, transformers, peft, gguf, sentencepiece" 2>/dev/null; then
    /usr/bin/python3 -m venv --system-site-packages "$VENV"
    "$VENV/bin/pip" install -q transformers==4.46.3 safetensors==0.4.5 accelerate==0.34.2 gguf==0.10.0 sentencepiece
    "$VENV/bin/pip" install -q --no-deps peft==0.13.2
  fi
  B=${BATCH:-4}
  L=${SEQLEN:-256}
  for bits in ${BITS:-3 2}; do
    name=SmolLM2-135M-${bits}bit
    rm -rf "$OUT/$name"
    "$CLOQ" finetune --model "$GGUF" --train "$WIKI" --train-part 0.25:0.75 --eval "$WIKI" --eval-part 0:0.25 \
      --eval-windows 8 --calib-part 0.75:1 --calib-nsamples 32 --calib-seqlen 256 --bits "$bits" --group 64 \
      --rank 64 --inits zero,loftq,cloq --steps "${STEPS:-40}" --batch "$B" --seqlen "$L" --lr "${LR:-7e-4}" \
      --out "$OUT/$name"
    "$VENV/bin/python" tests/bench/peft_step_time.py "$GGUF" --rank 64 --batch "$B" --seqlen "$L" --steps 5 \
      > "$OUT/$name/peft_step_time.json"
    python3 tests/bench/finetune_table.py "$OUT/$name/curves.json" --name "$name" --markdown README.md \
      --svg "docs/finetune_$name.svg" --peer "$OUT/$name/peft_step_time.json"
    cp "$OUT/$name/curves.json" "docs/finetune_$name.json"
  done
fi
