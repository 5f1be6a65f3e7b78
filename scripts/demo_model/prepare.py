"""Corpus, tokenizer, token arrays and model config for the demo model.

Corpus: every `.py` file of the CPython 3.11 standard library (PSF licence), minus `test/`,
`idlelib/`, `lib2to3/tests/` and `site-packages/`, and minus generated data that is not code one
would write: the gencodec codec tables, pydoc's topic dump and the build-configuration modules.
A file is held out for evaluation when the SHA-1 of its relative path is 0 mod 50 (about 2% of
files), so the split does not depend on listing order or on the seed.

Output folder: `hf/` (tokenizer + `config.json`), `train.bin` / `val.bin` (uint16 token ids, each
file followed by `<|eos|>`), `corpus.tsv` (split, bytes, tokens, path per file) and `meta.json`.

    python -m scripts.demo_model.prepare --out .data
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import sysconfig
from pathlib import Path

import numpy as np

STDLIB = Path(sysconfig.get_paths()["stdlib"])  # this interpreter's Lib folder (the corpus is CPython 3.11's)
SKIP_PREFIXES = ("test/", "idlelib/", "lib2to3/tests/", "site-packages/", "pydoc_data/",
                 "config-3.11-")
SKIP_NAMES = ("_sysconfigdata_",)
HELD_OUT_MOD = 50
VOCAB = 4096

# A gpt-oss layout scaled down to ~17M parameters: alternating sliding/full attention, learned
# sinks, 4 experts with top-2 routing. Plain RoPE: the model is trained at its full context.
MODEL = dict(hidden_size=384, intermediate_size=384, num_hidden_layers=6, num_attention_heads=8,
             num_key_value_heads=2, head_dim=64, num_local_experts=4, num_experts_per_tok=2,
             sliding_window=128, max_position_embeddings=2048)
ROPE = {"rope_type": "default", "rope_theta": 10000.0}


def select_files(root: Path) -> list[tuple[str, str]]:
    """(relative path, split) for every file that goes into the corpus, sorted by path."""
    out = []
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(root).as_posix()
        if rel.startswith(SKIP_PREFIXES) or p.name.startswith(SKIP_NAMES):
            continue
        if "gencodec.py" in p.read_text(encoding="utf-8"):
            continue
        held = int(hashlib.sha1(rel.encode()).hexdigest(), 16) % HELD_OUT_MOD == 0
        out.append((rel, "val" if held else "train"))
    return out


def build_config(tok):
    from transformers import GptOssConfig
    n = MODEL["num_hidden_layers"]
    return GptOssConfig(layer_types=["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(n)],
                        rope_parameters=dict(ROPE), vocab_size=len(tok), tie_word_embeddings=False,
                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                        pad_token_id=tok.pad_token_id, **MODEL)


def prepare(root: Path, out: Path, vocab_size: int = VOCAB) -> dict:
    from triattn.openvino.tiny import train_tokenizer

    files = select_files(root)
    train_paths = [root / rel for rel, split in files if split == "train"]
    out.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer(vocab_size, out / "hf", files=train_paths)
    build_config(tok).save_pretrained(out / "hf")

    ids = {"train": [], "val": []}
    rows, totals = [], {s: {"files": 0, "bytes": 0, "tokens": 0} for s in ids}
    for rel, split in files:
        text = (root / rel).read_text(encoding="utf-8")
        enc = tok(text, add_special_tokens=False)["input_ids"]
        if tok.decode(enc) != text:  # byte-level BPE must round-trip exactly
            raise RuntimeError(f"tokenizer does not round-trip {rel}")
        ids[split].append(np.asarray(enc + [tok.eos_token_id], np.uint16))
        nbytes = len(text.encode("utf-8"))
        rows.append(f"{split}\t{nbytes}\t{len(enc) + 1}\t{rel}")
        t = totals[split]
        t["files"], t["bytes"], t["tokens"] = t["files"] + 1, t["bytes"] + nbytes, t["tokens"] + len(enc) + 1
    for split, parts in ids.items():
        np.concatenate(parts).tofile(out / f"{split}.bin")
    (out / "corpus.tsv").write_text("split\tbytes\ttokens\tpath\n" + "\n".join(rows) + "\n")
    meta = {"source": f"CPython {root.name[6:]} standard library ({root})",
            "licence": "Python Software Foundation License Version 2",
            "rule": {"glob": "**/*.py", "skip_prefixes": list(SKIP_PREFIXES), "skip_names": list(SKIP_NAMES),
                     "skip_generated": "files mentioning gencodec.py",
                     "held_out": f"sha1(relative path) % {HELD_OUT_MOD} == 0"},
            "vocab_size": len(tok), "dtype": "uint16", "eos_token_id": tok.eos_token_id, "splits": totals}
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stdlib", type=Path, default=STDLIB, help="CPython 3.11 Lib folder")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--vocab", type=int, default=VOCAB)
    args = ap.parse_args(argv)
    if not args.stdlib.is_dir():
        sys.exit(f"standard library folder not found: {args.stdlib}")
    meta = prepare(args.stdlib, args.out, args.vocab)
    print(json.dumps(meta["splits"], indent=1))


if __name__ == "__main__":
    main()
