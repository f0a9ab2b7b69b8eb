#!/usr/bin/env python3
"""Turns a tests/bench/run_plan_tables.sh run (OUT/plan/plan.json + OUT/evals.jsonl) into the README's budget table.

For each budget (the size of a uniform setting) it gives the uniform and the planned model's size, predicted
objective (sum of relative calibrated discrepancies squared) and measured perplexity, and the planning time per
stage (quantizer runs per bit width, spectra, solve). Standard library only.

Usage: plan_table.py OUT --name NAME --markdown README.md --json docs/plan_NAME.json
"""
import argparse
import json
import os


def section(doc, name, body):
    open_, close = f"<!-- {name} -->", f"<!-- /{name} -->"
    text = f"{open_}\n{body}{close}"
    a, b = doc.find(open_), doc.find(close)
    if a >= 0 and b > a:
        return doc[:a] + text + doc[b + len(close):]
    return doc + "\n" + text + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--name", required=True)
    ap.add_argument("--markdown")
    ap.add_argument("--json")
    a = ap.parse_args()
    plan = json.load(open(os.path.join(a.out, "plan", "plan.json")))
    evals = {}
    for line in open(os.path.join(a.out, "evals.jsonl")):
        e = json.loads(line)
        evals[e["label"]] = e
    first = {"budget_like": None, "mib": plan["exact"]["mib"], "objective": plan["exact"]["objective"],
             "greedy_objective": plan["greedy"]["objective"], "lower_bound": plan["exact"]["lower_bound"],
             "bits_per_weight": plan["exact"]["bits_per_weight"], "loaders": plan["loaders"]}
    rows = []
    likes = [k for k in evals if k.startswith("uniform ")]
    more = {m["budget_like"]: m for m in plan.get("more_budgets", [])}
    for label in likes:
        b, r = label.split()[1].split("-")[0], label.split()[2][1:]
        key = f"{b}:{r}"
        p = more.get(key, first)
        uni = next(u for u in plan["uniform"] if u["label"] == f"{b}-bit r{r}")
        rows.append({"setting": f"{b}-bit r{r}", "uniform_mib": uni["mib"], "uniform_objective": uni["objective"],
                     "plan_mib": p["mib"], "plan_objective": p["objective"], "greedy_objective": p["greedy_objective"],
                     "plan_bits_per_weight": p["bits_per_weight"], "lower_bound": p["lower_bound"],
                     "uniform_ppl": evals[label]["result"]["ppl"],
                     "plan_ppl": evals[f"plan at {b}-bit r{r}"]["result"]["ppl"],
                     "loaders": p["loaders"]})
    secs = plan["seconds"]
    per_bits = {}
    for l in plan["layers"]:
        for b, s in l.get("seconds_per_bits", {}).items():
            per_bits[b] = per_bits.get(b, 0.0) + s
    cal = plan["calibration"]
    ev0 = next(iter(evals.values()))["result"]
    lines = [
        f"{a.name}, CLoQ init, group {plan['settings']['group']} {plan['settings']['quantizer'].upper()} base, "
        f"candidates bits {plan['bits']} × ranks {plan['ranks']}, mode `{plan['mode']}`. Calibration: "
        f"{cal['nsamples']} × {cal['seqlen']} tokens of `{os.path.basename(cal['text'])}` part {cal['part']}; "
        f"evaluation: the first windows of part 0:0.5 of the same text ({ev0.get('tokens', '?')} tokens). Sizes are "
        f"the whole export (base + float32 adapter, `cloq quantize`'s default), as the planner counts them.",
        "",
        "| budget = size of | uniform MiB | plan MiB | objective uniform → plan (greedy) | ppl uniform | ppl plan | plan bits/weight |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    def lower_bold(x, y):  # the lower of two values in bold, so a plan that loses does not read as a win
        fx, fy = f"{x:.4g}", f"{y:.4g}"
        return (f"**{fx}**", fy) if x < y else (fx, f"**{fy}**") if y < x else (fx, fy)

    for r in rows:
        uo, po = lower_bold(r["uniform_objective"], r["plan_objective"])
        up, pp = lower_bold(r["uniform_ppl"], r["plan_ppl"])
        lines.append(f"| {r['setting']} | {r['uniform_mib']:.2f} | {r['plan_mib']:.2f} | {uo} → {po} "
                     f"({r['greedy_objective']:.4g}) | {up} | {pp} | {r['plan_bits_per_weight']:.3f} |")
    lines += ["", "Planning time on this machine: calibration %.0f s, per-layer curves %.0f s (quantizer + spectrum per "
              "bit width, summed over layers: %s), exact solve %.3f s, front %.2f s." % (
                  secs.get("calibration", 0), secs["curves"],
                  ", ".join(f"{b}-bit {s:.0f} s" for b, s in sorted(per_bits.items())), secs["solve"], secs["front"]),
              ""]
    body = "\n".join(lines) + "\n"
    print(body)
    if a.json:
        json.dump({"name": a.name, "rows": rows, "seconds": secs, "seconds_per_bits": per_bits}, open(a.json, "w"),
                  indent=2)
    if a.markdown:
        doc = open(a.markdown).read()
        open(a.markdown, "w").write(section(doc, f"plan-table-{a.name}", body))


if __name__ == "__main__":
    main()
