#!/usr/bin/env python3
"""Generates the hostile-input corpus tests/data/bad/ (issue 8): one folder per case plus cases.json, the manifest
that tests/core/test_hostile_inputs.cpp runs. Every file is produced here from a description, never hand-edited;
re-run this script after changing it and commit its output together with it:

    python3 tests/data/make_bad_inputs.py            # rewrites tests/data/bad/
    python3 tests/data/make_bad_inputs.py --check    # exits 1 if tests/data/bad/ differs from what it would write

Each case names
  * `parser`: the reader that must refuse the file directly with a cloq::Error naming it (kinds understood by the
    test: safetensors, weights, model, npy, gguf, gguf_model, spm, bpe, config, settings, profile), or null;
  * `cli`: a `cloq` command line run in-process ({case} = this case's folder, {out} = a fresh output path,
    {shared} = the shared data folder), with the `exit` code expected and `messages`, substrings the error output
    must contain. Exit 0 cases are controls: the valid inputs the hostile ones are derived from, which must work.
The test also checks that no input file changed (hash before and after) and that no output appeared at {out}
after a failed run.

Pure Python (struct, json): no NumPy, so it runs wherever the build does. The same builders write the seed
corpora of the fuzzers (tests/fuzz/make_corpus.py imports this module).
"""
import argparse
import filecmp
import hashlib
import io
import json
import math
import os
import shutil
import struct
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
SHARED = os.environ.get("CLOQ_SHARED_DIR", os.path.join(os.path.dirname(SRC), "shared"))

# ----------------------------------------------------------------------------------------------------------------
# A tiny Llama (1 layer, hidden 8, GQA 2:1, vocab 16, tied embeddings): ~3 KB of float32, so each case is small.
TINY_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 8,
    "intermediate_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "vocab_size": 16,
    "max_position_embeddings": 64,
    "rms_norm_eps": 1e-05,
    "rope_theta": 10000.0,
    "hidden_act": "silu",
    "tie_word_embeddings": True,
    "bos_token_id": 1,
    "eos_token_id": 2,
}
H, I, NH, NKV, V = 8, 16, 2, 1, 16
HD = H // NH


def tiny_shapes():
    shapes = [("model.embed_tokens.weight", [V, H])]
    p = "model.layers.0."
    shapes += [
        (p + "input_layernorm.weight", [H]),
        (p + "self_attn.q_proj.weight", [NH * HD, H]),
        (p + "self_attn.k_proj.weight", [NKV * HD, H]),
        (p + "self_attn.v_proj.weight", [NKV * HD, H]),
        (p + "self_attn.o_proj.weight", [H, NH * HD]),
        (p + "post_attention_layernorm.weight", [H]),
        (p + "mlp.gate_proj.weight", [I, H]),
        (p + "mlp.up_proj.weight", [I, H]),
        (p + "mlp.down_proj.weight", [H, I]),
        ("model.norm.weight", [H]),
    ]
    return shapes


