"""Does sharing the machine with four other runs change a run's speed? The arena (web/arena.py)
against the A/B pair (web/ab.py), measured side by side in one process.

One repeat runs the same pruned configuration in an arena of five runs (the baseline, it and three
other policies, all taking turns token by token) and in an A/B pair (the baseline and it), both
live at once and advanced in turns: `turn` decode steps of the measured run in the arena (with the
other four stepping between them, as always), then `turn` in the pair, and so on to the end; every
other repeat the pair takes the first turn. A run's time per token in a setting is the mean of its
decode steps there, leaving out the first step of each turn (it follows the other setting's work);
the figure is the ratio arena / pair per repeat, and likewise for the baseline.

Why turns, not whole runs one after another: on a shared 2-core VM the machine's speed drifts by
several percent over tens of seconds. With whole runs (arena, pair, pair, arena: 40 s a repeat)
that drift reached each repeat's ratio, and 15 repeats gave intervals 0.98..1.09 around medians
of 1.02-1.05 (docs/arena.md). A turn lasts about a second, so both settings meet the same machine.
Reported: the median ratio with its distribution-free interval over the repeats
(stats.median_interval); the target (within 5%) is met only when the whole interval lies in
0.95..1.05. The floor is 1: both settings do the same work per step of the measured run.
"""
from __future__ import annotations

import statistics

from ..core.config import EvictionConfig, SamplingConfig
from ..core.stats import median_interval
from ..core.tables import BASELINE, PRUNED
from ..web.ab import Pair
from ..web.arena import Arena, label

TARGET = 0.05
TURN = 16
OTHERS = ("streaming", "random", "triattention", "knorm-seed")


def configs(policy: str, budget: int, recent: int, sinks: int) -> list[EvictionConfig]:
    """The measured run first, then three other policies (hard eviction, the same budget)."""
    others = [p for p in OTHERS if p != policy][:3]
    return [EvictionConfig(policy=p, evict="hard", budget=budget, recent_window=recent, sink_tokens=sinks)
            for p in (policy, *others)]


def in_turns(settings: dict, order: list[str], turn: int) -> dict:
    """Advance each setting's steps() in turns (see module doc) until all end.

    `settings` maps a name to (steps iterator, measured run's name, its records, baseline's records);
    a turn ends after `turn` steps of the measured run. Returns, per setting, the record indices that
    open a turn ({"run": ..., "baseline": ...}), which the timing leaves out."""
    opened = {name: {"run": set(), "baseline": set()} for name in settings}
    live = list(order)
    while live:
        for name in list(live):
            steps, measured, recs, base = settings[name]
            opened[name]["run"].add(len(recs))  # the index of the next record: the turn's first step
            opened[name]["baseline"].add(len(base))
            done = 0
            while done < turn:
                who = next(steps, None)
                if who is None:
                    live.remove(name)
                    break
                done += who == measured
    return opened


def _tpot_ms(records, skip: set[int]) -> float:
    steps = [r.time_s for r in records[1:] if r.index not in skip]
    return 1000 * statistics.fmean(steps)


def one_repeat(model, tok, prompt_ids, cfgs, sampling, max_new: int, arena_first: bool, turn: int = TURN) -> dict:
    """{'arena': ms, 'pair': ms, 'arena_baseline': ms, 'pair_baseline': ms}: the measured run's
    (cfgs[0]) and the baseline's time per token in each setting, advanced in turns (see above)."""
    a = Arena(model, tok, prompt_ids, cfgs, sampling, max_new)
    p = Pair(model, tok, prompt_ids, cfgs[0], sampling, max_new)
    name = label(cfgs[0])
    sides = {"arena": (a.sides[name], a.baseline), "pair": (p.pruned, p.baseline)}
    settings = {"arena": (a.steps(), name, a.sides[name].records, a.baseline.records),
                "pair": (p.steps(), PRUNED, p.pruned.records, p.baseline.records)}
    try:
        opened = in_turns(settings, ["arena", "pair"] if arena_first else ["pair", "arena"], turn)
    finally:
        for s in settings.values():
            s[0].close()
    out = {}
    for k, (run, base) in sides.items():
        out[k] = _tpot_ms(run.records, opened[k]["run"])
        out[f"{k}_baseline"] = _tpot_ms(base.records, opened[k]["baseline"])
    return out


def run(model, tok, prompt_ids, cfgs, max_new: int, repeats: int, progress=print) -> dict:
    """Repeats (after one untimed warm-up), the first turn alternating; the ratios' medians and intervals."""
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
    return {"run": label(cfgs[0]), "turn": TURN, "repeats": rows, "ratio": ratio.as_dict(),
            "baseline_ratio": base.as_dict(),
            "met": 1 - TARGET <= ratio.lo and ratio.hi <= 1 + TARGET}


def describe(res: dict, n_runs: int, max_new: int) -> str:
    r, b = res["ratio"], res["baseline_ratio"]
    verdict = "met" if res["met"] else "not met (the interval is not within the target)"
    return (f"{res['run']}: TPOT in an arena of {n_runs} runs / in an A/B pair = {r['value']:.3f} "
            f"(median of {r['n']} repeats, {r['level']:.1%} interval {r['lo']:.3f}..{r['hi']:.3f}; "
            f"{max_new} new tokens, the two settings advanced in turns of {res['turn']} steps)\n"
            f"baseline: {b['value']:.3f} ({b['lo']:.3f}..{b['hi']:.3f})\n"
            f"target: within {TARGET:.0%} (0.95..1.05): {verdict}")
