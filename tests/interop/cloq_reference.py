"""What the interop checks compare against: `cloq eval --logits-json` output, and cloq's token ids of a text."""
import json

import torch


def read_cloq_logits(path):
    """(the JSON, its ids, its logits as float64 [T, vocab])."""
    with open(path) as f:
        ref = json.load(f)
    return ref, ref["ids"], torch.tensor(ref["logits"], dtype=torch.float64)


def token_mismatch(tok, text_path, ids):
    """None when `tok` gives cloq's ids for the text (cloq puts BOS first when the model has one), else a message."""
    with open(text_path, encoding="utf-8") as f:
        hf_ids = tok(f.read(), add_special_tokens=False)["input_ids"]
    ours = ids[1:] if tok.bos_token_id is not None and ids and ids[0] == tok.bos_token_id else ids
    if hf_ids[: len(ours)] == ours:
        return None
    first = next((i for i in range(min(len(ours), len(hf_ids))) if ours[i] != hf_ids[i]), len(hf_ids))
    return f"the tokenizer's ids differ from cloq's at token {first}: {hf_ids[first:first + 5]} vs {ours[first:first + 5]}"


def rel_diff(got, want):
    """Relative Frobenius-norm difference."""
    return (got - want).norm().item() / want.norm().item()