class Lcg:
    """Deterministic numbers without NumPy (64-bit LCG, Knuth's MMIX constants)."""

    def __init__(self, seed):
        self.s = seed & 0xFFFFFFFFFFFFFFFF

    def uniform(self):
        self.s = (6364136223846793005 * self.s + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        return ((self.s >> 11) / float(1 << 53)) * 2.0 - 1.0

    def bytes(self, n):
        out = bytearray()
        for _ in range(n):
            self.s = (6364136223846793005 * self.s + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
            out.append(self.s >> 56)
        return bytes(out)


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def f32_bytes(values):
    return struct.pack("<%df" % len(values), *values)


def tiny_tensors(seed=1, poison=None):
    """[(name, dtype, shape, bytes)] for the tiny model; norms are 1, matrices small random values.
    poison=(name, value) writes `value` (NaN/Inf) into the first element of that tensor."""
    rng = Lcg(seed)
    out = []
    for name, shape in tiny_shapes():
        n = numel(shape)
        vals = [1.0] * n if name.endswith("norm.weight") else [0.2 * rng.uniform() for _ in range(n)]
        if poison and poison[0] == name:
            vals[0] = poison[1]
        out.append((name, "F32", shape, f32_bytes(vals)))
    return out


# ----------------------------------------------------------------------------------------------------------------
# safetensors
def st_header_dict(tensors, metadata=None):
    header, off = {}, 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
    return header


def st_file(tensors, metadata=None, header=None, header_text=None, pad=True):
    """A .safetensors file; `header` (dict) or `header_text` (raw) replace the computed header."""
    if header_text is None:
        header_text = json.dumps(header if header is not None else st_header_dict(tensors, metadata),
                                 separators=(",", ":"))
    hb = header_text.encode("utf-8") if isinstance(header_text, str) else header_text
    if pad:  # the reference writer pads the header with spaces to a multiple of 8
        hb += b" " * ((8 - len(hb) % 8) % 8)
    return struct.pack("<Q", len(hb)) + hb + b"".join(t[3] for t in tensors)


def config_text(**changes):
    cfg = dict(TINY_CONFIG)
    for k, v in changes.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    return json.dumps(cfg, indent=2) + "\n"


# ----------------------------------------------------------------------------------------------------------------
# .npy
def npy_file(descr, shape, data, version=(1, 0), fortran=False, header_text=None, magic=b"\x93NUMPY"):
    if header_text is None:
        shape_txt = "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
        header_text = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape_txt)
    hb = header_text.encode("latin-1") if isinstance(header_text, str) else header_text
    len_size = 2 if version[0] == 1 else 4
    pre = len(magic) + 2 + len_size
    total = pre + len(hb) + 1
    hb += b" " * ((64 - total % 64) % 64) + b"\n"
    hl = struct.pack("<H", len(hb)) if len_size == 2 else struct.pack("<I", len(hb))
    return magic + bytes(version) + hl + hb + data


def matrix(rows, cols, seed, scale=1.0):
    rng = Lcg(seed)
    return [[scale * rng.uniform() for _ in range(cols)] for _ in range(rows)]


def gram(x):
    """H = XᵀX for X [tokens, in]."""
    n = len(x[0])
    return [[sum(r[i] * r[j] for r in x) for j in range(n)] for i in range(n)]


def flat(m):
    return [v for row in m for v in row]


def npy_f32(m):
    return npy_file("<f4", [len(m), len(m[0])], f32_bytes(flat(m)))


LAYER_OUT, LAYER_IN = 8, 16
LAYER_ARGS = ["--bits", "2", "--group", "8", "--rank", "4", "--quantizer", "rtn"]


def layer_inputs(seed=3):
    w = matrix(LAYER_OUT, LAYER_IN, seed, 0.1)
    x = matrix(64, LAYER_IN, seed + 1)
    return w, gram(x)


# ----------------------------------------------------------------------------------------------------------------
# GGUF (spec: ggml docs/gguf.md)
GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, GGUF_STR, GGUF_ARR, GGUF_U64 = 4, 5, 6, 7, 8, 9, 10


def g_str(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def g_kv(key, vtype, payload):
    return g_str(key) + struct.pack("<I", vtype) + payload


def g_kv_u32(key, v):
    return g_kv(key, GGUF_U32, struct.pack("<I", v))


def g_kv_f32(key, v):
    return g_kv(key, GGUF_F32, struct.pack("<f", v))


def g_kv_str(key, v):
    return g_kv(key, GGUF_STR, g_str(v))


def g_kv_arr(key, elem_type, items):
    if elem_type == GGUF_STR:
        body = b"".join(g_str(x) for x in items)
    elif elem_type == GGUF_F32:
        body = b"".join(struct.pack("<f", x) for x in items)
    else:
        body = b"".join(struct.pack("<i", x) for x in items)
    return g_kv(key, GGUF_ARR, struct.pack("<IQ", elem_type, len(items)) + body)


def gguf_file(kvs, tensors, version=3, alignment=32, offsets=None, magic=b"GGUF", n_tensors=None, n_kv=None):
    """tensors: [(name, ne (GGUF order), ggml type, data bytes)]; offsets overrides the recorded data offsets."""
    out = magic + struct.pack("<IQQ", version, len(tensors) if n_tensors is None else n_tensors,
                              len(kvs) if n_kv is None else n_kv)
    out += b"".join(kvs)
    off, recorded, datas = 0, [], []
    for name, ne, typ, data in tensors:
        recorded.append(off)
        datas.append((off, data))
        off += len(data)
        off += (alignment - off % alignment) % alignment
    if offsets is not None:
        recorded = offsets
    for (name, ne, typ, data), o in zip(tensors, recorded):
        out += g_str(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        out += struct.pack("<IQ", typ, o)
    out += b"\0" * ((alignment - len(out) % alignment) % alignment)
    blob = bytearray(off)
    for o, data in datas:
        blob[o:o + len(data)] = data
    return out + bytes(blob)


GGML_F32 = 0


def tiny_gguf_parts(tokenizer=True):
    kvs = [
        g_kv_str("general.architecture", "llama"),
        g_kv_str("general.name", "tiny"),
        g_kv_u32("llama.block_count", 1),
        g_kv_u32("llama.context_length", 64),
        g_kv_u32("llama.embedding_length", H),
        g_kv_u32("llama.feed_forward_length", I),
        g_kv_u32("llama.attention.head_count", NH),
        g_kv_u32("llama.attention.head_count_kv", NKV),
        g_kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5),
        g_kv_f32("llama.rope.freq_base", 10000.0),
    ]
    if tokenizer:
        # No byte pieces (a vocabulary with byte fallback needs all 256 of them); 16 pieces = the embedding rows.
        pieces = ["<unk>", "<s>", "</s>"] + \
                 ["\u2581", "a", "b", "c", "\u2581a", "ab", "bc", "\u2581ab", "\u2581abc", "ca", "cab", "cc", "ba"]
        kvs += [
            g_kv_str("tokenizer.ggml.model", "llama"),
            g_kv_arr("tokenizer.ggml.tokens", GGUF_STR, pieces),
            g_kv_arr("tokenizer.ggml.scores", GGUF_F32, [0.0] * 3 + [-float(i) for i in range(len(pieces) - 3)]),
            g_kv_arr("tokenizer.ggml.token_type", GGUF_I32, [2, 3, 3] + [1] * (len(pieces) - 3)),
            g_kv_u32("tokenizer.ggml.bos_token_id", 1),
            g_kv_u32("tokenizer.ggml.eos_token_id", 2),
        ]
    gguf_names = {
        "model.embed_tokens.weight": "token_embd.weight", "model.layers.0.input_layernorm.weight": "blk.0.attn_norm.weight",
        "model.layers.0.self_attn.q_proj.weight": "blk.0.attn_q.weight",
        "model.layers.0.self_attn.k_proj.weight": "blk.0.attn_k.weight",
        "model.layers.0.self_attn.v_proj.weight": "blk.0.attn_v.weight",
        "model.layers.0.self_attn.o_proj.weight": "blk.0.attn_output.weight",
        "model.layers.0.post_attention_layernorm.weight": "blk.0.ffn_norm.weight",
        "model.layers.0.mlp.gate_proj.weight": "blk.0.ffn_gate.weight",
        "model.layers.0.mlp.up_proj.weight": "blk.0.ffn_up.weight",
        "model.layers.0.mlp.down_proj.weight": "blk.0.ffn_down.weight", "model.norm.weight": "output_norm.weight",
    }
    tensors = [(gguf_names[n], list(reversed(s)), GGML_F32, d) for n, _, s, d in tiny_tensors(seed=5)]
    return kvs, tensors


# ----------------------------------------------------------------------------------------------------------------
# SentencePiece .model (protobuf wire format) and HF tokenizer.json
def pb_varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def pb_field(num, wire, payload):
    key = pb_varint((num << 3) | wire)
    if wire == 2:
        return key + pb_varint(len(payload)) + payload
    return key + payload


def spm_model(pieces):
    """ModelProto with pieces [(text, score, type)] and a BPE trainer_spec."""
    out = b""
    for text, score, typ in pieces:
        sp = pb_field(1, 2, text.encode("utf-8")) + pb_field(2, 5, struct.pack("<f", score)) + \
             pb_field(3, 0, pb_varint(typ))
        out += pb_field(1, 2, sp)
    trainer = pb_field(3, 0, pb_varint(2))  # model_type BPE
    out += pb_field(2, 2, trainer)
    normalizer = pb_field(3, 0, pb_varint(1)) + pb_field(4, 0, pb_varint(0))  # add_dummy_prefix, no collapsing
    out += pb_field(3, 2, normalizer)
    return out


def tiny_spm():
    """16 pieces, as many as the tiny model's vocabulary."""
    pieces = [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3)]
    words = ["\u2581", "a", "b", "c", "\u2581a", "ab", "bc", "\u2581ab", "\u2581abc", "ca", "cab", "d", "e"]
    pieces += [(p, -float(i), 1) for i, p in enumerate(words)]
    return spm_model(pieces)


def tiny_bpe_json(**changes):
    vocab = {"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4, "\u0120": 5, "\u0120a": 6, "<|endoftext|>": 7}
    tok = {
        "version": "1.0",
        "added_tokens": [{"id": 7, "content": "<|endoftext|>", "special": True, "single_word": False,
                          "lstrip": False, "rstrip": False, "normalized": False}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "vocab": vocab, "merges": ["a b", "ab c", "\u0120 a"], "dropout": None,
                  "unk_token": None},
    }
    for k, v in changes.items():
        tok[k] = v
    return json.dumps(tok, ensure_ascii=False)


# ----------------------------------------------------------------------------------------------------------------
def nested(depth, open_="[", close="]"):
    return open_ * depth + close * depth


class Corpus:
    def __init__(self, root):
        self.root = root
        self.cases = []

    def case(self, name, files, parser=None, cli=None, exit=1, messages=(), note=""):
        folder = os.path.join(self.root, name)
        os.makedirs(folder, exist_ok=True)
        for rel, data in files.items():
            path = os.path.join(folder, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
        entry = {"name": name, "note": note, "parser": parser, "cli": cli, "exit": exit, "messages": list(messages)}
        self.cases.append(entry)

    def write_manifest(self):
        with open(os.path.join(self.root, "cases.json"), "w", encoding="utf-8") as f:
            json.dump({"generated_by": "tests/data/make_bad_inputs.py", "cases": self.cases}, f, indent=1,
                      ensure_ascii=False)
            f.write("\n")


def model_case(c, name, st=None, config=None, extra=None, **kw):
    files = {"config.json": config if config is not None else config_text(),
             "model.safetensors": st if st is not None else st_file(tiny_tensors())}
    files.update(extra or {})
    c.case(name, files, cli=kw.pop("cli", ["info", "--model", "{case}"]), **kw)


def safetensors_cases(c):
    good = tiny_tensors()
    hdr = st_header_dict(good)
    model_case(c, "model_good", exit=0, note="control: the tiny valid model every model case is derived from")

    def st_case(name, st, messages, note, parser="safetensors", **kw):
        model_case(c, name, st=st, parser={"kind": parser, "file": "model.safetensors", "messages": messages},
                   messages=messages, note=note, **kw)

    st_case("st_empty_file", b"", ["model.safetensors", "bytes"], "zero-length file")
    st_case("st_truncated_length", b"\x10\x00\x00", ["model.safetensors"], "shorter than the 8-byte length")
    full = st_file(good)
    st_case("st_truncated_data", full[: len(full) - 100], ["model.safetensors"], "data buffer cut short")
    st_case("st_header_past_end", struct.pack("<Q", 4096) + b'{"a":1}', ["model.safetensors", "header length"],
            "header length runs past the end of the file")
    st_case("st_header_over_100mb", struct.pack("<Q", 200 * 1000 * 1000) + b"{}" + b" " * 6,
            ["model.safetensors", "100 MB"], "declared header larger than the reference limit")
    st_case("st_header_huge_length", struct.pack("<Q", 2**64 - 1) + b"{}", ["model.safetensors", "header length"],
            "header length 2^64-1: must not wrap around")
    st_case("st_header_not_json", st_file(good, header_text="{this is not json"), ["model.safetensors", "JSON"],
            "garbage header")
    st_case("st_header_not_object", st_file([], header_text="[1,2,3]"), ["model.safetensors", "JSON object"],
            "header is an array")
    st_case("st_header_non_utf8", st_file(good, header_text=b'{"model.\xff\xfe":{"dtype":"F32","shape":[1],'
                                                            b'"data_offsets":[0,4]}}'),
            ["model.safetensors"], "tensor name that is not UTF-8")
    st_case("st_header_deeply_nested", st_file([], header_text='{"__metadata__":' + nested(50000) + "}"),
            ["model.safetensors"], "50000 nested arrays in the header (stack exhaustion)")
    bad = json.loads(json.dumps(hdr))
    bad["model.norm.weight"]["data_offsets"] = [hdr["model.norm.weight"]["data_offsets"][0], 10**9]
    st_case("st_offsets_out_of_bounds", st_file(good, header=bad), ["model.safetensors"],
            "last tensor ends far past the buffer")
    bad = json.loads(json.dumps(hdr))
    k = "model.layers.0.self_attn.k_proj.weight"
    b0, e0 = bad[k]["data_offsets"]
    bad[k]["data_offsets"] = [b0 - 16, e0 - 16]
    st_case("st_offsets_overlap", st_file(good, header=bad), ["model.safetensors", "overlaps"],
            "k_proj starts inside q_proj")
    bad = json.loads(json.dumps(hdr))
    n = "model.norm.weight"
    b0, e0 = bad[n]["data_offsets"]
    bad[n]["data_offsets"] = [b0 + 8, e0 + 8]
    st_case("st_offsets_gap", st_file(good + [("pad", "F32", [2], b"\0" * 8)], header=bad),
            ["model.safetensors", "gap"], "8 unused bytes before the last tensor")
    bad = json.loads(json.dumps(hdr))
    bad[n]["data_offsets"] = [e0, b0]
    st_case("st_offsets_reversed", st_file(good, header=bad), ["model.safetensors", "end before"],
            "data_offsets [end, begin]")
    bad = json.loads(json.dumps(hdr))
    bad[n]["data_offsets"] = [-4, e0]
    st_case("st_offsets_negative", st_file(good, header=bad), ["model.safetensors", "data_offsets"],
            "negative offset")
    st_case("st_trailing_bytes", st_file(good) + b"\0" * 64, ["model.safetensors", "cover"],
            "64 bytes after the last tensor")
    bad = json.loads(json.dumps(hdr))
    bad[n]["dtype"] = "F16"
    st_case("st_dtype_size_mismatch", st_file(good, header=bad), ["model.safetensors", "F16"],
            "F16 [8] declared over 32 bytes")
    bad = json.loads(json.dumps(hdr))
    bad[n]["shape"] = [9]
    st_case("st_shape_size_mismatch", st_file(good, header=bad), ["model.safetensors", "model.norm.weight"],
            "shape [9] over the 32 bytes of 8 floats")
    bad = json.loads(json.dumps(hdr))
    bad[n]["dtype"] = "F33"
    st_case("st_unknown_dtype", st_file(good, header=bad), ["model.safetensors", "unknown dtype 'F33'"],
            "dtype that does not exist")
    bad = json.loads(json.dumps(hdr))
    bad[n]["shape"] = [2**40, 2**40]
    st_case("st_huge_shape_overflow", st_file(good, header=bad), ["model.safetensors", "overflows"],
            "2^80 elements: checked multiplication, no allocation")
    bad = json.loads(json.dumps(hdr))
    bad[n]["shape"] = [2**30, 2**30]
    st_case("st_huge_shape", st_file(good, header=bad), ["model.safetensors", "model.norm.weight"],
            "2^60 elements declared over 32 bytes (allocation bomb)")
    bad = json.loads(json.dumps(hdr))
    bad[n]["shape"] = [-1, 8]
    st_case("st_negative_shape", st_file(good, header=bad), ["model.safetensors", "shape"], "negative dimension")
    bad = json.loads(json.dumps(hdr))
    bad[n]["shape"] = [8.5]
    st_case("st_fractional_shape", st_file(good, header=bad), ["model.safetensors", "shape"], "shape [8.5]")
    text = json.dumps(hdr, separators=(",", ":"))
    dup = '"model.norm.weight":' + json.dumps(hdr["model.norm.weight"], separators=(",", ":"))
    st_case("st_duplicate_names", st_file(good, header_text=text[:-1] + "," + dup + "}"),
            ["model.safetensors", "twice"], "the same tensor name twice in the header")
    bad = json.loads(json.dumps(hdr))
    bad["__metadata__"] = {"format": 5}
    st_case("st_metadata_not_string", st_file(good, header=bad), ["model.safetensors", "__metadata__"],
            "non-string metadata value")
    st_case("st_nan_weight", st_file(tiny_tensors(poison=("model.layers.0.self_attn.q_proj.weight", math.nan))),
            ["model.safetensors", "NaN or Inf"], "NaN in q_proj: refused when the weights are loaded",
            parser="weights", cli=["info", "--model", "{case}", "--verify"])
    st_case("st_inf_weight", st_file(tiny_tensors(poison=("model.layers.0.mlp.down_proj.weight", math.inf))),
            ["model.safetensors", "NaN or Inf"], "Inf in down_proj", parser="weights",
            cli=["info", "--model", "{case}", "--verify"])


def config_cases(c):
    def cfg_case(name, text, messages, note):
        model_case(c, name, config=text, parser={"kind": "model", "file": ".", "messages": messages},
                   messages=messages, note=note)

    c.case("cfg_missing", {"model.safetensors": st_file(tiny_tensors())},
           parser={"kind": "model", "file": ".", "messages": ["config.json"]}, cli=["info", "--model", "{case}"],
           messages=["config.json"], note="no config.json in the folder")
    cfg_case("cfg_not_json", "{\"hidden_size\": 8,,}", ["config.json"], "syntax error")
    model_case(c, "cfg_non_utf8_raw", config=b'{"architectures": ["Llama\xc3\x28"], "model_type": "llama"}',
               parser={"kind": "model", "file": ".", "messages": ["config.json"]}, messages=["config.json"],
               note="invalid UTF-8 bytes (not latin-1 re-encoded)")
    cfg_case("cfg_deeply_nested", '{"architectures": ["LlamaForCausalLM"], "x": ' + nested(50000) + "}",
             ["config.json"], "50000 nested arrays (stack exhaustion)")
    cfg_case("cfg_zero_hidden", config_text(hidden_size=0), ["config.json", "hidden_size"], "hidden_size 0")
    cfg_case("cfg_negative_layers", config_text(num_hidden_layers=-1), ["config.json", "num_hidden_layers"],
             "negative layer count")
    cfg_case("cfg_heads_not_dividing", config_text(num_attention_heads=3), ["config.json"],
             "8 hidden units over 3 heads")
    cfg_case("cfg_kv_heads_not_dividing", config_text(num_key_value_heads=3, num_attention_heads=2),
             ["config.json"], "2 heads over 3 kv heads")
    cfg_case("cfg_zero_heads", config_text(num_attention_heads=0), ["config.json"], "no attention heads")
    cfg_case("cfg_wrong_type", config_text(hidden_size="8"), ["config.json", "hidden_size"],
             "a number given as a string")
    cfg_case("cfg_huge_hidden", config_text(hidden_size=2**62, intermediate_size=2**62), ["config.json"],
             "sizes of 2^62 (allocation bomb unless checked against the tensors)")
    cfg_case("cfg_unsupported_arch", config_text(architectures=["GPT2LMHeadModel"], model_type="gpt2"),
             ["config.json", "GPT2LMHeadModel"], "an architecture CLoQ does not support")
    cfg_case("cfg_vocab_mismatch", config_text(vocab_size=17), ["model.embed_tokens.weight"],
             "config says 17 tokens, the embedding has 16 rows")
    missing = [t for t in tiny_tensors() if t[0] != "model.layers.0.mlp.up_proj.weight"]
    model_case(c, "cfg_missing_tensor", st=st_file(missing),
               parser={"kind": "model", "file": ".", "messages": ["up_proj"]}, messages=["up_proj"],
               note="a tensor the config implies is absent")


def npy_cases(c):
    w, h = layer_inputs()
    good_w, good_h = npy_f32(w), npy_f32(h)
    cli = ["layer", "--weight", "{case}/W.npy", "--gram", "{case}/H.npy", "--out", "{out}"] + LAYER_ARGS

    def layer_case(name, wbytes, hbytes, messages, note, bad_file="W.npy", exit=1, parser=True):
        c.case(name, {"W.npy": wbytes, "H.npy": hbytes},
               parser={"kind": "npy", "file": bad_file, "messages": messages} if parser else None,
               cli=cli, exit=exit, messages=messages, note=note)

    layer_case("layer_good", good_w, good_h, [], "control: a valid layer solves", exit=0, parser=False)
    layer_case("npy_bad_magic", b"\x93NUMPX" + good_w[6:], good_h, ["W.npy"], "magic string wrong")
    layer_case("npy_empty", b"", good_h, ["W.npy"], "zero-length file")
    layer_case("npy_bad_version", npy_file("<f4", [LAYER_OUT, LAYER_IN], f32_bytes(flat(w)), version=(9, 0)),
               good_h, ["W.npy", "version"], "format version 9.0")
    layer_case("npy_header_len_past_end", good_w[:8] + struct.pack("<H", 60000) + good_w[10:80], good_h,
               ["W.npy"], "header length beyond the file")
    v3 = npy_file("<f4", [2], f32_bytes([1, 2]), version=(3, 0))
    layer_case("npy_header_len_huge", v3[:8] + struct.pack("<I", 0xFFFFFFF0) + v3[12:], good_h, ["W.npy"],
               "v3 header length 4 GiB")
    layer_case("npy_dict_garbage", npy_file("", [], f32_bytes(flat(w)), header_text="{'descr': '<f4', 'fortran_"),
               good_h, ["W.npy"], "truncated dict literal")
    layer_case("npy_dict_missing_shape",
               npy_file("", [], f32_bytes(flat(w)), header_text="{'descr': '<f4', 'fortran_order': False, }"),
               good_h, ["W.npy", "shape"], "no shape key")
    layer_case("npy_unsupported_dtype", npy_file("<c16", [LAYER_OUT, LAYER_IN], b"\0" * 16 * LAYER_OUT * LAYER_IN),
               good_h, ["W.npy", "c16"], "complex128")
    layer_case("npy_object_dtype", npy_file("|O", [2], b"\0" * 16), good_h, ["W.npy"], "pickled objects")
    layer_case("npy_big_endian", npy_file(">f4", [LAYER_OUT, LAYER_IN], struct.pack(">%df" % (LAYER_OUT * LAYER_IN),
                                                                                    *flat(w))),
               good_h, ["W.npy"], "big-endian floats")
    layer_case("npy_fortran_order", npy_file("<f4", [LAYER_OUT, LAYER_IN], f32_bytes(flat(w)), fortran=True),
               good_h, ["W.npy", "fortran"], "Fortran order")
    layer_case("npy_data_truncated", good_w[:-10], good_h, ["W.npy"], "last 10 bytes missing")
    layer_case("npy_data_trailing", good_w + b"\0" * 12, good_h, ["W.npy"], "12 bytes too many")
    layer_case("npy_huge_shape", npy_file("<f4", [2**31, 2**31, 2**31], b"\0" * 64), good_h, ["W.npy"],
               "2^93 elements: overflow, no allocation")
    layer_case("npy_negative_shape", npy_file("<f4", [-8, 16], b"\0" * 512), good_h, ["W.npy"], "negative dims")
    nan_w = [row[:] for row in w]
    nan_w[3][5] = math.nan
    layer_case("layer_nan_weight", npy_f32(nan_w), good_h, ["W.npy", "NaN"], "NaN in W", parser=False)
    inf_h = [row[:] for row in h]
    inf_h[0][0] = math.inf
    layer_case("layer_inf_gram", good_w, npy_f32(inf_h), ["H.npy"], "Inf in H", parser=False, bad_file="H.npy")
    layer_case("layer_gram_shape_mismatch", good_w, npy_f32(gram(matrix(64, LAYER_IN + 1, 9))), ["H.npy"],
               "H is 17x17 for a layer with 16 inputs", parser=False, bad_file="H.npy")
    layer_case("layer_gram_not_square", good_w, npy_f32(matrix(LAYER_IN, LAYER_IN + 2, 9)), ["H.npy"],
               "H is 16x18", parser=False, bad_file="H.npy")
    layer_case("layer_weight_1d", npy_file("<f4", [LAYER_IN], f32_bytes(w[0])), good_h, ["W.npy"],
               "W is a vector", parser=False)
    # Degenerate but legal calibration: the pseudo-inverse handles them (docs/design.md); they must solve, finitely.
    zero_h = [[0.0] * LAYER_IN for _ in range(LAYER_IN)]
    layer_case("layer_gram_all_zero", good_w, npy_f32(zero_h), [], "H = 0 (no calibration signal): must not "
               "produce NaN", exit=0, parser=False)
    x = matrix(3, LAYER_IN, 11)  # 3 tokens: rank(H) = 3 of 16
    layer_case("layer_gram_rank_deficient", good_w, npy_f32(gram(x)), [], "rank(H) = 3 < 16: pseudo-inverse",
               exit=0, parser=False)
    x = matrix(64, LAYER_IN, 12)
    for r in x:
        r[4] = 0.0
        r[9] = 0.0
    layer_case("layer_gram_dead_columns", good_w, npy_f32(gram(x)), [], "two dead input columns", exit=0,
               parser=False)


def gguf_cases(c):
    kvs, tensors = tiny_gguf_parts()
    good = gguf_file(kvs, tensors)

    def gg_case(name, data, messages, note, exit=1, parser="gguf"):
        c.case(name, {"model.gguf": data},
               parser={"kind": parser, "file": "model.gguf", "messages": messages} if parser else None,
               cli=["info", "--model", "{case}/model.gguf"], exit=exit, messages=messages, note=note)

    gg_case("gguf_good", good, [], "control: a valid tiny llama GGUF", exit=0, parser=None)
    gg_case("gguf_bad_magic", b"GGUX" + good[4:], ["model.gguf", "magic"], "magic GGUX")
    gg_case("gguf_empty", b"", ["model.gguf"], "zero-length file")
    gg_case("gguf_version_1", gguf_file(kvs, tensors, version=1), ["model.gguf", "version 1"], "GGUF v1")
    gg_case("gguf_version_99", gguf_file(kvs, tensors, version=99), ["model.gguf", "version 99"], "GGUF v99")
    gg_case("gguf_truncated", good[: len(good) // 3], ["model.gguf"], "cut at a third")
    gg_case("gguf_huge_tensor_count", gguf_file(kvs, tensors, n_tensors=2**63), ["model.gguf"],
            "2^63 tensors claimed")
    gg_case("gguf_huge_kv_count", gguf_file(kvs, tensors, n_kv=2**64 - 1), ["model.gguf"], "2^64-1 keys claimed")
    long_str = struct.pack("<Q", 2**62) + b"general.name"
    gg_case("gguf_string_past_end", b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + long_str, ["model.gguf", "string"],
            "a key whose length is 2^62")
    offs = [0] * len(tensors)
    gg_case("gguf_overlapping_tensors", gguf_file(kvs, tensors, offsets=offs), ["model.gguf"],
            "every tensor at offset 0")
    far = list(range(0, 32 * len(tensors), 32))
    far[-1] = 2**40
    gg_case("gguf_data_out_of_bounds", gguf_file(kvs, tensors, offsets=far), ["model.gguf"],
            "last tensor 1 TiB past the data")
    bad_t = [(n, ne, 99 if i == 2 else t, d) for i, (n, ne, t, d) in enumerate(tensors)]
    gg_case("gguf_unknown_tensor_type", gguf_file(kvs, bad_t), ["model.gguf", "99"], "ggml type 99")
    deep = g_kv("x", GGUF_ARR, struct.pack("<IQ", GGUF_ARR, 1) * 1000 + struct.pack("<IQ", GGUF_U32, 0))
    gg_case("gguf_nested_arrays", gguf_file([deep] + kvs, tensors), ["model.gguf", "nests"],
            "arrays nested 1000 deep")
    wrong = [g_kv_str("general.architecture", "gpt2")] + kvs[1:]
    gg_case("gguf_unsupported_arch", gguf_file(wrong, tensors), ["model.gguf", "gpt2"], "architecture gpt2",
            parser="gguf_model")
    zero_heads = [kv if not kv.startswith(g_str("llama.attention.head_count") + struct.pack("<I", GGUF_U32))
                  else g_kv_u32("llama.attention.head_count", 0) for kv in kvs]
    gg_case("gguf_zero_heads", gguf_file(zero_heads, tensors), ["model.gguf", "head_count"], "0 heads",
            parser="gguf_model")


def tokenizer_cases(c):
    base = {"config.json": config_text(), "model.safetensors": st_file(tiny_tensors())}

    def tok_case(name, file, data, kind, messages, note, exit=1):
        files = dict(base)
        files[file] = data
        c.case(name, files, parser={"kind": kind, "file": file, "messages": messages} if exit else None,
               cli=["info", "--model", "{case}"], exit=exit, messages=messages, note=note)

    tok_case("tok_spm_good", "tokenizer.model", tiny_spm(), "spm", [], "control: a valid tiny SentencePiece model",
             exit=0)
    tok_case("tok_spm_garbage", "tokenizer.model", Lcg(7).bytes(700), "spm", ["tokenizer.model"], "random bytes")
    tok_case("tok_spm_empty", "tokenizer.model", b"", "spm", ["tokenizer.model"], "zero-length file")
    real = open(os.path.join(SHARED, "models", "stories260K", "tokenizer.model"), "rb").read()
    tok_case("tok_spm_truncated", "tokenizer.model", real[: len(real) // 2 + 3], "spm", ["tokenizer.model"],
             "the real tok512 model cut in the middle of a piece")
    tok_case("tok_spm_lying_length", "tokenizer.model", b"\x0a" + pb_varint(2**62) + b"\x0a\x03abc",
             "spm", ["tokenizer.model"], "a piece message claiming 2^62 bytes")
    tok_case("tok_spm_varint_overflow", "tokenizer.model", b"\x0a" + b"\xff" * 11 + b"\x01", "spm",
             ["tokenizer.model"], "an 11-byte varint")
    tok_case("tok_spm_no_pieces", "tokenizer.model", spm_model([]), "spm", ["tokenizer.model"], "zero pieces")
    tok_case("tok_bpe_good", "tokenizer.json", tiny_bpe_json(), "bpe", [], "control: a valid tiny byte-level BPE",
             exit=0)
    tok_case("tok_bpe_not_json", "tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {", "bpe",
             ["tokenizer.json"], "cut-off JSON")
    tok_case("tok_bpe_garbage", "tokenizer.json", Lcg(8).bytes(500), "bpe", ["tokenizer.json"], "random bytes")
    tok_case("tok_bpe_deeply_nested", "tokenizer.json", '{"model": {"type": "BPE", "vocab": ' + nested(50000) + "}}",
             "bpe", ["tokenizer.json"], "50000 nested arrays as the vocabulary")
    tok_case("tok_bpe_wrong_type", "tokenizer.json", tiny_bpe_json(model={"type": "Unigram", "vocab": []}), "bpe",
             ["tokenizer.json", "Unigram"], "a Unigram model")
    tok_case("tok_bpe_merge_unknown", "tokenizer.json",
             tiny_bpe_json(model={"type": "BPE", "vocab": {"a": 0}, "merges": ["a zz"]}), "bpe",
             ["tokenizer.json"], "a merge of tokens not in the vocabulary")
    tok_case("tok_bpe_negative_id", "tokenizer.json",
             tiny_bpe_json(model={"type": "BPE", "vocab": {"a": -5, "b": 2**40}, "merges": []}), "bpe",
             ["tokenizer.json"], "ids -5 and 2^40")


def settings_cases(c):
    def st_case(name, text, messages, note):
        c.case(name, {"settings.json": text}, parser={"kind": "settings", "file": "settings.json",
                                                       "messages": messages}, cli=None, messages=messages, note=note)

    st_case("settings_not_object", "[2, 64]", ["settings.json", "object"], "an array")
    st_case("settings_unknown_key", '{"bitz": 2}', ["settings.json", "bitz"], "misspelt key")
    st_case("settings_bits_wrapping", '{"bits": 4294967298}', ["settings.json", "bits"],
            "2^32+2 must not wrap around to 2 bits")
    st_case("settings_group_zero", '{"group": 0}', ["settings.json", "group"], "group size 0")
    st_case("settings_group_below_minus_one", '{"group": -2}', ["settings.json", "group"], "group size -2")
    st_case("settings_rank_negative", '{"rank": -1}', ["settings.json", "rank"], "rank -1")
    st_case("settings_alpha_zero", '{"lora_alpha": 0}', ["settings.json", "alpha"], "LoRA alpha 0")
    st_case("settings_damp_negative", '{"damp": -0.5}', ["settings.json", "damp"], "negative dampening")
    st_case("settings_wrong_type", '{"act_order": "yes"}', ["settings.json", "act_order"], "string for a bool")


def profile_cases(c):
    def prof_case(name, doc, messages, note):
        text = doc if isinstance(doc, str) else json.dumps(doc)
        c.case(name, {"profile.json": text}, parser={"kind": "profile", "file": "profile.json", "messages": messages},
               cli=None, messages=messages, note=note)

    def override(pattern, **settings):
        o = {"match": pattern}
        o.update(settings or {"bits": 3})
        return {"format": "cloq-profile", "version": 1, "global": {"bits": 2}, "overrides": [o]}

    prof_case("profile_not_json", '{"format": "cloq-profile", "global": {', ["profile.json"], "cut-off JSON")
    prof_case("profile_deeply_nested", '{"format": "cloq-profile", "global": ' + nested(50000) + "}",
              ["profile.json"], "50000 nested arrays")
    prof_case("profile_bad_regex", override("layers.(["), ["profile.json", "regular expression"], "unbalanced regex")
    prof_case("profile_nested_groups", override("(" * 5000 + "q" + ")" * 5000), ["profile.json", "characters long"],
              "5000 nested groups (overflowed std::regex's recursive compiler)")
    prof_case("profile_bad_setting", override("q_proj", bits=4294967298), ["profile.json", "bits"],
              "an override's bits wrap around an int")
    prof_case("profile_unknown_key", override("q_proj", colour="red"), ["profile.json", "colour"], "unknown key")
    prof_case("profile_backreference", override("(q)\\1"), ["profile.json"],
              "back-references (exponential matching) are refused")


def generate(root):
    if os.path.exists(root):
        shutil.rmtree(root)
    os.makedirs(root)
    c = Corpus(root)
    safetensors_cases(c)
    config_cases(c)
    npy_cases(c)
    gguf_cases(c)
    tokenizer_cases(c)
    settings_cases(c)
    profile_cases(c)
    c.write_manifest()
    return c


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed tests/data/bad/ instead")
    ap.add_argument("--out", default=os.path.join(HERE, "bad"))
    args = ap.parse_args()
    if not args.check:
        c = generate(args.out)
        print("make_bad_inputs: %d cases in %s" % (len(c.cases), args.out))
        return
    with tempfile.TemporaryDirectory() as tmp:
        generate(os.path.join(tmp, "bad"))
        cmp = filecmp.dircmp(os.path.join(tmp, "bad"), args.out)
        diffs = []

        def walk(d, rel=""):
            diffs.extend(os.path.join(rel, x) for x in d.left_only + d.right_only + d.diff_files)
            for name, sub in d.subdirs.items():
                walk(sub, os.path.join(rel, name))
        walk(cmp)
        if diffs:
            sys.exit("make_bad_inputs: tests/data/bad/ is stale (re-run the script): " + ", ".join(sorted(diffs)))
        print("make_bad_inputs: tests/data/bad/ is up to date")


if __name__ == "__main__":
    main()
