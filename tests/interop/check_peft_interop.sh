#!/usr/bin/env bash
# Interoperability check (issue 5): a user's Python stack (transformers + PEFT + safetensors) loads what
# `cloq quantize` writes, as it is, and computes the same logits as `cloq eval` (1e-3 relative).
#
#   tests/interop/check_peft_interop.sh [path/to/cloq]
#
# Three exports of stories260K (and a fine-tuned adapter on the first) are checked: GPTQ (format gptq, 2-bit g64), GPTQ (gptq_v2, 3-bit g32 act-order:
# straddling words, permuted g_idx) and the float16 base. The Python environment is a virtual environment built from
# PyPI only (pinned torch, transformers, peft, safetensors, numpy) and cached in ~/.cache/cloq-interop
# (CLOQ_INTEROP_CACHE), so only the first run downloads (PyPI's Linux torch wheel pulls its CUDA libraries: ~4 GB once).
# CLOQ_INTEROP=setup only builds the environment. If the environment cannot be built this FAILS loudly; set CLOQ_INTEROP=skip to skip the check explicitly.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
CLOQ=${1:-${CLOQ_BIN:-$root/build/app/cloq}}
SHARED=${CLOQ_SHARED_DIR:-$root/../shared}
CACHE=${CLOQ_INTEROP_CACHE:-$HOME/.cache/cloq-interop}
# Two ways to the same stack. With Debian's python3-torch installed (packaging/install-deps.sh installs it) the venv
# sees it and takes only transformers/PEFT/safetensors from PyPI: tens of MB, a minute. Otherwise everything comes
# from PyPI, whose Linux torch pulls ~4 GB of CUDA wheels (measured: 40 minutes here) — too slow for CI's budget.
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
  TORCH_FROM=debian
  PY_PKGS=(transformers==4.46.3 safetensors==0.4.5 accelerate==0.34.2 peft==0.13.2)
else
  TORCH_FROM=pypi
  PY_PKGS=(torch==2.15.0 transformers==4.57.6 peft==0.17.1 safetensors==0.6.2 numpy)
fi
VENV=${CLOQ_INTEROP_VENV:-$CACHE/venv-$TORCH_FROM-$(printf '%s\n' "${PY_PKGS[@]}" | md5sum | cut -c1-8)}  # new pins, new venv

banner() { printf '\n==================== cloq interop: %s ====================\n' "$*" >&2; }

if [[ "${CLOQ_INTEROP:-}" == "skip" ]]; then
  banner "SKIPPED (CLOQ_INTEROP=skip was set explicitly)"
  exit 0
fi
[[ "${CLOQ_INTEROP:-}" == "setup" || -x "$CLOQ" ]] || { banner "FAILED: cloq binary not found at $CLOQ (build it first or pass its path)"; exit 1; }

venv_ok() { [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c "import torch, transformers, peft, safetensors, numpy" 2>/dev/null; }

build_venv() {
  mkdir -p "$CACHE"
  rm -rf "$VENV"
  if [[ $TORCH_FROM == debian ]]; then
    /usr/bin/python3 -m venv --system-site-packages "$VENV" || return 1
    # peft 0.13.2 asks for torch >= 1.13 and Debian's reports 1.13.0a0: installed without resolving dependencies.
    "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PKGS[@]:0:3}" || return 1
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "${PY_PKGS[3]}" || return 1
  else
    python3 -m venv "$VENV" || return 1
    "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PKGS[@]}" || return 1
  fi
  venv_ok
}

if ! venv_ok; then
  banner "building the Python environment in $VENV (once)"
  if ! build_venv; then
    banner "FAILED: could not build the Python environment (network? python3-venv?)"
    echo "The interoperability check did NOT run. Set CLOQ_INTEROP=skip to skip it explicitly." >&2
    exit 1
  fi
fi
[[ "${CLOQ_INTEROP:-}" == "setup" ]] && { echo "interop: environment ready in $VENV"; exit 0; }

MODEL=$SHARED/models/stories260K
TEXT=$SHARED/data/tinystories-valid.txt
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
run_case() {
  local name=$1; shift
  local out=$work/$name
  echo "interop: $name: cloq quantize $*"
  "$CLOQ" quantize --model "$MODEL" --calib "$TEXT" --calib-nsamples 16 --calib-seqlen 128 --cache "$work/cache" \
    --no-compare --no-spectral --out "$out" "$@" > "$work/$name.log" 2>&1 || { cat "$work/$name.log"; return 1; }
  "$CLOQ" eval --model "$MODEL" --gptq "$out/base" --adapter "$out/adapter" --data "$TEXT" --seqlen 128 \
    --nsamples 1 --logits-json "$work/$name.logits.json" > "$work/$name.eval.log" 2>&1 \
    || { cat "$work/$name.eval.log"; return 1; }
  "$VENV/bin/python" "$here/check_peft_interop.py" --out "$out" --logits "$work/$name.logits.json"
}
run_case gptq-2bit-g64 --bits 2 --group 64 --rank 16 --format gptq || status=1
run_case gptq_v2-3bit-g32-actorder --bits 3 --group 32 --rank 8 --act-order --lora-alpha 32 --format gptq_v2 || status=1
run_case fp16-2bit-g64 --bits 2 --group 64 --rank 16 --format fp16 --adapter-dtype float16 || status=1

# A fine-tuned adapter (`cloq finetune`, a few steps from CLoQ) on the GPTQ base of the same settings: PEFT loads it
# and gives `cloq eval`'s logits.
finetuned() {
  local out=$work/gptq-2bit-g64 ft=$work/finetune
  echo "interop: finetune: cloq finetune --bits 2 --group 64 --rank 16 --inits cloq --steps 5"
  "$CLOQ" finetune --model "$MODEL" --calib "$TEXT" --calib-nsamples 16 --calib-seqlen 128 --cache "$work/cache" \
    --train "$TEXT" --train-part 0.5:1 --eval "$TEXT" --eval-part 0:0.5 --eval-windows 2 --bits 2 --group 64 \
    --rank 16 --inits cloq --steps 5 --batch 2 --seqlen 128 --out "$ft" > "$work/finetune.log" 2>&1 \
    || { cat "$work/finetune.log"; return 1; }
  "$CLOQ" eval --model "$MODEL" --gptq "$out/base" --adapter "$ft/adapters/cloq" --data "$TEXT" --seqlen 128 \
    --nsamples 1 --logits-json "$work/finetune.logits.json" > "$work/finetune.eval.log" 2>&1 \
    || { cat "$work/finetune.eval.log"; return 1; }
  "$VENV/bin/python" "$here/check_peft_interop.py" --out "$out" --adapter "$ft/adapters/cloq" \
    --logits "$work/finetune.logits.json"
}
finetuned || status=1

if [[ $status -eq 0 ]]; then banner "PASSED (transformers + PEFT load the exports; logits match cloq eval)"
else banner "FAILED (see above)"; fi
exit $status
