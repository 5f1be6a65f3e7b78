"""Does sharing the machine with four other runs change a run's speed? The arena (web/arena.py)
against the A/B pair (web/ab.py), measured side by side in one process.

One repeat runs the same pruned configuration in an arena of five runs (the baseline, it and three
other policies, all taking turns token by token) and in an A/B pair (the baseline and it), each
twice, in the order arena, pair, pair, arena (or pair, arena, arena, pair in every other repeat).
Its time per token is the mean of its decode steps; the figure is the ratio arena / pair per
repeat, each side's two runs averaged. Why twice, mirrored: on a shared 2-core VM whatever ran
second in a repeat often ran slower, whichever it was (five bare sessions stepped in turn against
two, 7 repeats: 0.93, 1.13, 0.97, 1.08, 1.00, 0.92, 1.12, the first of each pair leading in turn),
so one run of each made the interval as wide as that drift; the mirrored order cancels a drift
that is linear over the repeat. Reported: the median ratio with its distribution-free interval
over the repeats (stats.median_interval); the target (within 5%) is met only when the whole
interval lies in 0.95..1.05.
"""
from __future__ import annotations

import statistics

from ..core.config import EvictionConfig, SamplingConfig
from ..core.stats import median_interval
from ..web.ab import Pair
from ..web.arena import Arena, label

TARGET = 0.05
OTHERS = ("streaming", "random", "triattention", "knorm-seed")


def _tpot_ms(side) -> float:
    steps = [r.time_s for r in side.records[1:]]
    return 1000 * statistics.fmean(steps)


def configs(policy: str, budget: int, recent: int, sinks: int) -> list[EvictionConfig]:
    """The measured run first, then three other policies (hard eviction, the same budget)."""
    others = [p for p in OTHERS if p != policy][:3]
    return [EvictionConfig(policy=p, evict="hard", budget=budget, recent_window=recent, sink_tokens=sinks)
            for p in (policy, *others)]


def one_repeat(model, tok, prompt_ids, cfgs, sampling, max_new: int, arena_first: bool) -> dict:
    """{'arena': ms, 'pair': ms} for the measured run (cfgs[0]), and the baseline's, each the mean
    of its two runs in the mirrored order (see above)."""
    got = {"arena": [], "arena_baseline": [], "pair": [], "pair_baseline": []}

    def arena():
        a = Arena(model, tok, prompt_ids, cfgs, sampling, max_new)
        for _ in a.steps():
            pass
        got["arena"].append(_tpot_ms(a.sides[label(cfgs[0])]))
        got["arena_baseline"].append(_tpot_ms(a.baseline))

    def pair():
        p = Pair(model, tok, prompt_ids, cfgs[0], sampling, max_new)
        for _ in p.steps():
            pass
        got["pair"].append(_tpot_ms(p.pruned))
        got["pair_baseline"].append(_tpot_ms(p.baseline))
    for f in ((arena, pair, pair, arena) if arena_first else (pair, arena, arena, pair)):
        f()
    return {k: statistics.fmean(v) for k, v in got.items()}


def run(model, tok, prompt_ids, cfgs, max_new: int, repeats: int, progress=print) -> dict:
    """Alternating repeats (after one untimed warm-up of each); the ratios' medians and intervals."""
    if repeats < 5:
        raise ValueError("repeats must be at least 5 (a median with an interval needs them)")
    sampling = SamplingConfig()
    one_repeat(model, tok, prompt_ids, cfgs, sampling, min(max_new, 8), True)  # warm-up, untimed
    rows = []
    for i in range(repeats):
        rows.append(one_repeat(model, tok, prompt_ids, cfgs, sampling, max_new, arena_first=i % 2 == 0))
        r = rows[-1]
        progress(f"repeat {i + 1}/{repeats}: {label(cfgs[0])} TPOT {r['arena']:.2f} ms in the arena, "
                 f"{r['pair']:.2f} ms in the pair (ratio {r['arena'] / r['pair']:.3f})")
    ratio = median_interval([r["arena"] / r["pair"] for r in rows])
    base = median_interval([r["arena_baseline"] / r["pair_baseline"] for r in rows])
    return {"run": label(cfgs[0]), "repeats": rows, "ratio": ratio.as_dict(), "baseline_ratio": base.as_dict(),
            "met": 1 - TARGET <= ratio.lo and ratio.hi <= 1 + TARGET}


def describe(res: dict, n_runs: int, max_new: int) -> str:
    r, b = res["ratio"], res["baseline_ratio"]
    verdict = "met" if res["met"] else "not met (the interval is not within the target)"
    return (f"{res['run']}: TPOT in an arena of {n_runs} runs / in an A/B pair = {r['value']:.3f} "
            f"(median of {r['n']} alternating repeats, {r['level']:.1%} interval {r['lo']:.3f}..{r['hi']:.3f}; "
            f"{max_new} new tokens)\n"
            f"baseline: {b['value']:.3f} ({b['lo']:.3f}..{b['hi']:.3f})\n"
            f"target: within {TARGET:.0%} (0.95..1.05): {verdict}")
