"""A benchmark figure with its spread: one value per repeat (a ratio of two sides measured in the
same repeat, so a slow moment of the machine reaches both), their median and the order-statistic
interval of `core/stats.py` with the confidence it really has, and a verdict against a target
that says "met" only when the whole interval lies within it.

- `paired_ratios(num, den)`: num[i] / den[i] for every repeat where both sides have a value;
- `spread(values)`: the median, interval, count and level as a dict (the JSON form), or None;
- `verdict(spread, target)`: "met", "missed" (the whole interval above the target) or
  "not shown at this noise" (the interval straddles it), or "not shown: N runs" below MIN_RUNS;
  None where there is no target;
- `fmt(spread)`: "0.848 [0.750–0.980] n=5, 94%".
"""
from __future__ import annotations

from ..core.stats import median_interval

NOT_SHOWN = "not shown at this noise"
MIN_RUNS = 5  # the fewest repeats whose min..max is a 93.8% interval for the median


def paired_ratios(num, den) -> list[float]:
    return [a / b for a, b in zip(num, den) if a is not None and b]


def spread(values) -> dict | None:
    values = [v for v in values if v is not None]
    return median_interval(values).as_dict() if values else None


def verdict(s: dict | None, target) -> str | None:
    """A target of the kind 'at most': met when the interval's top is within it."""
    if target is None or s is None:
        return None
    if s["n"] < MIN_RUNS:  # min..max of fewer runs is an interval of less than 94%
        return f"not shown: {s['n']} run{'s' if s['n'] != 1 else ''} (at least {MIN_RUNS})"
    if s["hi"] <= target:
        return "met"
    if s["lo"] > target:
        return "missed"
    return NOT_SHOWN


def fmt(s: dict | None, spec: str = ".3f") -> str:
    if s is None:
        return "–"
    if s["n"] < 2:
        return f"{s['value']:{spec}} (n=1, no interval)"
    return f"{s['value']:{spec}} [{s['lo']:{spec}}–{s['hi']:{spec}}] n={s['n']}, {s['level']:.0%}"
