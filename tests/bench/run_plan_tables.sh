#!/usr/bin/env bash
# The README's budget-planner table (issue 19): at the size of each uniform setting (2-bit r64, 3-bit r16,
# 3-bit r64), the planned model's perplexity against the uniform one's, CLoQ init, under the in-domain protocol of
# docs/design.md (Measurement protocol): calibration windows from the corpus's second half (part 0.5:1), evaluation
# on the first windows of its first half (part 0:0.5), the same corpus (WikiText-2) for both. One `cloq plan` run
# computes the per-layer curves once and writes a profile per budget; each profile and each uniform setting is then
# evaluated by `cloq eval`. Planning time per stage comes from plan.json. Slow (SmolLM2: ~20 min on 2 cores).
#   tests/bench/run_plan_tables.sh [BUILD_DIR] [smollm2|stories260K|GGUF_OR_DIR NAME]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
WHICH=${2:-smollm2}
SHARED=${CLOQ_SHARED_DIR:-../shared}
CLOQ=$BUILD/app/cloq
WIKI=$SHARED/data/wikitext-2-test.txt
TINY=$SHARED/data/tinystories-valid.txt
case $WHICH in
  smollm2) MODEL=${CLOQ_SMOLLM2_GGUF:-$(bash packaging/fetch-smollm2.sh)}; NAME=SmolLM2-135M; TEXT=$WIKI ;;
  stories260K) MODEL=$SHARED/models/stories260K; NAME=stories260K; TEXT=$TINY ;;
  *) MODEL=$WHICH; NAME=${3:?name}; TEXT=$WIKI ;;
esac
NS=${NSAMPLES:-32}     # evaluation windows
CNS=${CALIB_NSAMPLES:-32}
GROUP=${GROUP:-64}
LIKES=${LIKES:-2:64,3:16,3:64}
RANKS=${RANKS:-0,8,16,32,64,128}
OUT=${OUT:-/tmp/cloq-plan-$NAME}
rm -rf "$OUT" && mkdir -p "$OUT"
CALIB=(--calib "$TEXT" --calib-part 0.5:1 --calib-nsamples "$CNS" --calib-seqlen 256 --group "$GROUP")
"$CLOQ" plan --model "$MODEL" "${CALIB[@]}" --bits 2,3,4 --ranks "$RANKS" --budget-like "$LIKES" \
  --out "$OUT/plan" | tee "$OUT/plan.log"
ev() {  # ev LABEL ARGS...: perplexity of one setting, appended as a JSON line
  local label=$1; shift
  local t0=$SECONDS
  local line
  line=$("$CLOQ" eval --model "$MODEL" --data "$TEXT" --part 0:0.5 --seqlen 256 --nsamples "$NS" --init cloq \
    "${CALIB[@]}" --json "$@" | tail -n 1)
  echo "{\"label\": \"$label\", \"seconds\": $((SECONDS - t0)), \"result\": $line}" >> "$OUT/evals.jsonl"
  echo "$label: $line"
}
IFS=, read -ra L <<< "$LIKES"
for like in "${L[@]}"; do
  b=${like%%:*}; r=${like##*:}
  if [[ $like == "${L[0]}" ]]; then prof=$OUT/plan/profile.json; else prof=$OUT/plan/profile-${b}r${r}.json; fi
  ev "uniform $b-bit r$r" --bits "$b" --rank "$r"
  ev "plan at $b-bit r$r" --profile "$prof"
done
python3 tests/bench/plan_table.py "$OUT" --name "$NAME" --markdown README.md --json "docs/plan_$NAME.json"
