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
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cloq_reference import read_cloq_logits, rel_diff, token_mismatch  # noqa: E402


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

    ref, ids, want = read_cloq_logits(a.logits)
    folder, name = os.path.split(os.path.abspath(a.gguf))
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    if (bad := token_mismatch(tok, a.text, ids)) is not None:
        print(f"FAIL: {name}: transformers' GGUF tokenizer: {bad}")
        return 1
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.eval()
    got = model(torch.tensor([ids])).logits[0].double()
    rel = rel_diff(got, want)
    ok = rel <= a.tol
    print(f"{'PASS' if ok else 'FAIL'}: {name}: float forward of {type(model).__name__} (transformers' GGUF loader) "
          f"on {len(ids)} tokens: logits relative difference {rel:.2e} (tolerance {a.tol:g}), tokenizer ids equal; "
          f"transformers {transformers.__version__}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
