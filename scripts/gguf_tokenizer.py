"""A transformers tokenizer rebuilt from a GGUF file's GPT-2 byte-level BPE vocabulary and merges.

Scope: SmolLM2-style GGUF files (`tokenizer.ggml.model == "gpt2"`, pre-tokenizer "smollm").
transformers can build a tokenizer from a GGUF itself, but for this file it builds a broken one
(a CodeLlama tokenizer, eos `<|im_start|>`, spaces encoded as `<|endoftext|>`), so the pieces are
put together here with the `tokenizers` library instead. Build-time only: needs `gguf`.
"""
from __future__ import annotations

from pathlib import Path

CONTROL = 3  # gguf.TokenType.CONTROL: special tokens, never split or merged
# llama.cpp's "smollm" pre-tokenizer: every digit alone, then GPT-2's byte-level split; the same as
# the hub tokenizer.json's Digits(individual_digits) + ByteLevel sequence.
SUPPORTED_PRE = ("smollm",)


def gguf_fields(path: str | Path) -> dict:
    """The GGUF's tokenizer and chat-template fields as Python values."""
    import gguf
    reader = gguf.GGUFReader(str(path))
    wanted = ("tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.merges",
              "tokenizer.ggml.token_type", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.bos_token_id",
              "tokenizer.ggml.padding_token_id", "tokenizer.ggml.unknown_token_id",
              "tokenizer.ggml.add_bos_token", "tokenizer.chat_template")
    return {k: reader.fields[k].contents() for k in wanted if k in reader.fields}


def build_tokenizer(path: str | Path):
    """A PreTrainedTokenizerFast equal to the model's own: byte-level BPE, special tokens from the
    GGUF's control tokens, eos and pad from the GGUF, no BOS added, the GGUF's chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    f = gguf_fields(path)
    if f.get("tokenizer.ggml.model") != "gpt2" or f.get("tokenizer.ggml.pre") not in SUPPORTED_PRE:
        raise ValueError(f"{path}: not a SmolLM2-style byte-level BPE tokenizer "
                         f"({f.get('tokenizer.ggml.model')}, {f.get('tokenizer.ggml.pre')})")
    if f.get("tokenizer.ggml.add_bos_token"):
        raise ValueError(f"{path}: this builder does not add a BOS token, but the GGUF asks for one")
    tokens = list(f["tokenizer.ggml.tokens"])
    merges = [tuple(m.split(" ", 1)) for m in f["tokenizer.ggml.merges"]]
    bpe = models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, fuse_unk=False,
                     byte_fallback=False)
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    special = [t for t, kind in zip(tokens, f["tokenizer.ggml.token_type"]) if kind == CONTROL]
    tok.add_special_tokens(special)
    name = lambda key: tokens[int(f[key])]  # noqa: E731
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=name("tokenizer.ggml.eos_token_id"),
        pad_token=name("tokenizer.ggml.padding_token_id"), bos_token=name("tokenizer.ggml.bos_token_id"),
        unk_token=name("tokenizer.ggml.unknown_token_id"), chat_template=f["tokenizer.chat_template"],
        add_bos_token=False, clean_up_tokenization_spaces=False, model_max_length=8192)


# Text the checks below encode: spaces and newlines of several kinds, digits, punctuation, code,
# accents and other scripts (byte-level BPE must round-trip all of them).
CHECK_TEXTS = (
    "The capital of France is Paris.",
    "  Two leading spaces,\ttabs,\n\nblank lines and trailing space ",
    "In 1969, 3 astronauts flew 384,400 km; π ≈ 3.14159.",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "Café, naïve, Straße, 東京, Москва, emoji 🙂.",
    "<|im_start|>user\nHi<|im_end|>\n",
)


def check_tokenizer(tokenizer) -> None:
    """Raises AssertionError unless the tokenizer matches its raw `tokenizers` backend and
    round-trips every check text exactly."""
    raw = tokenizer.backend_tokenizer
    for text in CHECK_TEXTS:
        ids = tokenizer.encode(text, add_special_tokens=True)
        assert ids == raw.encode(text, add_special_tokens=True).ids, f"encode differs from tokenizers: {text!r}"
        assert tokenizer.decode(ids) == text, f"round trip fails: {text!r} -> {tokenizer.decode(ids)!r}"
    assert tokenizer.encode(" ") != [tokenizer.unk_token_id], "a space encodes as the unknown token"
    assert tokenizer.bos_token_id not in tokenizer.encode("Hello"), "a BOS token is added"
