#!/usr/bin/env python3
"""Turns a `cloq finetune` run (OUT/curves.json) into the README's fine-tuning table and an SVG of the curves.

The table states the protocol (the source, part and size of the calibration, training and evaluation texts) and
gives the evaluation perplexity at steps 0, N/4, N/2 and N for every run, with time per step, tokens/s and peak
memory. The SVG draws the training loss per step (a moving average, log scale) with the evaluation perplexities'
NLL as markers, one colour per init. Standard library only.

Usage: finetune_table.py CURVES_JSON --name NAME --markdown README.md --svg docs/finetune_NAME.svg
"""
import argparse
import json
import math
import os
import statistics
import sys

COLOURS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c"]


def section(doc, name, body):
    open_, close = f"<!-- {name} -->", f"<!-- /{name} -->"
    text = f"{open_}\n{body}{close}"
    a, b = doc.find(open_), doc.find(close)
    if a >= 0 and b > a:
        return doc[:a] + text + doc[b + len(close):]
    return doc + "\n" + text + "\n"


def ppl_at(run, step):
    for e in run["eval"]:
        if e["step"] == step:
            return e["ppl"]
    return None


def part_text(t):
    return f"`{os.path.basename(t['text'])}` part {t['part']}"


def peer_line(c, peer):
    """The same training step timed in PyTorch + PEFT (peft_step_time.py) in the same run, and the ratio."""
    # The same statistic on both sides: peft_step_time.py reports the median of its timed steps after one warm-up
    # step, so ours is the median of every run's steps after its first (older curves without per-step times: the
    # median of the runs' means, which include the first step).
    steps = [t for r in c["runs"] for t in r.get("step_seconds", [])[1:]]
    if steps:
        ours, how = statistics.median(steps), f"median of the {len(steps)} steps after each run's first, as PyTorch's"
    else:
        ours, how = sorted(r["seconds_per_step"] for r in c["runs"])[len(c["runs"]) // 2], "median of the runs' means"
    return (f"Time per step against PyTorch {peer['torch']} + transformers + PEFT on the same dequantized model, batch "
            f"{peer['batch']} × {peer['seqlen']}, rank {peer['rank']}, {peer['threads']} thread(s), measured in the "
            f"same run: PyTorch {peer['seconds_per_step']:.3g} s/step (median of {peer['steps']} steps after a "
            f"warm-up), ours {ours:.3g} s/step ({how}): **ours / PyTorch = {ours / peer['seconds_per_step']:.2f}×**.\n")


def table(c, svg_rel, peer=None):
    o = c["options"]
    n = o["steps"]
    marks = [0, n // 4, n // 2, n]
    s = c["settings"]
    cal, tr, ev = c["calibration"], c["train"], c["eval"]
    lines = [
        f"{os.path.basename(c['model'].rstrip('/'))}, {s['bits']}-bit g{s['group']} {s['quantizer'].upper()} base, rank "
        f"{s['rank']}, lora_alpha {s['lora_alpha']:g}; {n} steps of {o['batch']} × {o['seqlen']} tokens, AdamW lr "
        f"{o['lr']:g} (cosine, warmup {o['warmup_ratio']:g}), weight decay {o['weight_decay']:g}, clip "
        f"{o['max_grad_norm']:g}, seed {o['seed']}, {o['device']} ({o['threads']} threads).",
        "",
        f"- calibration: {part_text(cal)}, {cal['nsamples']} random windows of {cal['seqlen']} tokens",
        f"- training: {part_text(tr)}, {tr['windows']} windows of {tr['seqlen']} tokens ({tr['tokens']} tokens)",
        f"- evaluation: {part_text(ev)}, its first {ev['windows_evaluated']} windows of {ev['seqlen']} tokens",
        "",
        "| init | " + " | ".join(f"ppl step {m}" for m in marks) + " | s/step | tokens/s | peak RSS |",
        "|---|" + "---:|" * (len(marks) + 3),
    ]
    best = min(r["eval"][-1]["ppl"] for r in c["runs"])
    for r in c["runs"]:
        cells = []
        for m in marks:
            v = ppl_at(r, m)
            cell = "–" if v is None else f"{v:.4g}"
            if m == n and v == best:
                cell = f"**{cell}**"
            cells.append(cell)
        lines.append(f"| {r['label']} | " + " | ".join(cells) + f" | {r['seconds_per_step']:.3g} | "
                     f"{r['tokens_per_second']:.4g} | {r['peak_rss_bytes'] / 2**20:.0f} MiB |")
    if peer:
        lines += ["", peer_line(c, peer).rstrip()]
    lines += ["", f"![fine-tuning curves]({svg_rel})", ""]
    return "\n".join(lines) + "\n"


def svg(c, title):
    W, H, L, R, T, B = 760, 380, 64, 150, 36, 44
    runs = c["runs"]
    n = c["options"]["steps"]
    # NLL axis (log-perplexity): training loss smoothed over a window of ~n/50 steps, evaluation NLL as markers.
    def smooth(xs):
        k = max(1, n // 50)
        return [sum(xs[max(0, i - k + 1):i + 1]) / len(xs[max(0, i - k + 1):i + 1]) for i in range(len(xs))]
    series = [(r["label"], smooth(r["train_loss"]), [(e["step"], math.log(e["ppl"])) for e in r["eval"]]) for r in runs]
    ys = [v for _, tl, ev in series for v in tl] + [v for _, _, ev in series for _, v in ev]
    lo, hi = min(ys), max(ys)
    pad = 0.05 * (hi - lo or 1)
    lo, hi = lo - pad, hi + pad
    px = lambda s: L + (W - L - R) * s / max(1, n)
    py = lambda v: T + (H - T - B) * (hi - v) / (hi - lo)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{L}" y="20" font-size="14" font-weight="bold">{title}</text>']
    # Axes with perplexity labels on the NLL scale (a log-perplexity axis).
    out.append(f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="#444"/>')
    out.append(f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="#444"/>')
    for i in range(6):
        v = lo + (hi - lo) * i / 5
        y = py(v)
        out.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W - R}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end">{math.exp(v):.3g}</text>')
    for i in range(5):
        s = round(n * i / 4)
        out.append(f'<text x="{px(s):.1f}" y="{H - B + 16}" text-anchor="middle">{s}</text>')
    out.append(f'<text x="{(L + W - R) / 2}" y="{H - 8}" text-anchor="middle">step</text>')
    out.append(f'<text x="14" y="{(T + H - B) / 2}" transform="rotate(-90 14 {(T + H - B) / 2})" '
               'text-anchor="middle">perplexity (log scale): train loss line, eval markers</text>')
    for i, (label, tl, ev) in enumerate(series):
        col = COLOURS[i % len(COLOURS)]
        pts = " ".join(f"{px(s + 1):.1f},{py(v):.1f}" for s, v in enumerate(tl))
        out.append(f'<polyline fill="none" stroke="{col}" stroke-width="1.5" opacity="0.85" points="{pts}"/>')
        for s, v in ev:
            out.append(f'<circle cx="{px(s):.1f}" cy="{py(v):.1f}" r="4" fill="{col}" stroke="black" '
                       'stroke-width="0.6"/>')
        y = T + 10 + 20 * i
        out.append(f'<line x1="{W - R + 14}" y1="{y}" x2="{W - R + 36}" y2="{y}" stroke="{col}" stroke-width="3"/>')
        out.append(f'<text x="{W - R + 42}" y="{y + 4}">{label}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("curves")
    ap.add_argument("--name", required=True)
    ap.add_argument("--markdown", required=True)
    ap.add_argument("--svg", required=True)
    ap.add_argument("--peer", help="JSON line of peft_step_time.py for the same batch, window and rank")
    a = ap.parse_args()
    with open(a.curves) as f:
        c = json.load(f)
    if c.get("format") != "cloq-finetune":
        sys.exit(f"{a.curves}: not a cloq finetune curves.json")
    s = c["settings"]
    title = f"{a.name}: {s['bits']}-bit g{s['group']} r{s['rank']}, LoRA fine-tuning from each init"
    os.makedirs(os.path.dirname(a.svg) or ".", exist_ok=True)
    with open(a.svg + ".tmp", "w") as f:
        f.write(svg(c, title))
    os.replace(a.svg + ".tmp", a.svg)
    svg_rel = os.path.relpath(a.svg, os.path.dirname(os.path.abspath(a.markdown)) or ".")
    doc = open(a.markdown).read() if os.path.exists(a.markdown) else "# Benchmarks\n"
    peer = None
    if a.peer:
        with open(a.peer) as f:
            peer = json.loads(f.read().strip().splitlines()[-1])
    doc = section(doc, f"finetune_table:{a.name}", table(c, svg_rel, peer))
    with open(a.markdown + ".tmp", "w") as f:
        f.write(doc)
    os.replace(a.markdown + ".tmp", a.markdown)


if __name__ == "__main__":
    main()
