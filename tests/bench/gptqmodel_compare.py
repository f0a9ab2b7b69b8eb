#!/usr/bin/env python3
"""GPTQModel quantizes SmolLM2-135M on the CPU from the same calibration windows cloq used (issue 18).

Steps (all in the current-stack venv):
  1. transformers reads the GGUF itself and writes a float32 HF folder (its float forward matches cloq's to ~1e-6,
     tests/interop/check_gguf_forward.py);
  2. GPTQModel quantizes that folder with QuantizeConfig(bits, group_size, sym=False, desc_act=False) on the windows
     `cloq calibrate --windows-json` wrote, and saves its checkpoint;
  3. per-layer loss of both checkpoints on the same calibration activations: ||X(Q-W)^T||_F^2 / ||XW^T||_F^2 with
     H = X^T X accumulated here in float64 from the float model, Q dequantized by the independent unpacker of
     tests/interop/check_peft_interop.py (not cloq's code).
Writes a JSON with the per-layer losses and GPTQModel's time; run by tests/bench/run_gptqmodel_table.sh.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
from check_peft_interop import dequantize_gptq  # noqa: E402  the independent unpacker
from safetensors.torch import load_file  # noqa: E402


def float_folder(gguf, out):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    folder, name = os.path.split(os.path.abspath(gguf))
    if not os.path.exists(os.path.join(out, "config.json")):
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        # A GGUF-loaded model refuses save_pretrained ("quantized with gguf"): copy its float weights into a plain one.
        cfg = loaded.config
        if hasattr(cfg, "quantization_config"):
            del cfg.quantization_config
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
        model.load_state_dict(loaded.state_dict())
        model.save_pretrained(out)
        AutoTokenizer.from_pretrained(folder, gguf_file=name).save_pretrained(out)
    return out


def hessians(float_dir, windows):
    """H = X^T X (float64) of every linear layer's input over the windows, keyed by module name."""
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(float_dir, dtype=torch.float32).eval()
    H, hooks = {}, []
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Linear) and ".layers." in name:
            def hook(mod, inp, out, name=name):
                x = inp[0].reshape(-1, inp[0].shape[-1]).double()
                H[name] = H.get(name, 0) + x.T @ x
            hooks.append(m.register_forward_hook(hook))
    with torch.no_grad():
        for w in windows:
            model(torch.tensor([w]))
    weights = {n: m.weight.detach().double() for n, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and ".layers." in n}
    return H, weights


def layer_losses(ckpt, H, W):
    with open(os.path.join(ckpt, "config.json")) as f:
        qcfg = json.load(f)["quantization_config"]
    state, modules = dequantize_gptq(load_file(os.path.join(ckpt, "model.safetensors")), qcfg)
    out = {}
    for m in modules:
        d = state[m + ".weight"].double() - W[m]
        out[m] = (torch.trace(d @ H[m] @ d.T) / torch.trace(W[m] @ H[m] @ W[m].T)).item()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--windows", required=True, help="cloq calibrate --windows-json output")
    ap.add_argument("--ours", required=True, help="cloq quantize OUT/base (format gptq)")
    ap.add_argument("--ours-seq", help="the same with --sequential (calibrated on the quantized blocks' outputs)")
    ap.add_argument("--work", required=True, help="folder for the float model and GPTQModel's checkpoint")
    ap.add_argument("--bits", type=int, default=4)
    ap.add_argument("--group", type=int, default=64)
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    from gptqmodel import GPTQModel, QuantizeConfig

    windows = json.load(open(a.windows))["windows"]
    float_dir = float_folder(a.gguf, os.path.join(a.work, "float"))
    theirs = os.path.join(a.work, f"gptqmodel-{a.bits}bit-g{a.group}")
    seconds_file = theirs + ".seconds"
    if not os.path.exists(seconds_file):
        t0 = time.time()
        cfg = QuantizeConfig(bits=a.bits, group_size=a.group, sym=False, desc_act=False, damp_percent=0.01)
        model = GPTQModel.load(float_dir, cfg, device="cpu")
        calib = [{"input_ids": w, "attention_mask": [1] * len(w)} for w in windows]
        model.quantize(calib, batch_size=1)
        model.save(theirs)
        del model
        with open(seconds_file, "w") as f:
            f.write(str(time.time() - t0))
    seconds = float(open(seconds_file).read())
    H, W = hessians(float_dir, windows)
    result = {"gptqmodel_seconds": seconds, "gptqmodel_checkpoint": theirs, "windows": len(windows),
              "seqlen": len(windows[0]), "ours": layer_losses(a.ours, H, W), "gptqmodel": layer_losses(theirs, H, W)}
    if a.ours_seq:
        result["ours_seq"] = layer_losses(a.ours_seq, H, W)
    json.dump(result, open(a.json, "w"), indent=1)
    print(f"GPTQModel {a.bits}-bit g{a.group}: {seconds:.0f} s; wrote {a.json}")


if __name__ == "__main__":
    sys.exit(main())
