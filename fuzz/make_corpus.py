#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/: tiny valid inputs of every format, so the
fuzzers start from inputs that pass the first checks. GGUF seeds come from the project's own
writer (`lingualinked convert` of a tiny llama2.c checkpoint), envelopes from the wire schema
(`protoc --encode`). Usage: fuzz/make_corpus.py BUILD_DIR/lingualinked"""
import os
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def put(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    with open(os.path.join(CORPUS, target, name), "wb") as f:
        f.write(data)


# --- llama2.c: tokenizer.bin and a legacy checkpoint of the smallest valid shape ------------
TOKENS = [b"<unk>", b"\n<s>\n", b"\n</s>\n", b"<0x0A>", b" ", b"a", b" a", b"ab"]


def tokenizer_bin(tokens):
    out = struct.pack("<i", max(len(t) for t in tokens))
    for i, t in enumerate(tokens):
        out += struct.pack("<fi", -float(i), len(t)) + t
    return out


def checkpoint_bin(dim, hidden, layers, heads, kv_heads, vocab, seq_len, shared=True):
    head = dim // heads
    kv = dim * kv_heads // heads
    n = vocab * dim + layers * (dim + 2 * dim * dim + 2 * kv * dim + dim + 3 * hidden * dim) + dim + seq_len * head
    if not shared:
        n += vocab * dim
    header = struct.pack("<7i", dim, hidden, layers, heads, kv_heads, vocab if shared else -vocab, seq_len)
    return header + b"".join(struct.pack("<f", ((i * 37) % 17 - 8) / 16.0) for i in range(n))


def import_seed(tokenizer, checkpoint):
    return struct.pack("<H", len(tokenizer)) + tokenizer + checkpoint


# --- envelopes in the wire_fuzz layout --------------------------------------------------------
# FuzzedDataProvider takes integers from the end of the input and byte strings from the front:
# the parts come first, then (read backwards) the part count and each part's length, then the
# step limits and logits wire_fuzz draws.
def encode_envelope(text):
    proto_dir = os.path.join(ROOT, "src", "net")
    return subprocess.run(["protoc", "-I", proto_dir, "--encode=ll.wire.Envelope", "wire.proto"],
                          input=text.encode(), capture_output=True, check=True).stdout


def wire_seed(parts, tail=b"\x10" * 32):
    front = b"".join(parts)
    counts = bytes([len(parts)])
    for p in parts:
        counts += bytes([len(p) >> 8, len(p) & 0xFF])
    return front + tail + counts[::-1]


def main():
    cli = sys.argv[1]
    tok = tokenizer_bin(TOKENS)
    small = checkpoint_bin(4, 8, 1, 2, 2, len(TOKENS), 4)
    grouped = checkpoint_bin(8, 8, 2, 4, 2, len(TOKENS), 2, shared=False)
    put("llama2c_import_fuzz", "shared_classifier", import_seed(tok, small))
    put("llama2c_import_fuzz", "grouped_query_own_classifier", import_seed(tok, grouped))
    put("llama2c_import_fuzz", "tokenizer_only", import_seed(tok, b""))

    with tempfile.TemporaryDirectory() as tmp:
        for name, ckpt in (("shared_classifier", small), ("grouped_query_own_classifier", grouped)):
            paths = [os.path.join(tmp, n) for n in ("tok.bin", name + ".bin", name + ".gguf")]
            for path, data in zip(paths, (tok, ckpt)):
                with open(path, "wb") as f:
                    f.write(data)
            subprocess.run([cli, "convert", paths[1], "--tokenizer", paths[0], "-o", paths[2]], check=True,
                           capture_output=True)
            with open(paths[2], "rb") as f:
                put("gguf_fuzz", name + ".gguf", f.read())

    hello = encode_envelope('version: 1 request_id: 7 hello { client: "head" peer_keys: "k" }')
    step = encode_envelope("version: 1 step { session: 1 sequence: 2 position: 0 n_tokens: 2 tokens: 1 tokens: 3 "
                           "sampler { temp: 0.8 top_k: 40 top_p: 0.95 min_p: 0.05 repeat_penalty: 1.1 "
                           "repeat_last_n: 64 seed: 42 } }")
    hidden_step = encode_envelope("version: 1 step { session: 1 sequence: 2 position: 3 n_tokens: 1 tokens: 5 "
                                  "hidden_bytes: 16 timings { stage: 0 compute_us: 10 } end_sequence: true }")
    shard = encode_envelope('version: 1 shard_data { shard_hash: "ab" total_bytes: 8 offset: 0 chunk_bytes: 8 }')
    ping = encode_envelope("version: 1 ping { payload_bytes: 4 }")
    put("wire_fuzz", "hello", wire_seed([hello]))
    put("wire_fuzz", "step_tokens", wire_seed([step]))
    put("wire_fuzz", "step_hidden", wire_seed([hidden_step, b"\0" * 16]))
    put("wire_fuzz", "shard_chunk", wire_seed([shard, b"chunk..."]))
    put("wire_fuzz", "ping", wire_seed([ping, b"ping"]))
    reshape = encode_envelope('version: 1 reshape { session: 1 model_path: "m.gguf" unit_begin: 1 unit_end: 3 n_ctx: 64 '
                              'next_endpoint: "tcp://127.0.0.1:1" }')
    send_kv = encode_envelope('version: 1 send_kv { session: 1 unit_begin: 1 unit_end: 2 to_endpoint: "tcp://127.0.0.1:1" }')
    kv_data = encode_envelope("version: 1 kv_data { session: 1 sequence: 2 unit: 1 length: 1 bytes: 8 }")
    kv_last = encode_envelope("version: 1 kv_data { session: 1 last: true units_sent: 1 }")
    probe = encode_envelope("version: 1 speed_probe { repetitions: 5 }")
    put("wire_fuzz", "reshape", wire_seed([reshape]))
    put("wire_fuzz", "send_kv", wire_seed([send_kv]))
    put("wire_fuzz", "kv_data", wire_seed([kv_data, b"\0" * 8]))
    put("wire_fuzz", "kv_data_last", wire_seed([kv_last]))
    put("wire_fuzz", "speed_probe", wire_seed([probe]))

    # First byte: vocabulary (0 stories260K, 1 Llama 2, 2 Phi-3) + 3 to add BOS.
    texts = [b"Once upon a time, there was a little girl.", b"  leading spaces\n\ttabs\r\n",
             "héllo wörld ✓ 日本語 🙂".encode(), b"<s></s><unk><|endoftext|><|user|>", b"\xff\xfe\xc3(\xe2\x82"]
    for vocab in range(3):
        for i, text in enumerate(texts):
            put("tokenizer_fuzz", f"vocab{vocab}_text{i}", bytes([vocab + 3 * (i % 2)]) + text)

    # FuzzedDataProvider maps bytes to settings in its own way: these are just varied starts.
    put("sampler_fuzz", "small_values", bytes(range(64)))
    put("sampler_fuzz", "large_values", bytes(range(255, 127, -1)))

if __name__ == "__main__":
    main()
