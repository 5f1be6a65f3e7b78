"""Text on either side of the decode loop: tokenizer loading, chat templates, and incremental
detokenization that never emits half of a multi-byte character."""
from __future__ import annotations

import logging
from pathlib import Path

from ..errors import ModelError, reason

# Files a transformers tokenizer is built from; without one, transformers tries conversions whose
# errors (missing protobuf, sentencepiece) say nothing about the model directory.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer.tiktoken", "vocab.txt")


def load_tokenizer(model_dir: str | Path):
    """The export's tokenizer through transformers; code shipped with a model is never run (an
    explicit False: left unset, transformers asks on a terminal whether to run it)."""
    from transformers import AutoTokenizer
    logging.getLogger("transformers").setLevel(logging.ERROR)
    if not any((Path(model_dir) / f).is_file() for f in TOKENIZER_FILES):
        raise ModelError(f"no tokenizer in {model_dir} (none of {', '.join(TOKENIZER_FILES)}); "
                         f"export the model again with its tokenizer")
    try:
        return AutoTokenizer.from_pretrained(str(model_dir), trust_remote_code=False)
    except Exception as e:  # transformers raises many kinds here; the user needs one line
        raise ModelError(f"cannot load the tokenizer from {model_dir}: {reason(e)}") from None


PROMPT_SEPARATOR = "---"


def split_prompts(text: str) -> list[str]:
    """Prompts in a file: blocks between lines of `---` when there are such lines (a prompt may then
    span lines, like a passage followed by a question), else one prompt a line. Blanks are skipped."""
    lines = text.splitlines()
    if any(line.strip() == PROMPT_SEPARATOR for line in lines):
        blocks, current = [], []
        for line in lines + [PROMPT_SEPARATOR]:
            if line.strip() == PROMPT_SEPARATOR:
                blocks.append("\n".join(current).strip())
                current = []
            else:
                current.append(line)
        return [b for b in blocks if b]
    return [line.strip() for line in lines if line.strip()]


def encode_prompt(tokenizer, text: str, chat: bool = True) -> list[int]:
    """Token ids for `text`, wrapped in the chat template when the tokenizer has one and `chat`."""
    if not text or not text.strip():
        raise ValueError("the prompt is empty")
    if chat and getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                            tokenize=True)
        return list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)
    return tokenizer.encode(text, add_special_tokens=False)


class StreamDecoder:
    """Turns token ids into text pieces as they arrive.

    Decodes a short window of recent ids and emits only what is new once it no longer ends in
    U+FFFD (an unfinished multi-byte character), so byte-level BPE output streams cleanly.
    """

    def __init__(self, tokenizer, skip_special_tokens: bool = True):
        self.tok = tokenizer
        self.skip = skip_special_tokens
        self.ids: list[int] = []
        self.prefix = 0   # start of the window that is decoded for context
        self.read = 0     # ids up to here have been emitted

    def _decode(self, ids):
        return self.tok.decode(ids, skip_special_tokens=self.skip, clean_up_tokenization_spaces=False)

    def push(self, token_id: int) -> str:
        self.ids.append(int(token_id))
        before = self._decode(self.ids[self.prefix:self.read])
        after = self._decode(self.ids[self.prefix:])
        if after.endswith("\ufffd") or len(after) <= len(before):
            return ""
        self.prefix, self.read = self.read, len(self.ids)
        return after[len(before):]

    def flush(self) -> str:
        """Whatever is left at the end (even if it ends mid-character)."""
        before = self._decode(self.ids[self.prefix:self.read])
        after = self._decode(self.ids[self.prefix:])
        self.prefix = self.read = len(self.ids)
        return after[len(before):]
