#!/usr/bin/env python3
"""Python reference implementations that `compare_python.sh` times against `cloq layer` in the same run.

  cloq   CLoQ's Algorithm 1 in float64 NumPy, literally: H_λ = H + λI with λ = 0.01·tr(H)/in, eigh(H_λ) = UΣUᵀ,
         R = Σ^½Uᵀ, full SVD of R·ΔWᵀ, lora_B = V_r, lora_A = S_r U_rᵀ R⁻ᵀ (the paper's default split).
         It starts from the Q that `cloq layer` wrote (so both solve the same problem) and prints its Frobenius
         discrepancy ‖X(Q + B·A − W)ᵀ‖ = sqrt(tr(D H Dᵀ)) so the driver can check both agree.
  loftq  PEFT's loftq_init loop (peft.utils.loftq_utils, NF quantizer "normal", blocks of 64, T iterations,
         rank-r SVD with √S on both sides) in PyTorch float32, using PEFT's own NFQuantizer and
         _low_rank_decomposition; PEFT's public loftq_init itself insists on bitsandbytes, which a CPU machine
         need not have, so its 10-line loop is restated here around PEFT's functions.

Prints one JSON object: {"seconds": ..., "fro": ..., "threads": ...}.
"""
import argparse
import json
import sys
import time

import numpy as np


def cloq_reference(W, H, Q, rank):
    t0 = time.perf_counter()
    n = H.shape[0]
    lam = 0.01 * np.trace(H) / n
    sigma, U = np.linalg.eigh(H + lam * np.eye(n))
    sigma = np.clip(sigma, 0.0, None)
    root = np.sqrt(sigma)
    R = root[:, None] * U.T                       # R = Σ^½Uᵀ, RᵀR = H_λ
    inv_root = np.where(root > root.max() * n * np.finfo(np.float64).eps, 1.0 / np.maximum(root, 1e-300), 0.0)
    Rinv_T = inv_root[:, None] * U.T               # R⁻ᵀ = Σ^-½Uᵀ (pseudo-inverse for a singular H_λ)
    dW = W - Q
    Us, S, Vt = np.linalg.svd(R @ dW.T, full_matrices=False)
    lora_B = Vt[:rank].T                           # [out, r]
    lora_A = (S[:rank, None] * Us[:, :rank].T) @ Rinv_T   # [r, in]
    seconds = time.perf_counter() - t0
    D = Q + lora_B @ lora_A - W
    fro = float(np.sqrt(max(np.einsum("ij,jk,ik->", D, H, D), 0.0)))
    return seconds, fro


def loftq_reference(W, rank, bits, iters):
    import torch
    from peft.utils.loftq_utils import NFQuantizer, _low_rank_decomposition

    weight = torch.from_numpy(W).to(torch.float32)
    t0 = time.perf_counter()
    quantizer = NFQuantizer(num_bits=bits, device=weight.device, method="normal", block_size=64)
    res = weight.clone()
    for _ in range(iters):
        qweight, max_abs, shape = quantizer.quantize_block(res)
        dequantized = quantizer.dequantize_block(qweight, max_abs, shape)
        res = weight - dequantized
        out = _low_rank_decomposition(res, reduced_rank=rank)
        L, R = out["L"], out["R"]
        res = weight - torch.mm(L, R)
    seconds = time.perf_counter() - t0
    D = (dequantized + L @ R - weight).double().numpy()
    return seconds, float(np.linalg.norm(D)), torch.get_num_threads()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("method", choices=["cloq", "loftq"])
    ap.add_argument("--weight", required=True)
    ap.add_argument("--gram")
    ap.add_argument("--q", help="the Q.npy that `cloq layer` wrote (cloq)")
    ap.add_argument("--rank", type=int, default=64)
    ap.add_argument("--bits", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    a = ap.parse_args()
    W = np.load(a.weight).astype(np.float64 if a.method == "cloq" else np.float32)
    if a.method == "cloq":
        if not a.gram or not a.q:
            sys.exit("python_reference.py cloq needs --gram and --q")
        secs, fro = cloq_reference(W, np.load(a.gram).astype(np.float64), np.load(a.q).astype(np.float64), a.rank)
        print(json.dumps({"seconds": secs, "fro": fro}))
    else:
        secs, fro, threads = loftq_reference(W, a.rank, a.bits, a.iters)
        print(json.dumps({"seconds": secs, "fro_plain": fro, "torch_threads": threads}))


if __name__ == "__main__":
    main()
