#!/usr/bin/env python3
"""Loads a `cloq quantize` export the way a user of today's Python stack does, and compares it with cloq.

No unpacker of ours is involved: OUT/base goes through `AutoModelForCausalLM.from_pretrained(OUT/base)`, which for a
GPTQ base hands the checkpoint to optimum + gptqmodel and their own CPU kernels (the kernel's class is printed), and
OUT/adapter through `peft.PeftModel.from_pretrained`. Checked against `cloq eval --logits-json --greedy`:

  * AutoTokenizer on OUT/base gives cloq's token ids for the evaluated text (a WikiText paragraph);
  * the logits on those ids match cloq's within a tolerance measured on the model (relative Frobenius norm);
  * 20 greedy tokens from transformers' generate() equal cloq's.

Tolerance. The model runs in float32 (`dtype=torch.float32`) and the kernels dequantize with the checkpoint's own
float16 scales, as cloq does, but they form the dequantized weight in float16: each weight is rounded to float16 (unit
roundoff 4.9e-4) before the product. How much that moves the logits depends on the model: a 5-block model barely
notices, a 30-block 2-bit model near a uniform guess amplifies it. So the allowance is measured on the model itself,
without the kernel: the file is dequantized exactly by the independent unpacker of check_peft_interop.py, and the
same float32 model is run twice, once with those weights rounded to float16. The logits may differ from cloq's by
twice what that rounding does (and at least --tol = 1e-3, float32 summation order). A wrong key or packing moves
the logits far more (the negative controls, `--expect-fail`, must see a mismatch). A float16 base has no kernel: 1e-3.

Exit status 0 = pass, 1 = mismatch, 2 = the export could not be loaded.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cloq_reference import read_cloq_logits, rel_diff, token_mismatch  # noqa: E402


def weight_rounding_effect(base_dir, adapter_dir, ids):
    """Relative change of the logits when the packed modules' exactly dequantized weights are rounded to float16."""
    from check_peft_interop import dequantize_gptq  # the independent unpacker, written from the format description
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM

    with open(os.path.join(base_dir, "config.json")) as f:
        qcfg = json.load(f).get("quantization_config")
    if qcfg is None:
        return 0.0, None
    state, modules = dequantize_gptq(load_file(os.path.join(base_dir, "model.safetensors")), qcfg)
    cfg = AutoConfig.from_pretrained(base_dir)
    del cfg.quantization_config
    out = []
    for rounded in (False, True):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
        sd = {k: (v.half().float() if rounded and k[: -len(".weight")] in modules else v) for k, v in state.items()}
        missing, unexpected = model.load_state_dict(sd, strict=False)
        model.tie_weights()
        tied = getattr(cfg, "tie_word_embeddings", False)
        missing = [k for k in missing if not (tied and k == "lm_head.weight")]
        if missing or unexpected:
            raise ValueError(f"exact unpack of {base_dir}: missing {missing[:5]}, unexpected {unexpected[:5]}")
        model = PeftModel.from_pretrained(model, adapter_dir).eval()
        out.append(model(torch.tensor([ids])).logits[0].double())
    return (out[1] - out[0]).norm().item() / out[0].norm().item(), out[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="the cloq quantize output folder (OUT/base, OUT/adapter)")
    ap.add_argument("--logits", required=True, help="JSON from cloq eval --logits-json --greedy 20")
    ap.add_argument("--text", required=True, help="the text cloq evaluated (its ids are compared with AutoTokenizer's)")
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--expect-fail", action="store_true", help="negative control: pass only if the logits differ")
    ap.add_argument("--loader", choices=("transformers", "gptqmodel"), default="transformers",
                    help="transformers' from_pretrained (optimum + gptqmodel kernels), or GPTQModel.load, the loader "
                         "that reads per-layer bits from `dynamic`")
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    import transformers
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ref, ids, want = read_cloq_logits(a.logits)
    base_dir, adapter_dir = os.path.join(a.out, "base"), os.path.join(a.out, "adapter")
    name = os.path.basename(os.path.normpath(a.out))

    # Tokenizer: the exported base carries it (GGUF inputs included). cloq puts BOS first when the model has one.
    tok = AutoTokenizer.from_pretrained(base_dir)
    if (bad := token_mismatch(tok, a.text, ids)) is not None:
        print(f"FAIL: {name}: AutoTokenizer: {bad}")
        return 1

    def load_base(dtype):
        if a.loader == "gptqmodel":
            from gptqmodel import GPTQModel
            # backend "torch": GPTQModel's automatic choice on a CPU takes the fused kernel for every layer from the
            # top-level bits (4 here) and refuses the 2- and 3-bit layers that `dynamic` gives; TorchLinear holds
            # every bit width, layer by layer.
            return GPTQModel.load(base_dir, device="cpu", dtype=dtype, backend="torch").model
        return AutoModelForCausalLM.from_pretrained(base_dir, device_map="cpu", dtype=dtype)

    # GPTQModel's own loader runs its TorchLinear in float16 or bfloat16 only: that run is in float16, its floor is
    # --tol (the shell gives it, with the measured float16 effect on the same model through transformers).
    main_dtype = torch.float16 if a.loader == "gptqmodel" else torch.float32
    try:
        base = load_base(main_dtype)
        model = PeftModel.from_pretrained(base, adapter_dir)
    except Exception as e:  # noqa: BLE001 - any failure to load is the finding
        print(f"FAIL: {name}: could not load: {type(e).__name__}: {e}")
        return 2
    model.eval()
    kernels = sorted({type(m).__name__ for m in model.modules() if "QuantLinear" in type(m).__name__
                      or "Linear" in type(m).__name__ and hasattr(m, "qweight")})
    got = model(torch.tensor([ids])).logits[0].double()
    rel = rel_diff(got, want)
    floor, exact = weight_rounding_effect(base_dir, adapter_dir, ids)  # see Tolerance above
    unpacked = "" if exact is None else f", exact unpack vs cloq {(exact - want).norm().item() / want.norm().item():.1e}"
    tol = max(a.tol, 2 * floor)
    agree = (got.argmax(-1) == want.argmax(-1)).double().mean().item()

    greedy_ok = True
    if "greedy" in ref:
        prompt = torch.tensor([ref["greedy_prompt"]])
        gen = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                             max_new_tokens=len(ref["greedy"]), min_new_tokens=len(ref["greedy"]),
                             pad_token_id=tok.eos_token_id if tok.eos_token_id is not None else 0)
        hf_greedy = gen[0, prompt.shape[1]:].tolist()
        greedy_ok = hf_greedy == ref["greedy"]
        if not greedy_ok:
            print(f"  greedy: transformers {hf_greedy}\n          cloq         {ref['greedy']}")

    ok = rel <= tol and greedy_ok
    what = (f"{name}: base via {a.loader} ({', '.join(kernels) or 'float Linear'}) + PEFT on {len(ids)} tokens: logits "
            f"relative difference {rel:.2e} (tolerance {tol:.1e}: 2 x {floor:.1e} from float16 weights, at least {a.tol:g}{unpacked}), argmax agreement {agree:.1%}, "
            f"{len(ref.get('greedy', []))} greedy tokens {'equal' if greedy_ok else 'DIFFER'}, tokenizer ids equal; "
            f"torch {torch.__version__}, transformers {transformers.__version__}")
    if a.expect_fail:
        print(f"{'PASS' if not ok else 'FAIL'} (negative control, must differ): {what}")
        return 0 if not ok else 1
    print(f"{'PASS' if ok else 'FAIL'}: {what}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
