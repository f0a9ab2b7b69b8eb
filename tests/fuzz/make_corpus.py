#!/usr/bin/env python3
"""Writes the seed corpora of the fuzzers, tests/fuzz/corpus/<target>/seed-*, from the same builders as the
hostile-input corpus (tests/data/make_bad_inputs.py): small valid files of every variant each parser accepts, so
libFuzzer starts from deep inside the formats. regress-* files are past findings, written here from a description;
crash-*/timeout-*/oom-* files are inputs libFuzzer saved, copied in as found (this script never touches those).

    python3 tests/fuzz/make_corpus.py          # rewrites the seed-* files and the dictionaries dict/<target>.dict
    python3 tests/fuzz/make_corpus.py --check  # exits 1 if they differ from what it would write
"""
import argparse
import glob
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "data"))
import make_bad_inputs as b  # noqa: E402

EVEN, ODD = b"\x00", b"\x01"  # selector bytes of the targets that have two variants


def safetensors_seeds():
    small = [("w", "F32", [2, 3], b.f32_bytes([1, -2, 3.5, 0, 1e-3, -7])),
             ("h", "F16", [3], struct.pack("<3e", 1.0, -0.5, 2.0)),
             ("bf", "BF16", [2], b"\x80\x3f\x00\xc0"),
             ("i", "I32", [1, 2], struct.pack("<2i", -1, 7)),
             ("d", "F64", [1], struct.pack("<d", 3.25)),
             ("u", "U8", [4], b"\x00\x01\xfe\xff"),
             ("s", "F32", [], b.f32_bytes([9.0])),
             ("z", "F32", [0, 5], b"")]
    index = {"metadata": {"total_size": 14},
             "weight_map": {"a": "model-00001-of-00001.safetensors", "b": "model-00001-of-00001.safetensors"}}
    return {
        "seed-tiny-model": EVEN + b.st_file(b.tiny_tensors()),
        "seed-dtypes": EVEN + b.st_file(small, metadata={"format": "pt", "note": "seed"}),
        "seed-empty": EVEN + b.st_file([]),
        "seed-index": ODD + json.dumps(index).encode(),
    }


def npy_seeds():
    out = {}
    for descr, fmt in [("<f4", "<4f"), ("<f8", "<4d"), ("<f2", "<4e"), ("<i4", "<4i"), ("<i8", "<4q"),
                       ("|u1", "<4B"), ("|b1", "<4?")]:
        vals = [1, 0, 1, 1] if descr == "|b1" else [1, 2, 3, 4]
        out["seed-%s" % descr.strip("<|")] = b.npy_file(descr, [2, 2], struct.pack(fmt, *vals))
    out["seed-0d"] = b.npy_file("<f4", [], b.f32_bytes([2.5]))
    out["seed-empty"] = b.npy_file("<f4", [0, 3], b"")
    out["seed-v2"] = b.npy_file("<f4", [3], b.f32_bytes([1, 2, 3]), version=(2, 0))
    out["seed-v3"] = b.npy_file("<f8", [1, 1, 2], struct.pack("<2d", 1, 2), version=(3, 0))
    return out


def gguf_seeds():
    kvs, tensors = b.tiny_gguf_parts()
    every_type = [
        b.g_kv("u8", 0, b"\x07"), b.g_kv("i8", 1, b"\xf9"), b.g_kv("u16", 2, struct.pack("<H", 65535)),
        b.g_kv("i16", 3, struct.pack("<h", -3)), b.g_kv_u32("u32", 7), b.g_kv("i32", 5, struct.pack("<i", -7)),
        b.g_kv_f32("f32", 0.5), b.g_kv("bool", 7, b"\x01"), b.g_kv_str("str", "h\u00e9llo"),
        b.g_kv("u64", 10, struct.pack("<Q", 2**40)), b.g_kv("i64", 11, struct.pack("<q", -(2**40))),
        b.g_kv("f64", 12, struct.pack("<d", 1e-300)),
        b.g_kv_arr("arr_str", b.GGUF_STR, ["a", "bc", ""]), b.g_kv_arr("arr_i32", b.GGUF_I32, [1, -2, 3]),
        b.g_kv("nested", b.GGUF_ARR, struct.pack("<IQ", b.GGUF_ARR, 2) + struct.pack("<IQ", b.GGUF_U32, 1) +
               struct.pack("<I", 5) + struct.pack("<IQ", b.GGUF_U32, 0)),
        b.g_kv_u32("general.alignment", 64),
    ]
    # ggml block types: F16 (type 1), Q8_0 (8: fp16 scale + 32 int8), Q4_0 (2: fp16 scale + 16 nibble bytes),
    # Q4_1 (3: fp16 scale, fp16 min, 16 bytes), BF16 (30).
    q8 = struct.pack("<e", 0.25) + bytes(range(32))
    q4 = struct.pack("<e", 0.5) + bytes(range(16))
    q41 = struct.pack("<ee", 0.5, -1.0) + bytes(range(16))
    typed = [("f16", [4], 1, struct.pack("<4e", 1, 2, 3, 4)), ("q8", [32], 8, q8), ("q4", [32], 2, q4),
             ("q41", [32], 3, q41), ("bf16", [2], 30, b"\x80\x3f\x00\xc0"), ("f32", [2, 2], 0, b.f32_bytes([1] * 4))]
    return {
        "seed-every-type": EVEN + b.gguf_file(every_type, typed, alignment=64),
        "seed-tiny-llama": EVEN + b.gguf_file(kvs, tensors),
        "seed-tiny-llama-model": ODD + b.gguf_file(kvs, tensors),
        "seed-v2": EVEN + b.gguf_file(kvs[:3], tensors[:2], version=2),
    }


