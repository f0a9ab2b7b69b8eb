#!/usr/bin/env python3
"""Loads a `cloq quantize` export with a user's Python stack and compares its logits with `cloq eval`'s.

OUT/base is loaded into transformers' LlamaForCausalLM: a float16 base directly, a GPTQ base after dequantizing it
with the unpacker below (written from the format description in docs/design.md, not from cloq's code). OUT/adapter is
applied with peft.PeftModel.from_pretrained. The logits on the token ids cloq evaluated must match cloq's to 1e-3
relative. Exit status 0 = pass, 1 = mismatch, 2 = the export could not be loaded.
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np
import torch
from safetensors.torch import load_file, save_file


# ---- GPTQ format, from its description --------------------------------------------------------------------------
# qweight int32 [in*b/32, out]: for every output column, the codes of the inputs form a little-endian bit stream of
# 32-bit words, input j at bit offset b*j (LSB first); 3-bit codes may straddle two words.
# qzeros int32 [G, out*b/32]: zero points packed the same way along the output dimension; format "gptq" stores
# zero-1, "gptq_v2" stores zero. scales fp16 [G, out], g_idx int32 [in]: W[o, i] = scale[g, o]*(q[i, o] - zero[g, o])
# with g = g_idx[i].


def load_llama(path):
    """float32 LlamaForCausalLM; `dtype=` since transformers 4.56, `torch_dtype=` before (Debian's torch pins an older one)."""
    import torch
    from transformers import LlamaForCausalLM

    try:
        return LlamaForCausalLM.from_pretrained(path, dtype=torch.float32)
    except TypeError:
        return LlamaForCausalLM.from_pretrained(path, torch_dtype=torch.float32)

def unpack_stream(words, bits, count):
    """words: uint32 [nwords, m], packed along axis 0 -> int64 [count, m]."""
    w = words.astype(np.uint64)
    out = np.empty((count, words.shape[1]), dtype=np.int64)
    mask = np.uint64((1 << bits) - 1)
    for j in range(count):
        k, off = divmod(bits * j, 32)
        v = w[k] >> np.uint64(off)
        if off + bits > 32:
            v = v | (w[k + 1] << np.uint64(32 - off))
        out[j] = (v & mask).astype(np.int64)
    return out


def autogptq_pack_column(values, bits):
    """AutoGPTQ's published pack loop for one column (used only to self-check the unpacker on 3-bit straddles)."""
    q = [0] * (len(values) // 32 * bits)
    i = row = 0
    while row < len(q):
        if bits in (2, 4, 8):
            for j in range(i, i + 32 // bits):
                q[row] |= values[j] << (bits * (j - i))
            i += 32 // bits
            row += 1
        else:
            for j in range(i, i + 10):
                q[row] |= values[j] << (3 * (j - i))
            i += 10
            q[row] |= (values[i] << 30) & 0xFFFFFFFF
            row += 1
            q[row] |= (values[i] >> 2) & 1
            i += 1
            for j in range(i, i + 10):
                q[row] |= values[j] << (3 * (j - i) + 1)
            i += 10
            q[row] |= (values[i] << 31) & 0xFFFFFFFF
            row += 1
            q[row] |= (values[i] >> 1) & 0x3
            i += 1
            for j in range(i, i + 10):
                q[row] |= values[j] << (3 * (j - i) + 2)
            i += 10
            row += 1
    return q


def self_check():
    rng = np.random.default_rng(0)
    for bits in (2, 3, 4, 8):
        vals = [int(x) for x in rng.integers(0, 1 << bits, 64)]
        words = np.array(autogptq_pack_column(vals, bits), dtype=np.uint32)[:, None]
        assert unpack_stream(words, bits, 64)[:, 0].tolist() == vals, f"unpacker self-check failed for {bits} bits"


def dequantize_gptq(tensors, qcfg):
    fmt = qcfg.get("checkpoint_format", "gptq")
    if fmt not in ("gptq", "gptq_v2"):
        raise ValueError(f"unknown checkpoint_format {fmt}")
    out = {}
    modules = [n[: -len(".qweight")] for n in tensors if n.endswith(".qweight")]
    packed = {m + s for m in modules for s in (".qweight", ".qzeros", ".scales", ".g_idx")}
    for name, t in tensors.items():
        if name not in packed:  # everything else, a packed module's bias (Qwen2's q/k/v) included
            out[name] = t.float()
    for m in modules:
        qweight = tensors[m + ".qweight"].numpy().view(np.uint32)
        qzeros = tensors[m + ".qzeros"].numpy().view(np.uint32)
        scales = tensors[m + ".scales"].float().numpy().astype(np.float64)
        g_idx = tensors[m + ".g_idx"].numpy().astype(np.int64)
        n_in, (n_groups, n_out) = g_idx.shape[0], scales.shape
        bits = qweight.shape[0] * 32 // n_in
        assert bits in (2, 3, 4, 8) and qweight.shape == (n_in * bits // 32, n_out), m
        codes = unpack_stream(qweight, bits, n_in)                      # [in, out]
        zeros = unpack_stream(qzeros.T.copy(), bits, n_out).T           # [G, out]
        if fmt == "gptq":
            zeros = zeros + 1
        w = scales[g_idx] * (codes - zeros[g_idx])                      # [in, out]
        out[m + ".weight"] = torch.from_numpy(w.T.astype(np.float32).copy())
    return out, modules


def load_base(base_dir, workdir):
    from transformers import LlamaForCausalLM
    with open(os.path.join(base_dir, "config.json")) as f:
        cfg = json.load(f)
    qcfg = cfg.pop("quantization_config", None)
    if qcfg is None:  # a plain float16 model
        return load_llama(base_dir), "float16 base", 0
    tensors = load_file(os.path.join(base_dir, "model.safetensors"))
    state, modules = dequantize_gptq(tensors, qcfg)
    cfg["torch_dtype"] = "float32"
    with open(os.path.join(workdir, "config.json"), "w") as f:
        json.dump(cfg, f)
    save_file(state, os.path.join(workdir, "model.safetensors"), metadata={"format": "pt"})
    model = load_llama(workdir)
    return model, f"GPTQ {qcfg.get('checkpoint_format', 'gptq')} base ({len(modules)} packed modules)", len(modules)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="the cloq quantize output folder")
    ap.add_argument("--logits", required=True, help="JSON from cloq eval --logits-json: ids and logits")
    ap.add_argument("--adapter", help="the PEFT adapter folder (default OUT/adapter; e.g. a cloq finetune run's)")
    ap.add_argument("--tol", type=float, default=1e-3)
    a = ap.parse_args()
    self_check()
    torch.set_grad_enabled(False)
    from peft import PeftModel

    with open(a.logits) as f:
        ref = json.load(f)
    ids = torch.tensor([ref["ids"]], dtype=torch.long)
    want = torch.tensor(ref["logits"], dtype=torch.float64)
    with tempfile.TemporaryDirectory() as work:
        try:
            base, what, _ = load_base(os.path.join(a.out, "base"), work)
            adapter_dir = a.adapter or os.path.join(a.out, "adapter")
            model = PeftModel.from_pretrained(base, adapter_dir)
        except Exception as e:  # noqa: BLE001 - any failure to load is the finding
            print(f"FAIL: could not load {a.out}: {type(e).__name__}: {e}")
            return 2
        model.eval()
        # PEFT must have put cloq's tensors where they belong, with the scaling the config implies.
        files = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
        placed = 0
        for name, p in model.named_parameters():
            if ".lora_A.default.weight" in name or ".lora_B.default.weight" in name:
                key = name.replace(".default.weight", ".weight")
                if key not in files or not torch.equal(p.detach().to(files[key].dtype), files[key]):
                    print(f"FAIL: PEFT parameter {name} does not hold the file's tensor {key}")
                    return 1
                placed += 1
        if placed != len(files):
            print(f"FAIL: PEFT placed {placed} of the {len(files)} adapter tensors")
            return 1
        got = model(ids).logits[0].double()
    rel = (got - want).norm().item() / want.norm().item()
    max_rel = (got - want).abs().max().item() / want.abs().max().item()
    ok = rel <= a.tol and max_rel <= a.tol
    print(f"{'PASS' if ok else 'FAIL'}: {what} + PEFT adapter ({placed} tensors) on {ids.shape[1]} tokens: "
          f"logits relative difference {rel:.2e} (max-abs relative {max_rel:.2e}, tolerance {a.tol:g}); "
          f"torch {torch.__version__}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
