"""What a visitor types, as validated settings and token ids, before any model work.

Scope: the page's raw widget values (numbers may arrive as floats, text, None or NaN through the
API) turned into EvictionConfig, SamplingConfig, a capped max new tokens and prompt token ids.
Every refusal is a ValueError whose message names the field, for the page to show.
"""
from __future__ import annotations

import math

from .config import EvictionConfig, SamplingConfig, check_max_new_tokens
from .text import encode_prompt


def _whole(name: str, value, minimum: int) -> int:
    if value is None or value == "":
        raise ValueError(f"{name} is empty")
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond any float
        raise ValueError(f"{name} must be a whole number of sensible size, got {str(value)[:40]!r}") from None
    if not math.isfinite(f) or f != int(f):
        raise ValueError(f"{name} must be a whole number, got {value}")
    if f < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {int(f)}")
    return int(f)


def parse_settings(policy, evict, budget, recent_window, sink_tokens, prune_interval, max_new_tokens,
                   temperature, seed, prompt_select="policy") -> tuple[EvictionConfig, SamplingConfig, int]:
    """The page's raw inputs as validated configs; ValueError with a message for the user."""
    eviction = EvictionConfig(policy=policy, evict=evict, budget=_whole("budget", budget, 2),
                              recent_window=_whole("recent window", recent_window, 0),
                              sink_tokens=_whole("sink tokens", sink_tokens, 0),
                              prune_interval=_whole("prune interval", prune_interval, 1),
                              prompt_select=prompt_select or "policy")
    try:
        temperature = float(temperature)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"temperature must be a number, got {temperature!r}") from None
    sampling = SamplingConfig(temperature=temperature, seed=_whole("seed", seed, 0))
    return eviction, sampling, check_max_new_tokens(_whole("max new tokens", max_new_tokens, 1))


# A guard before tokenizing, not a measure: no tokenizer puts this many characters in a token, so
# a longer text cannot fit the context, and tokenizing megabytes would hold the server up.
MAX_CHARS_PER_TOKEN = 32


def prompt_ids(tokenizer, text, max_context: int, chat: bool = True) -> list[int]:
    """A typed prompt as token ids (in the chat template if `chat`); ValueError with a message for the user."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the prompt is empty: type one or pick an example")
    if len(text) > MAX_CHARS_PER_TOKEN * max_context:
        raise ValueError(f"the prompt ({len(text):,} characters) is far longer than the model's context of "
                         f"{max_context} tokens")
    return encode_prompt(tokenizer, text, chat=chat)
