"""Policies that read the attention the model actually paid (the paged form reports it per layer,
summed over query heads; core/attention.py keeps it per cached token). kvpress ships the same family
(ObservedAttentionPress, TOVAPress, SnapKVPress); OpenVINO GenAI's own eviction is accumulated
attention by blocks.

- `h2o`: Heavy-Hitter Oracle (Zhang et al. 2023, arXiv 2306.14048): attention accumulated over every
  query since the token entered the cache; a prompt piece counts all of its queries.
- `tova`: Token Omission Via Attention (Oren et al. 2024, arXiv 2401.06104): the newest query's
  attention alone.
- `snapkv`: SnapKV (Li et al. 2024, arXiv 2404.14469): the attention of an observation window of the
  last `window` queries (at the end of the prompt: the question), max-pooled over `kernel` neighbouring
  tokens so a kept token keeps its neighbours. SnapKV selects once, after the prompt; in our loop the
  cut repeats while decoding, with the window's last `window` decoded queries.

- `genai-like`: OpenVINO GenAI's own rule in our loop: attention summed over the queries since each
  token entered, divided by how many there were (its NORM_SUM), averaged over blocks of 32 tokens so
  whole blocks go together, as GenAI evicts (`ov-genai` runs the same rule in GenAI's runtime: the
  two together separate the rule from the runtime).

Scores are per layer (the report sums the query heads), so these policies keep one token set per
layer. They need the paged form: the stateful form's fused attention reports nothing (engine.py says so).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Policy, check_whole, register_variant


def max_pool(x: np.ndarray, kernel: int) -> np.ndarray:
    """Max over a centred window of `kernel` slots along the last axis (edges: the slots there are)."""
    if kernel <= 1:
        return x
    half = kernel // 2
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(half, half)], constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, kernel, axis=-1)
    return windows[..., :x.shape[-1], :].max(axis=-1)


def block_mean(x: np.ndarray, block: int) -> np.ndarray:
    """Each slot scored with the mean of its block of `block` consecutive slots (the last may be short)."""
    if block <= 1:
        return x
    n = x.shape[-1]
    pad = -n % block
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, pad)], constant_values=np.nan)
    means = np.nanmean(padded.reshape(x.shape[:-1] + (-1, block)), axis=-1)
    return np.repeat(means, block, axis=-1)[..., :n]


@dataclass(frozen=True)
class AttentionPolicy(Policy):
    name: str = ""
    description: str = ""
    view: str = "total"  # which view of the attention log scores: total, last or window
    window: int = 1      # queries of a prompt piece whose attention a report sums (0: all of them)
    kernel: int = 1      # max-pool width over neighbouring tokens
    needs_keys: bool = False
    reads_attention = True
    options = ("window", "kernel", "block")  # a run's --policy-option window=N, kernel=N, block=N

    def __post_init__(self):
        check_whole("window", self.window, 0)
        check_whole("kernel", self.kernel)
        check_whole("block", self.block)

    def prefill_window(self, piece: int) -> int:
        return piece if self.window == 0 else min(self.window, piece)

    block: int = 1       # tokens scored together (their mean), as whole blocks are evicted

    def score(self, keys, positions, ctx):
        if ctx.attention is None:
            raise ValueError(f"the {self.name} policy needs the attention the model paid (the paged form)")
        log = ctx.attention
        raw = log.total / np.maximum(log.seen, 1) if self.view == "norm_sum" else getattr(log, self.view)
        scores = block_mean(max_pool(raw, self.kernel), self.block)
        # a store that keeps a token set per KV head asks per head: every head gets its layer's score
        return np.broadcast_to(scores[:, None, :], positions.shape) if positions.ndim == 3 else scores


H2O = register_variant(AttentionPolicy(
    name="h2o", view="total", window=0,
    description="H2O (Zhang et al. 2023): keeps the tokens with the most attention accumulated so far (paged form)"))
TOVA = register_variant(AttentionPolicy(
    name="tova", view="last", window=1,
    description="TOVA (Oren et al. 2024): keeps the tokens the newest query attends to most (paged form)"))
SNAPKV = register_variant(AttentionPolicy(
    name="snapkv", view="window", window=32, kernel=7,
    description="SnapKV (Li et al. 2024): attention of the last 32 queries, pooled over 7 tokens (paged form)"))
GENAI_LIKE = register_variant(AttentionPolicy(
    name="genai-like", view="norm_sum", window=0, block=32,
    description="OpenVINO GenAI's rule in our loop: attention summed, divided by the queries seen, "
                "by blocks of 32 (paged form)"))

# Query-aware prompt selection (EvictionConfig.prompt_select="query"; engine.py): SnapKV's choice,
# made once after the whole prompt, for any decode policy. Its pool is wider than SnapKV's 7 because
# at the small budgets shown here the fact asked for must survive whole: on the needle tasks of
# `triattn eval` (SmolLM2-135M, 1,024 tokens, budget 128, 10 samples) pools of 1, 7, 15, 21, 31 and
# 41 tokens kept the answer in 0, 0, 1, 4, 7 and 7 of 10 (a needle sentence is about 25 tokens):
# docs/evaluation.md has the measurement. Not a policy of its own (not registered).
QUERY_SELECT = AttentionPolicy(
    name="query-select", view="window", window=32, kernel=31,
    description="the prompt tokens the question's last 32 queries attend to most, pooled over 31 tokens")
