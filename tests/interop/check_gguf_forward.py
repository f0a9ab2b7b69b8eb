#!/usr/bin/env python3
"""cloq's float forward on a GGUF model against transformers' own GGUF loader (issue 18's third family).

transformers reads the GGUF itself (`from_pretrained(dir, gguf_file=...)`, dequantizing with the `gguf` package) and
builds its own tokenizer from the GGUF metadata; nothing of cloq's is involved on that side. Checked against
`cloq eval --model X.gguf --logits-json` (float model, no quantization options):

  * the tokenizer gives cloq's token ids for the text;
  * the float32 logits match within --tol (relative Frobenius norm). Both sides dequantize the same blocks to float32
    and run a float32 forward, so only summation order differs: measured ~1e-6; the default tolerance is 1e-5.

Exit status 0 = pass, 1 = mismatch.
"""
import argparse
import json
import os
import sys

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--logits", required=True, help="JSON from cloq eval --logits-json (float model)")
    ap.add_argument("--text", required=True)
    ap.add_argument("--tol", type=float, default=1e-5)
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with open(a.logits) as f:
        ref = json.load(f)
    ids = ref["ids"]
    want = torch.tensor(ref["logits"], dtype=torch.float64)
    folder, name = os.path.split(os.path.abspath(a.gguf))
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    with open(a.text, encoding="utf-8") as f:
        hf_ids = tok(f.read(), add_special_tokens=False)["input_ids"]
    ours = ids[1:] if tok.bos_token_id is not None and ids and ids[0] == tok.bos_token_id else ids
    if hf_ids[: len(ours)] != ours:
        first = next((i for i in range(min(len(ours), len(hf_ids))) if ours[i] != hf_ids[i]), len(hf_ids))
        print(f"FAIL: {name}: transformers' GGUF tokenizer differs from cloq's at token {first}: "
              f"{hf_ids[first:first + 5]} vs {ours[first:first + 5]}")
        return 1
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.eval()
    got = model(torch.tensor([ids])).logits[0].double()
    rel = (got - want).norm().item() / want.norm().item()
    ok = rel <= a.tol
    print(f"{'PASS' if ok else 'FAIL'}: {name}: float forward of {type(model).__name__} (transformers' GGUF loader) "
          f"on {len(ids)} tokens: logits relative difference {rel:.2e} (tolerance {a.tol:g}), tokenizer ids equal; "
          f"transformers {transformers.__version__}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
