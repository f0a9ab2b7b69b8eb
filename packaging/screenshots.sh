#!/usr/bin/env bash
# Screenshots of every CLoQ Studio tab on the bundled demo model, at 1280x800 and 1920x1080, into
# docs/screenshots/ — headless (Qt's offscreen platform), so it runs on a build machine without a display.
# Usage: packaging/screenshots.sh [BUILD_DIR]   (default: build; the build must include cloq-studio)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-${BUILD:-build}}
STUDIO="$BUILD/app/cloq-studio"
OUT=docs/screenshots
if [[ ! -x "$STUDIO" ]]; then
  echo "screenshots.sh: $STUDIO not found; build first (cmake --build $BUILD --target cloq-studio)" >&2
  exit 1
fi
mkdir -p "$OUT"
export QT_QPA_PLATFORM=offscreen
# Calibration Hessians are cached per user; a private cache keeps runs independent of earlier sessions.
export CLOQ_CACHE_DIR=${CLOQ_CACHE_DIR:-$(mktemp -d)}
LAYER=model.layers.1.self_attn.q_proj
shot() {  # tab size file [extra args...]
  local tab=$1 size=$2 file=$3
  shift 3
  "$STUDIO" --demo --tab "$tab" --size "$size" --screenshot "$OUT/$file" --timeout 900 "$@"
}
for size in 1280x800 1920x1080; do
  shot discrepancy "$size" "discrepancy-$size.png" --layer "$LAYER"
  shot rank "$size" "rank-$size.png" --layer "$LAYER"
  shot spectrum "$size" "spectrum-$size.png" --layer "$LAYER"
  # down_proj has in = 172: three groups of 64 + 64 + 44, so the heat map shows a ragged last group.
  shot weights "$size" "weights-$size.png" --layer model.layers.2.mlp.down_proj
  shot overview "$size" "overview-$size.png" --layer "$LAYER"
  shot playground "$size" "playground-$size.png"
  shot finetune "$size" "finetune-$size.png"
  shot budget "$size" "budget-$size.png"
  # Dark theme: the layer views and the two whole-model tabs, at both sizes.
  for tab in discrepancy rank overview budget; do
    shot "$tab" "$size" "$tab-dark-$size.png" --layer "$LAYER" --theme dark
  done
done
# The second demo model from its GGUF (fetched into a cache outside the repository), in the explorer.
if SMOLLM2=$(packaging/fetch-smollm2.sh); then
  "$STUDIO" --model "$SMOLLM2" --nsamples 8 --seqlen 128 \
    --tab discrepancy --layer model.layers.3.mlp.down_proj --size 1280x800 \
    --screenshot "$OUT/smollm2-gguf-1280x800.png" --timeout 600
else
  echo "screenshots.sh: SmolLM2-135M could not be fetched; smollm2-gguf-1280x800.png not retaken" >&2
fi
echo "screenshots written to $OUT/"
