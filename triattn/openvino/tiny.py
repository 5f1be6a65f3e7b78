"""Build small random-weight LLMs and export them to OpenVINO IR, fully offline.

Two presets per architecture: `tiny` (a few M parameters, for tests) and `bench` (~300M
parameters, for performance work). The tokenizer is a byte-level BPE trained on the shipped
plain-text sample, so the whole build is deterministic for a seed and needs no model hub.
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
}
VOCAB = {"tiny": 512, "bench": 4096}


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


def build_config(arch: str, preset: str, vocab_size: int, tok):
    common = dict(vocab_size=vocab_size, max_position_embeddings=4096 if preset == "tiny" else 8192,
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
        raise ValueError(f"unknown arch/preset {arch}/{preset}; choose arch from llama, gpt-oss "
                         f"and preset from tiny, bench")
    out_dir = Path(out_dir)
    with _offline(), tempfile.TemporaryDirectory() as tmp:
        import torch
        from transformers import AutoModelForCausalLM

        src = Path(tmp) / "hf"
        tok = train_tokenizer(VOCAB[preset], src)
        cfg = build_config(arch, preset, len(tok), tok)
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
        if arch == "gpt-oss":  # sinks start at zero; give them values so they matter in tests
            with torch.no_grad():
                for layer in model.model.layers:
                    layer.self_attn.sinks.normal_(0.0, 1.0)
        model.eval()
        model.save_pretrained(src)
        export_to_openvino(src, out_dir, weight_format="fp32" if preset == "tiny" else "fp16")
        if keep_source:
            shutil.copytree(src, out_dir / "pytorch")
    return out_dir
