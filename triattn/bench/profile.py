"""Where a decode step's time goes, baseline vs pruned: input preparation, infer, output reads,
pruning (amortised over steps) and the rest of the loop (sampling, bookkeeping). Medians over
decode steps, runs interleaved; the prefill step is excluded."""
from __future__ import annotations

import statistics
from collections import defaultdict

from ..core.config import EvictionConfig
from ..core.engine import generate

PHASES = ("inputs", "infer", "outputs", "prune", "loop")


def profile_run(model, prompt_ids, eviction: EvictionConfig, max_new_tokens: int) -> dict:
    session = model.new_session()
    session.timings = defaultdict(list)
    records = list(generate(session, prompt_ids, eviction, max_new_tokens=max_new_tokens))
    t = {k: v[1:] for k, v in session.timings.items()}  # drop the prefill
    steps = records[1:]
    prune = [r.prune.time_s if r.prune else 0.0 for r in steps]
    loop = [r.time_s - i - o - x - p for r, i, o, x, p in zip(steps, t["inputs"], t["infer"], t["outputs"], prune)]
    return {"inputs": t["inputs"], "infer": t["infer"], "outputs": t["outputs"], "prune": prune, "loop": loop,
            "step": [r.time_s for r in steps]}


def profile(model, prompt_ids, modes: dict, max_new_tokens: int, runs: int) -> dict:
    """modes: name -> EvictionConfig. Returns name -> phase -> (median ms, mean ms)."""
    for cfg in modes.values():  # warm-up, not counted
        list(generate(model.new_session(), prompt_ids, cfg, max_new_tokens=8))
    acc = {name: defaultdict(list) for name in modes}
    for _ in range(runs):
        for name, cfg in modes.items():
            for phase, xs in profile_run(model, prompt_ids, cfg, max_new_tokens).items():
                acc[name][phase] += xs
    return {name: {phase: (1000 * statistics.median(xs), 1000 * statistics.fmean(xs))
                   for phase, xs in phases.items()} for name, phases in acc.items()}


def table(result: dict) -> str:
    cols = PHASES + ("step",)
    lines = ["| Mode | " + " | ".join(f"{c} (ms)" for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, phases in result.items():
        lines.append(f"| {name} | " + " | ".join(f"{phases[c][0]:.2f} / {phases[c][1]:.2f}" for c in cols) + " |")
    return "\n".join(lines) + "\n(median / mean per decode step; prune is amortised: 0 on most steps)"