def settings_seeds():
    return {
        "seed-full": '{"bits": 2, "group": 64, "rank": 16, "init": "cloq", "split": "sqrt"}',
        "seed-all-keys": json.dumps({"bits": 3, "group": -1, "sym": True, "quantizer": "rtn", "magr": True,
                                     "damp": 0.02, "blocksize": 32, "act_order": True, "static_groups": True,
                                     "rank": 0, "init": "loftq", "split": "u-vs", "loftq_iters": 1,
                                     "loftq_quant": "nf", "lora_alpha": 32}),
        "seed-empty": "{}",
    }


def config_seeds():
    real = open(os.path.join(b.SHARED, "models", "stories260K", "config.json"), "rb").read()
    return {
        "seed-stories260K": real,
        "seed-tiny": b.config_text(),
        "seed-mistral": b.config_text(architectures=["MistralForCausalLM"], model_type="mistral"),
        "seed-qwen2": b.config_text(architectures=["Qwen2ForCausalLM"], model_type="qwen2", attention_bias=True),
        "seed-head-dim": b.config_text(head_dim=4, tie_word_embeddings=False),
    }


def spm_seeds():
    real = open(os.path.join(b.SHARED, "models", "stories260K", "tokenizer.model"), "rb").read()
    return {"seed-tok512": real, "seed-tiny": b.tiny_spm()}


