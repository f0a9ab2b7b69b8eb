#!/usr/bin/env bash
# cloq's GPTQ against GPTQModel's own, on SmolLM2-135M from the same calibration windows (issue 18), into the README
# (section gptqmodel_table:SmolLM2-135M) and docs/gptqmodel_SmolLM2-135M.json:
#   - calibration: 32 random windows of 256 tokens of WikiText-2's second half (`cloq calibrate --windows-json`
#     writes their ids; GPTQModel quantizes on exactly those);
#   - both: 4-bit, group 64, asymmetric, no act-order, dampening 0.01; cloq's base only (--init zero: no adapter);
#   - per-layer loss ||X(Q-W)^T||_F^2 / ||XW^T||_F^2 on the same activations (gptqmodel_compare.py), perplexity of
#     each base by `cloq eval --gptq` (GPTQModel's checkpoint read by cloq) on the first 32 windows of 256 tokens of
#     WikiText-2's first half, and time.
# Needs the current-stack venv (tests/interop/check_current_stack.sh builds it). Slow: ~15 min on 2 cores.
#   tests/bench/run_gptqmodel_table.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
CLOQ=$BUILD/app/cloq
SHARED=${CLOQ_SHARED_DIR:-../shared}
WIKI=$SHARED/data/wikitext-2-test.txt
GGUF=${CLOQ_SMOLLM2_GGUF:-$(bash packaging/fetch-smollm2.sh)}
VENV=$(ls -d "${CLOQ_INTEROP_CACHE:-$HOME/.cache/cloq-interop}"/venv-current-* | head -1)
WORK=${WORK:-$(mktemp -d)}
CALIB=(--calib "$WIKI" --calib-part 0.5:1 --calib-nsamples 32 --calib-seqlen 256 --cache "$WORK/cache")
EVAL=(--data "$WIKI" --part 0:0.5 --seqlen 256 --nsamples 32 --json)
export PYTHONWARNINGS=ignore TRANSFORMERS_VERBOSITY=error HF_HUB_OFFLINE=1
# GPTQModel 7.7 gives a CPU (cpu_count + 1) // 2 workers and its model loader 2: on 2 cores it stops with "Virtual pool
# 'model_loader:cpu' requests 2 workers but parent 'cpu' only has 1" unless told to use both.
export GPTQMODEL_CPU_WORKERS=${GPTQMODEL_CPU_WORKERS:-2}

"$CLOQ" calibrate --model "$GGUF" "${CALIB[@]}" --windows-json "$WORK/windows.json" >&2
# (WORK=DIR reuses a finished step of an earlier run: the export, the float model, GPTQModel's checkpoint.)
[[ -d $WORK/ours ]] || "$CLOQ" quantize --model "$GGUF" "${CALIB[@]}" --bits 4 --group 64 --init zero --format gptq \
  --no-compare --no-spectral --out "$WORK/ours" >&2
# The same with --sequential: each block calibrated on the outputs of the blocks already quantized, as GPTQModel does.
[[ -d $WORK/ours-seq ]] || "$CLOQ" quantize --model "$GGUF" "${CALIB[@]}" --sequential --bits 4 --group 64 --init zero \
  --format gptq --no-compare --no-spectral --out "$WORK/ours-seq" >&2
ours_seconds=$(python3 -c "import json, sys; print(round(json.load(open(sys.argv[1]))['timings']['layers']))" "$WORK/ours/report.json")
"$VENV/bin/python" tests/bench/gptqmodel_compare.py --gguf "$GGUF" --windows "$WORK/windows.json" \
  --ours "$WORK/ours/base" --ours-seq "$WORK/ours-seq/base" --work "$WORK" --bits 4 --group 64 --json "$WORK/layers.json" > "$WORK/compare.log" 2>&1 \
  || { tail -40 "$WORK/compare.log"; exit 1; }
