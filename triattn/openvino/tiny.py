"""Build small random-weight LLMs and export them to OpenVINO IR, fully offline.

Two presets per architecture: `tiny` (a few M parameters, for tests) and `bench` (~300M
parameters, for performance work); and for gpt-oss, `real-dims`: gpt-oss-20b's own widths (hidden
2,880, 64 query and 8 KV heads of 64, a 201,088-token vocabulary, YaRN, a 128-token sliding window
on alternate layers, sinks) with 4 layers and 4 experts, compressed with optimum-intel's recipe for
gpt-oss-20b (int4 experts, int8 attention, router and embeddings), so the graph instrumentation, the
logits path and scoring are exercised at the real sizes. The tokenizer is a byte-level BPE trained
on the shipped plain-text sample, so the whole build is deterministic for a seed and needs no model
hub.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from .export import export_to_openvino
from ..paths import ASSETS

SAMPLE_TEXT = ASSETS / "text" / "stdlib-sample.txt"

PRESETS = {
    ("llama", "tiny"): dict(hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                            num_attention_heads=4, num_key_value_heads=2, head_dim=16),
    ("llama", "bench"): dict(hidden_size=1024, intermediate_size=2816, num_hidden_layers=24,
                             num_attention_heads=16, num_key_value_heads=4, head_dim=64),
    # gpt-oss: sliding-window layers alternate with full layers; learned sinks; MoE.
    ("gpt-oss", "tiny"): dict(hidden_size=64, intermediate_size=64, num_hidden_layers=4,
                              num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                              num_local_experts=4, num_experts_per_tok=2, sliding_window=16),
    ("gpt-oss", "bench"): dict(hidden_size=768, intermediate_size=768, num_hidden_layers=20,
                               num_attention_heads=12, num_key_value_heads=4, head_dim=64,
                               num_local_experts=8, num_experts_per_tok=2, sliding_window=128),
    ("gpt-oss", "real-dims"): dict(hidden_size=2880, intermediate_size=2880, num_hidden_layers=4,
                                   num_attention_heads=64, num_key_value_heads=8, head_dim=64,
                                   num_local_experts=4, num_experts_per_tok=4, sliding_window=128),
}
VOCAB = {"tiny": 512, "bench": 4096, "real-dims": 4096}
VOCAB_SIZE = {"real-dims": 201088}  # the model's vocabulary when wider than the tokenizer's
MAX_POSITION = {"tiny": 4096, "bench": 32768, "real-dims": 131072}
# weight format, and the optimum-intel recipe to compress with (None: the format's generic one)
WEIGHTS = {"tiny": ("fp32", None), "bench": ("fp16", None), "real-dims": ("int4", "openai/gpt-oss-20b")}


def train_tokenizer(vocab_size: int, out_dir: Path, files=(SAMPLE_TEXT,)):
    """Byte-level BPE on `files` (default: the shipped sample); saved as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|bos|>", "<|eos|>", "<|pad|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train([str(f) for f in files], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|bos|>", eos_token="<|eos|>",
                                   pad_token="<|pad|>")
    fast.save_pretrained(out_dir)
    return fast


def pad_vocabulary(tok, size: int):
    """Widen a trained BPE tokenizer to `size` ids with plain vocabulary entries that no merge
    produces (byte-level strings of 4 symbols), so a model with a real-size vocabulary and
    embedding still has a tokenizer that decodes every id it can emit."""
    import json
    from tokenizers import Tokenizer, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    data = json.loads(tok.backend_tokenizer.to_str())
    vocab = data["model"]["vocab"]
    taken = set(vocab) | {t["content"] for t in data["added_tokens"]}
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    next_id = max([*vocab.values(), *(t["id"] for t in data["added_tokens"])]) + 1
    for a in alphabet:
        for b in alphabet:
            for c in alphabet[:8]:
                if next_id >= size:
                    break
                piece = "\u0120" + a + b + c
                if piece not in taken:
                    vocab[piece] = next_id
                    next_id += 1
    padded = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(data)),
                                     bos_token=tok.bos_token, eos_token=tok.eos_token, pad_token=tok.pad_token)
    if len(padded) != size:
        raise ValueError(f"the vocabulary could not be padded to {size} (got {len(padded)})")
    return padded


def build_config(arch: str, preset: str, vocab_size: int, tok):
    common = dict(vocab_size=vocab_size, max_position_embeddings=MAX_POSITION[preset],
                  bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                  pad_token_id=tok.pad_token_id, tie_word_embeddings=False)
    params = {**PRESETS[(arch, preset)], **common}
    if arch == "llama":
        from transformers import LlamaConfig
        return LlamaConfig(rope_theta=10000.0, **params)
    from transformers import GptOssConfig
    n = params["num_hidden_layers"]
    return GptOssConfig(layer_types=["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(n)],
                        rope_scaling={"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                                      "truncate": False, "original_max_position_embeddings": 4096},
                        rope_theta=150000.0, **params)


@contextlib.contextmanager
def _offline():
    """No hub access while building; the caller's environment is restored afterwards (a process
    that goes on to use the hub, or starts subprocesses, must not inherit offline mode)."""
    before = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = before


def make_tiny_model(out_dir: str | Path, arch: str = "gpt-oss", preset: str = "tiny", seed: int = 0,
                    keep_source: bool = False) -> Path:
    """Create `out_dir` holding an OpenVINO stateful LLM export plus its tokenizer.

    keep_source: also keep the transformers checkpoint (same weights) in `out_dir/pytorch`.
    """
    if (arch, preset) not in PRESETS:
        raise ValueError(f"unknown arch/preset {arch}/{preset}; choose one of "
                         f"{', '.join(f'{a}/{p}' for a, p in PRESETS)}")
    out_dir = Path(out_dir)
    with _offline(), tempfile.TemporaryDirectory() as tmp:
        import torch
        from transformers import AutoModelForCausalLM

        src = Path(tmp) / "hf"
        tok = train_tokenizer(VOCAB[preset], src)
        if preset in VOCAB_SIZE:
            tok = pad_vocabulary(tok, VOCAB_SIZE[preset])
            tok.save_pretrained(src)
        cfg = build_config(arch, preset, len(tok), tok)
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16 if preset == "real-dims" else torch.float32)
        if arch == "gpt-oss":  # sinks start at zero; give them values so they matter in tests
            with torch.no_grad():
                for layer in model.model.layers:
                    layer.self_attn.sinks.normal_(0.0, 1.0)
        model.eval()
        model.save_pretrained(src)
        weight_format, recipe = WEIGHTS[preset]
        del model  # the export reads the checkpoint back; at real widths two copies would not fit
        export_to_openvino(src, out_dir, weight_format=weight_format, recipe=recipe)
        if keep_source:
            shutil.copytree(src, out_dir / "pytorch")
    return out_dir


def default_model_dir(notify=print) -> Path:
    """The first bundled model (runs.bundled_models), or (in a checkout without one) a random-weight
    tiny model built once into the cache."""
    from ..core.runs import bundled_models
    from ..paths import CACHE
    bundled = bundled_models()
    if bundled:
        return bundled[0]
    target = CACHE / "tiny-gpt-oss"
    if not (target / "openvino_model.xml").is_file():
        notify(f"building a tiny random-weight gpt-oss model in {target} (once; about 15 s)")
        make_tiny_model(target, "gpt-oss", "tiny", seed=0)
    notify("note: the default model has RANDOM weights; its text is noise. Load a real model with --model-dir.")
    return target