def bpe_seeds():
    return {"seed-tiny": b.tiny_bpe_json(), "seed-no-prefix": b.tiny_bpe_json(
        pre_tokenizer={"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "\\p{L}+"}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]})}


JSON_TOKENS = ['{', '}', '[', ']', ':', ',', '"', 'true', 'false', 'null', '-1', '0', '1e309', '-0.0',
               '4294967298', '18446744073709551615', '"\\u0000"', '"\\ud800"', '"\\u2581"', '\u2581']
SETTINGS_KEYS = ["bits", "group", "sym", "quantizer", "gptq", "rtn", "magr", "damp", "blocksize", "act_order",
                 "static_groups", "rank", "init", "cloq", "loftq", "zero", "svd", "eora", "split", "sqrt", "u-vs",
                 "loftq_iters", "loftq_quant", "nf", "int", "lora_alpha", "layers", "global", "overrides"]
CONFIG_KEYS = ["architectures", "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "model_type", "llama",
               "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
               "head_dim", "vocab_size", "rms_norm_eps", "rope_theta", "tie_word_embeddings",
               "max_position_embeddings", "attention_bias", "bos_token_id", "eos_token_id", "rope_scaling"]
BPE_KEYS = ["model", "type", "BPE", "vocab", "merges", "added_tokens", "pre_tokenizer", "ByteLevel", "Sequence",
            "Split", "Regex", "pattern", "special", "content", "id", "decoder", "normalizer", "unk_token",
            "byte_fallback", "ignore_merges", "add_prefix_space", "use_regex", "<|endoftext|>", "\u0120"]
SAFETENSORS_KEYS = ["dtype", "shape", "data_offsets", "__metadata__", "F32", "F16", "BF16", "F64", "I8", "I16",
                    "I32", "I64", "U8", "U16", "U32", "U64", "BOOL", "F8_E4M3", "F8_E5M2", "F4", "weight_map",
                    "metadata", "total_size", "model-00001-of-00001.safetensors"]


def dict_lines(tokens, quoted_keys=()):
    """libFuzzer dictionary entries: printable ASCII as is, everything else (and quote, backslash) as \\xNN.
    Tokens whose characters are all below 256 are raw bytes ("\\x93NUMPY"); others are UTF-8 text ("\\u2581")."""
    def esc(t):
        data = t.encode("latin-1") if all(ord(ch) < 256 for ch in t) else t.encode("utf-8")
        return "".join(chr(c) if 32 <= c < 127 and c not in (34, 92) else "\\x%02X" % c for c in data)
    return "".join('"%s"\n' % esc(t) for t in list(tokens) + ['"%s"' % k for k in quoted_keys])


PROFILE_KEYS = SETTINGS_KEYS + ["format", "cloq-profile", "version", "match", "skip", "mlp\\.down_proj",
                                "(a*)*", "[", "\\", "(?:", "{1000}"]

DICTS = {
    "profile": dict_lines(JSON_TOKENS, PROFILE_KEYS),
    "settings_json": dict_lines(JSON_TOKENS, SETTINGS_KEYS),
    "model_config": dict_lines(JSON_TOKENS, CONFIG_KEYS),
    "bpe": dict_lines(JSON_TOKENS, BPE_KEYS),
    "safetensors": dict_lines(JSON_TOKENS, SAFETENSORS_KEYS),
    "npy": dict_lines(["\x93NUMPY", "{'descr': ", "'fortran_order': ", "'shape': ", "False", "True", "(", ")",
                       ",", "<f4", "<f8", "<f2", "<i4", "<i8", "|u1", "|b1", ">f4", "<c8", "|O", "\x01\x00",
                       "\x02\x00", "\x03\x00"]),
    "gguf": dict_lines(["GGUF", "\x03\x00\x00\x00", "\x02\x00\x00\x00", "general.architecture",
                        "general.alignment", "llama", "qwen2", "llama.block_count", "llama.embedding_length",
                        "llama.feed_forward_length", "llama.attention.head_count", "llama.attention.head_count_kv",
                        "llama.context_length", "llama.rope.freq_base", "llama.attention.layer_norm_rms_epsilon",
                        "tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.scores",
                        "tokenizer.ggml.token_type", "tokenizer.ggml.merges", "gpt2", "token_embd.weight",
                        "blk.0.attn_q.weight", "output.weight", "output_norm.weight",
                        "\xff\xff\xff\xff\xff\xff\xff\xff"]),
    "spm": dict_lines(["\x0a", "\x12", "\x1a", "\x15", "\x18\x01", "\x18\x06", "\u2581",
                       "<unk>", "<s>", "</s>", "<0x0A>", "\xff\xff\xff\xff\x0f"]),
}


def profile_seeds():
    def override(pattern):
        return json.dumps({"format": "cloq-profile", "version": 1, "global": {},
                           "overrides": [{"match": pattern, "bits": 3}]})
    return {
        # Findings (fixed in core/src/settings/profile.cpp): nested groups overflowed std::regex's recursive compiler;
        # nested stars backtracked exponentially on module names; counted repeats multiply NFA states.
        "regress-nested-groups": override("(" * 10000 + "a" + ")" * 10000),
        "regress-backtracking": override("(.*)*(.*)*(.*)*(.*)*X"),
        "regress-counted-repeats": override("x{1000}{1000}"),
        "seed-full": json.dumps({"format": "cloq-profile", "version": 1,
                                 "global": {"bits": 2, "group": 64, "rank": 64, "init": "cloq"},
                                 "overrides": [{"match": "mlp\\.down_proj", "bits": 3},
                                               {"match": "layers\\.[01]\\.", "rank": 128},
                                               {"match": "lm_head", "skip": True}]}),
        "seed-minimal": json.dumps({"format": "cloq-profile", "version": 1, "global": {}}),
    }


SEEDS = {"profile": profile_seeds, "safetensors": safetensors_seeds, "npy": npy_seeds, "gguf": gguf_seeds, "settings_json": settings_seeds,
         "model_config": config_seeds, "spm": spm_seeds, "bpe": bpe_seeds}


def wanted():
    out = {os.path.join("..", "dict", t + ".dict"): ("# libFuzzer dictionary for fuzz_%s, written by "
                                                    "tests/fuzz/make_corpus.py\n" % t + d).encode()
           for t, d in DICTS.items()}
    for target, fn in SEEDS.items():
        for name, data in fn().items():
            out[os.path.join(target, name)] = data.encode("utf-8") if isinstance(data, str) else data
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    root = os.path.join(HERE, "corpus")
    files = wanted()
    existing = {os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "*", "seed-*"))}
    existing |= {os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "*", "regress-*"))}
    existing |= {os.path.relpath(p, root) for p in glob.glob(os.path.join(HERE, "dict", "*.dict"))}
    if args.check:
        stale = sorted((existing - set(files)) | {k for k, v in files.items()
                                                 if not os.path.exists(os.path.join(root, k))
                                                 or open(os.path.join(root, k), "rb").read() != v})
        if stale:
            sys.exit("make_corpus: seed corpus is stale (re-run tests/fuzz/make_corpus.py): " + ", ".join(stale))
        print("make_corpus: seed corpus is up to date")
        return
    for rel in existing - set(files):
        os.unlink(os.path.join(root, rel))
    for rel, data in files.items():
        os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
        with open(os.path.join(root, rel), "wb") as f:
            f.write(data)
    print("make_corpus: %d seeds in %s" % (len(files), root))


if __name__ == "__main__":
    main()