theirs=$WORK/gptqmodel-4bit-g64
"$CLOQ" eval --model "$GGUF" "${EVAL[@]}" | tail -1 > "$WORK/ppl_float.json"
"$CLOQ" eval --model "$GGUF" --gptq "$WORK/ours/base" "${EVAL[@]}" | tail -1 > "$WORK/ppl_ours.json"
"$CLOQ" eval --model "$GGUF" --gptq "$WORK/ours-seq/base" "${EVAL[@]}" | tail -1 > "$WORK/ppl_ours_seq.json"
"$CLOQ" eval --model "$GGUF" --gptq "$theirs" "${EVAL[@]}" | tail -1 > "$WORK/ppl_theirs.json"
# GPTQModel's folder as a model of its own (analyze, the GUI): `cloq dequantize` turns it into a float16 model folder.
rm -rf "$WORK/theirs-fp16"
"$CLOQ" dequantize "$theirs" --out "$WORK/theirs-fp16" >&2
"$CLOQ" info --model "$WORK/theirs-fp16" > "$WORK/info_theirs.txt"

python3 - "$WORK" "$ours_seconds" <<'EOF'
import json, statistics, sys
work, ours_s = sys.argv[1], int(sys.argv[2])
L = json.load(open(f"{work}/layers.json"))
ppl = {k: json.load(open(f"{work}/ppl_{k}.json"))["ppl"] for k in ("float", "ours", "ours_seq", "theirs")}
ours, theirs, seq = L["ours"], L["gptqmodel"], L["ours_seq"]
mods = sorted(ours)
wins = sum(ours[m] < theirs[m] for m in mods)
kinds = sorted({m.split(".")[-1] for m in mods})
rows = []
for k in kinds:
    o = [ours[m] for m in mods if m.endswith(k)]; t = [theirs[m] for m in mods if m.endswith(k)]
    q = [seq[m] for m in mods if m.endswith(k)]
    rows.append(f"| {k} | {len(o)} | {statistics.mean(o):.4g} | {statistics.mean(q):.4g} | {statistics.mean(t):.4g} | {sum(a < b for a, b in zip(o, t))} of {len(o)} |")
info = open(f"{work}/info_theirs.txt").read().splitlines()[0]
md = f"""<!-- gptqmodel_table:SmolLM2-135M -->
SmolLM2-135M-Instruct (float weights as transformers reads the GGUF), 4-bit, group 64, asymmetric, no act-order,
dampening 0.01, GPTQ base only (no adapter). Calibration: the same {L['windows']} windows of {L['seqlen']} tokens of
`wikitext-2-test.txt` part 0.5:1 for both (`cloq calibrate --windows-json`); evaluation: the first 32 windows of 256
tokens of part 0:0.5, both checkpoints read by `cloq eval --gptq`. Loss per layer: ‖X(Q−W)ᵀ‖²_F / ‖XWᵀ‖²_F on the
calibration activations (H accumulated in float64 by `tests/bench/gptqmodel_compare.py`, Q unpacked by the
interop check's independent unpacker). Generated by `tests/bench/run_gptqmodel_table.sh`.

| module | layers | cloq mean loss | cloq `--sequential` | GPTQModel mean loss | cloq lower than GPTQModel |
|---|---:|---:|---:|---:|---:|
""" + "\n".join(rows) + f"""
| **all** | {len(mods)} | {statistics.mean(ours.values()):.4g} | {statistics.mean(seq.values()):.4g} | {statistics.mean(theirs.values()):.4g} | {wins} of {len(mods)} |

| | perplexity | time (2-core CPU) |
|---|---:|---:|
| float | {ppl['float']:.2f} | |
| cloq GPTQ base | {ppl['ours']:.2f} | {ours_s} s (`cloq quantize`'s layer stage: GPTQ + packing; calibration cached) |
| cloq GPTQ base, `--sequential` | {ppl['ours_seq']:.2f} | |
| GPTQModel 7.7.0 | {ppl['theirs']:.2f} | {L['gptqmodel_seconds']:.0f} s (load + quantize + save) |

GPTQModel's checkpoint opens in cloq: `cloq eval --gptq` reads it as it is (the perplexity above), and after
`cloq dequantize` it is a float16 model folder that `cloq analyze` and the GUI open (`cloq info`: {info}).
<!-- /gptqmodel_table:SmolLM2-135M -->"""
readme = open("README.md").read()
a, b = "<!-- gptqmodel_table:SmolLM2-135M -->", "<!-- /gptqmodel_table:SmolLM2-135M -->"
readme = readme[:readme.index(a)] + md + readme[readme.index(b) + len(b):] if a in readme else readme + "\n" + md + "\n"
open("README.md", "w").write(readme)
json.dump({"ppl": ppl, "ours_seconds": ours_s, **L}, open("docs/gptqmodel_SmolLM2-135M.json", "w"), indent=1)
print(md)
EOF
