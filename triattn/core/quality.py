"""How much pruning changed the answer, for one baseline/pruned pair.

- token agreement: share of positions (over the longer output) where the two runs chose the same
  token, and the first divergence (index and both tokens). It cascades: after one different
  token, the runs continue from different text.
- teacher-forced cost, which does not cascade: the pruned configuration (same eviction schedule)
  is run over the BASELINE's own tokens, and for each step we compare with the full cache:
  delta NLL = mean(-log p_pruned(t)) - mean(-log p_full(t)) over the baseline tokens t,
  perplexity ratio = exp(delta NLL), and top-1 agreement = share of steps where the two caches'
  argmax predictions agree.
  A run that another runtime executes (ov-genai) cannot be fed given tokens, so for it these
  three are None (not available), and only token agreement is measured.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .config import EvictionConfig, full_cache
from .engine import generate
from .runner import can_force


@dataclass
class Quality:
    agreement: float
    first_divergence: int | None       # index into the generated tokens, None if identical
    divergence_tokens: tuple | None    # (baseline token, pruned token) at that index
    delta_nll: float | None              # None: the policy cannot be teacher-forced
    ppl_ratio: float | None
    forced_top1_agreement: float | None
    compared: int = 0                    # tokens `agreement` is over (the longer output)
    forced: int = 0                      # baseline tokens the forced figures are over

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Divergence:
    index: int              # 0-based index among the new tokens
    baseline: int | None    # token id, None where that run had already ended
    pruned: int | None


def first_divergence(a: list, b: list, a_done: bool = True, b_done: bool = True) -> Divergence | None:
    """First new token where the runs differ; None if they agree as far as both have got.

    A run that has ended counts as differing from one that goes on (its token is None);
    a run still going may yet produce the other's next token, so it is not compared.
    """
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return Divergence(i, x, y)
    n = min(len(a), len(b))
    if len(a) != len(b) and ((len(a) == n and a_done) or (len(b) == n and b_done)):
        return Divergence(n, a[n] if len(a) > n else None, b[n] if len(b) > n else None)
    return None


def token_agreement(baseline: list, pruned: list) -> float:
    """Share of positions, over the longer output, where both runs chose the same token."""
    n = max(len(baseline), len(pruned))
    return 1.0 if n == 0 else sum(x == y for x, y in zip(baseline, pruned)) / n


def forced_scores(records) -> tuple[np.ndarray, np.ndarray]:
    """(negative log-likelihoods, argmax predictions) from teacher-forced records."""
    return np.array([-r.logprob for r in records]), np.array([r.top1 for r in records])


def teacher_forced(session, prompt_ids, tokens, eviction: EvictionConfig, calibration=None):
    return list(generate(session, prompt_ids, eviction, force=list(tokens), calibration=calibration))


def compare(session, prompt_ids, baseline_tokens, pruned_tokens, eviction: EvictionConfig,
            calibration=None, full_forced=None) -> Quality:
    """Quality of `eviction` against the full cache. `full_forced`: teacher-forced records of the
    baseline (policy none) over its own tokens, if already computed (they are the same for every
    pruned configuration, so a caller comparing many can pass them once)."""
    agreement = token_agreement(baseline_tokens, pruned_tokens)
    d = first_divergence(baseline_tokens, pruned_tokens)
    first, div = (None, None) if d is None else (d.index, (d.baseline, d.pruned))
    n = max(len(baseline_tokens), len(pruned_tokens))
    if not can_force(eviction):
        return Quality(agreement, first, div, None, None, None, n)
    if not baseline_tokens:
        return Quality(agreement, first, div, 0.0, 1.0, 1.0, n)
    if full_forced is None:
        full_forced = teacher_forced(session, prompt_ids, baseline_tokens, full_cache())
    pruned_forced = teacher_forced(session, prompt_ids, baseline_tokens, eviction, calibration)
    nll_full, top_full = forced_scores(full_forced)
    nll_pruned, top_pruned = forced_scores(pruned_forced)
    delta = float(nll_pruned.mean() - nll_full.mean())
    return Quality(agreement, first, div, delta, math.exp(delta), float((top_full == top_pruned).mean()), n,
                   len(top_full))
