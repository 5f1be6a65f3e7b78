"""Figures with their noise: a median with its interval, a paired change with its interval, a count
with its interval. Every figure the page, the CLI and the benchmarks call a finding goes through here.

- `median_interval(xs)`: the median of repeated measurements and a distribution-free interval for
  it from order statistics (the binomial argument; no assumption on the shape of the noise). With
  few repeats the exact level cannot reach 95% (5 repeats: min..max is a 93.8% interval); the
  level it reaches is returned with it, never rounded up.
- `paired_change(a, b)`: the relative change from a to b of two interleaved series of step times
  (step i of one ran beside step i of the other, so slow moments of the machine hit both), over
  their common length, with a 95% moving-block bootstrap interval (blocks keep the runs of slow
  steps that a busy machine makes together; Kuensch 1989).
- `binomial_interval(k, n)`: Wilson's 95% interval for a proportion (Wilson 1927), as accuracy
  over tasks is reported.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054
MIN_STEPS = 8  # fewer paired decode steps than this: too few to say anything about speed


@dataclass(frozen=True)
class Interval:
    value: float
    lo: float
    hi: float
    n: int
    level: float  # the confidence the interval really has (e.g. 0.938 for min..max of 5)

    def excludes(self, x: float) -> bool:
        return not self.lo <= x <= self.hi

    def within(self, limit: float) -> bool:
        """The whole interval lies at or below `limit` (a target of the kind 'at most')."""
        return self.hi <= limit

    def as_dict(self) -> dict:
        return {"value": self.value, "lo": self.lo, "hi": self.hi, "n": self.n, "level": self.level}


def _binom_cdf(k: int, n: int) -> float:
    return sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n


def median_interval(xs, level: float = 0.95) -> Interval:
    """Median of `xs` and the narrowest symmetric order-statistic interval reaching `level`, or
    min..max with the level it has when there are too few values to reach it."""
    s = np.sort(np.asarray(xs, float))
    n = s.size
    if n == 0:
        raise ValueError("no measurements")
    med = float(np.median(s))
    # [s[j], s[n-1-j]] (0-indexed) covers the median with probability 1 - 2 * P(Bin(n, 1/2) <= j):
    # take the largest j that still reaches `level`, else min..max (j = 0) with the level it has
    best_j = 0
    for j in range(1, (n - 1) // 2 + 1):
        if 1 - 2 * _binom_cdf(j, n) < level:
            break
        best_j = j
    got = 1 - 2 * _binom_cdf(best_j, n) if n > 1 else 0.0
    return Interval(med, float(s[best_j]), float(s[n - 1 - best_j]), n, round(got, 4))


def _blocks(n: int, rng, length: int) -> np.ndarray:
    starts = rng.integers(0, n - length + 1, size=math.ceil(n / length))
    return (starts[:, None] + np.arange(length)[None, :]).ravel()[:n]


def paired_change(a, b, n_boot: int = 2000, seed: int = 0) -> Interval | None:
    """(sum b / sum a - 1) over the first min(len a, len b) steps, with a 95% moving-block
    bootstrap interval; None when fewer than MIN_STEPS steps pair up."""
    n = min(len(a), len(b))
    if n < MIN_STEPS:
        return None
    x, y = np.asarray(a[:n], float), np.asarray(b[:n], float)
    rng = np.random.default_rng(seed)
    length = max(1, round(n ** (1 / 3)))
    idx = np.stack([_blocks(n, rng, length) for _ in range(n_boot)])
    ratios = y[idx].sum(1) / x[idx].sum(1) - 1
    lo, hi = np.quantile(ratios, [0.025, 0.975])
    return Interval(float(y.sum() / x.sum() - 1), float(lo), float(hi), n, 0.95)


def binomial_interval(k: int, n: int) -> Interval:
    """Wilson's 95% interval for k successes in n trials."""
    if n <= 0:
        raise ValueError("no trials")
    p = k / n
    d = 1 + Z95 ** 2 / n
    centre = (p + Z95 ** 2 / (2 * n)) / d
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95 ** 2 / (4 * n * n)) / d
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), n, 0.95)


def speed_verdict(change: Interval | None, what: str = "time per token") -> str:
    """One honest sentence on a paired change: a direction only when the interval excludes 0."""
    if change is None:
        return f"too few decoded tokens to compare {what} (fewer than {MIN_STEPS} in both runs)"
    pm = max(abs(change.lo), abs(change.hi))
    if not change.excludes(0.0):
        return f"no measurable difference in {what} (within ±{pm:.0%}, {change.n} paired steps)"
    word = "lower" if change.value < 0 else "higher"
    return (f"{what} {abs(change.value):.0%} {word} (95% interval {change.lo:+.0%} to {change.hi:+.0%}, "
            f"{change.n} paired steps)")
