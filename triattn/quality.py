"""How much pruning changed the answer, for one baseline/pruned pair.

- token agreement: share of positions (over the longer output) where the two runs chose the same
  token, and the first divergence (index and both tokens). It cascades: after one different
  token, the runs continue from different text.
- teacher-forced cost, which does not cascade: the pruned configuration (same eviction schedule)
  is run over the BASELINE's own tokens, and for each step we compare with the full cache:
  delta NLL = mean(-log p_pruned(t)) - mean(-log p_full(t)) over the baseline tokens t,
  perplexity ratio = exp(delta NLL), and top-1 agreement = share of steps where the two caches'
  argmax predictions agree.
  A policy that runs in its own backend (ov-genai) cannot be fed given tokens, so for it these
  three are None (not available), and only token agreement is measured.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .config import EvictionConfig
from .engine import generate
from .policies import get_policy


@dataclass
class Quality:
    agreement: float
    first_divergence: int | None       # index into the generated tokens, None if identical
    divergence_tokens: tuple | None    # (baseline token, pruned token) at that index
    delta_nll: float | None              # None: the policy cannot be teacher-forced
    ppl_ratio: float | None
    forced_top1_agreement: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def token_agreement(baseline: list, pruned: list) -> tuple[float, int | None]:
    n = max(len(baseline), len(pruned))
    if n == 0:
        return 1.0, None
    same = [i < len(baseline) and i < len(pruned) and baseline[i] == pruned[i] for i in range(n)]
    first = next((i for i, s in enumerate(same) if not s), None)
    return sum(same) / n, first


def forced_scores(records) -> tuple[np.ndarray, np.ndarray]:
    """(negative log-likelihoods, argmax predictions) from teacher-forced records."""
    return np.array([-r.logprob for r in records]), np.array([r.top1 for r in records])


def can_force(eviction: EvictionConfig) -> bool:
    """Whether the configuration runs in our decode loop, which can be fed given tokens."""
    return get_policy(eviction.policy).backend is None


def teacher_forced(session, prompt_ids, tokens, eviction: EvictionConfig, calibration=None):
    return list(generate(session, prompt_ids, eviction, force=list(tokens), calibration=calibration))


def compare(session, prompt_ids, baseline_tokens, pruned_tokens, eviction: EvictionConfig,
            calibration=None, full_forced=None) -> Quality:
    """Quality of `eviction` against the full cache. `full_forced`: teacher-forced records of the
    baseline (policy none) over its own tokens, if already computed (they are the same for every
    pruned configuration, so a caller comparing many can pass them once)."""
    agreement, first = token_agreement(baseline_tokens, pruned_tokens)
    div = None
    if first is not None:
        div = (baseline_tokens[first] if first < len(baseline_tokens) else None,
               pruned_tokens[first] if first < len(pruned_tokens) else None)
    if not can_force(eviction):
        return Quality(agreement, first, div, None, None, None)
    if not baseline_tokens:
        return Quality(agreement, first, div, 0.0, 1.0, 1.0)
    if full_forced is None:
        full_forced = teacher_forced(session, prompt_ids, baseline_tokens, EvictionConfig(policy="none"))
    pruned_forced = teacher_forced(session, prompt_ids, baseline_tokens, eviction, calibration)
    nll_full, top_full = forced_scores(full_forced)
    nll_pruned, top_pruned = forced_scores(pruned_forced)
    delta = float(nll_pruned.mean() - nll_full.mean())
    return Quality(agreement, first, div, delta, math.exp(delta), float((top_full == top_pruned).mean()))
