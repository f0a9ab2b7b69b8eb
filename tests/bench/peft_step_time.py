#!/usr/bin/env python3
"""The peer of `cloq finetune`'s time per step: the same LoRA training step in PyTorch + transformers + PEFT.

transformers reads the GGUF file itself (from_pretrained(dir, gguf_file=...), the `gguf` package dequantizes it), so
both sides train on the same dequantized float32 weights. LoRA on every linear layer (q k v o gate up down) at rank R,
lora_alpha 16, no dropout; AdamW (weight decay 0.1), gradient clipping at 1.0, the mean next-token NLL of a batch of
B windows of L tokens: the step `cloq finetune` takes. Prints one JSON line: seconds per step (median of the timed
steps after warm-up), torch version and threads.

Usage: peft_step_time.py GGUF_PATH --rank 64 --batch 4 --seqlen 256 --steps 5 [--threads N]
"""
import argparse
import json
import os
import statistics
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf")
    ap.add_argument("--rank", type=int, default=64)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seqlen", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(
        os.path.dirname(os.path.abspath(a.gguf)), gguf_file=os.path.basename(a.gguf), torch_dtype=torch.float32)
    cfg = LoraConfig(r=a.rank, lora_alpha=16, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    model = get_peft_model(model, cfg)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=7e-4, weight_decay=0.1)
    vocab = model.config.vocab_size
    times = []
    for step in range(a.warmup + a.steps):
        ids = torch.randint(0, vocab, (a.batch, a.seqlen))
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        logits = model(input_ids=ids).logits[:, :-1].float()
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        if step >= a.warmup:
            times.append(dt)
    print(json.dumps({"seconds_per_step": statistics.median(times), "steps": a.steps, "batch": a.batch,
                      "seqlen": a.seqlen, "rank": a.rank, "torch": torch.__version__,
                      "threads": torch.get_num_threads(),
                      "trainable_parameters": sum(p.numel() for p in params)}))


if __name__ == "__main__":
    sys.exit(main())
