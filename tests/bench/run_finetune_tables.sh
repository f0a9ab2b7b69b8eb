#!/usr/bin/env bash
# Regenerates the README's fine-tuning tables (`cloq finetune`, tests/bench/finetune_table.py) under the protocol of
# docs/design.md (Measurement protocol): calibration, training and evaluation windows from disjoint parts of one
# corpus. stories260K on TinyStories: calibration = 32 random windows of 256 from part 0.75:1, training = part
# 0.25:0.75, evaluation = the first 32 windows of 256 of part 0:0.25. Curves JSON/CSV and adapters go to
# build/bench-finetune/<name>/; the table to README.md, the SVG to docs/.
#   tests/bench/run_finetune_tables.sh [BUILD_DIR] [stories260K]
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
