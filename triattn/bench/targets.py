"""The performance targets, checked in one command: pruning must pay for itself against the baseline.

Two scenarios, each one bench run (warm-ups excluded, medians), with `hard` compaction at the
default prune interval:
- card: the model card's benchmark (its three ~20-token prompts, 200 new tokens, budget 128,
  recent window 32), where the card's own pruning made decoding 2.17x slower;
- long: a 2048-token context from the shipped text, budget 256, 100 new tokens, and the baseline
  at context = budget for the limit ratio, advancing alongside the other two.

Figures and targets: (1) card pruned / baseline TPOT <= 1.02; (2) long pruned / baseline TPOT
<= 0.85 and limit ratio (pruned at 2048 / baseline at 256) <= 1.05; (3) prune events <= 2% of
decode time; (4) KV bytes during decode never above (budget + interval) x bytes per token.
TPOT figures come from step-interleaved runs (baseline and pruned advance one token each in turn),
which cancels the drift of a shared machine. Memory is probed apart: process RSS after a baseline
run and after a pruned run of the 2048-token prompt, each alone on the model.
Beside (2) stands its floor, baseline TPOT at 256 / at 2048: a pruned run cannot beat a baseline
whose cache holds only the budget, so where the floor is above 0.85 the model and machine, not
the pruning, put that target out of reach.
"""
from __future__ import annotations

from . import plan as bench
from . import report
from ..core.metrics import rss_mb
from ..core.runs import run as run_once

CARD = dict(budget=128, recent_window=32, max_new_tokens=200)
LONG = dict(context=2048, budget=256, recent_window=32, max_new_tokens=100)
LIMITS = {"card_ratio": 1.02, "long_ratio": 0.85, "long_limit_ratio": 1.05, "prune_share": 0.02}


def _modes(policy: str, sink_tokens: int, s: dict):
    return bench.make_modes([policy], ["hard"], [s["budget"]], s["recent_window"], sink_tokens, None)


def _scenario(model, tok, plan, sampling, max_new_tokens, runs, bar):
    result = bench.benchmark(model, tok, plan, sampling, max_new_tokens, runs, bar=bar, interleave="steps")
    names = [m.name for m in plan.modes]
    result["summary"] = report.summarize(result["runs"], result["quality"], names, len(plan.prompts))
    return result


def run(model, tok, sampling, runs: int, policy: str = "knorm", sink_tokens: int = 4, chat: bool = True,
        bar=None) -> dict:
    """Both scenarios, then the figures. Returns everything for the JSON report."""
    card_modes = _modes(policy, sink_tokens, CARD)
    card_plan = bench.prompt_plan(bench.text_prompts(tok, bench.read_prompts(bench.CARD_PROMPTS), chat), card_modes)
    card = _scenario(model, tok, card_plan, sampling, CARD["max_new_tokens"], runs, bar)

    long_modes = _modes(policy, sink_tokens, LONG)
    n = LONG["max_new_tokens"]
    prompts = bench.context_prompts(tok, [LONG["context"]], n, model.info.max_context)
    at_budget = bench.context_prompts(tok, [LONG["budget"]], n, model.info.max_context)[0]
    long_plan = bench.context_plan(prompts, long_modes, at_budget, 1)
    long = _scenario(model, tok, long_plan, sampling, n, runs, bar)
    bpt = card["machine"]["kv_bytes_per_token"]
    long["context_rows"] = report.context_rows(long["summary"], [LONG["context"]], long["modes"], 1, bpt,
                                               report.paired_refs(long["runs"], 1))
    memory = memory_probe(model, tok, prompts[0].ids, long_modes[1].eviction, sampling)
    return {"card": card, "long": long, "memory": memory, "figures": figures(card, long, memory, bpt)}


def memory_probe(model, tok, ids, pruned, sampling, new_tokens: int = 16) -> dict:
    """Process RSS (MB) before, after a baseline run and after a pruned run of `ids`, each run alone."""
    out = {"before_mb": rss_mb()}
    for name, cfg in (("baseline", bench.FULL), ("pruned", pruned)):
        run_once(model, tok, ids, cfg, sampling, new_tokens)
        out[f"{name}_mb"] = rss_mb()
    return out


def _kv(mode: dict, stats: dict, bpt: int) -> tuple[int, int]:
    return stats["kv_decode_max"] * bpt, (mode["budget"] + mode["prune_interval"]) * bpt


def figures(card: dict, long: dict, memory: dict, bpt: int) -> list[dict]:
    """One row per figure: what was measured, its target, whether it was met (None: no target)."""
    c_base, c_mode = card["modes"][0]["name"], card["modes"][1]
    c_stats = card["summary"]["modes"]
    row = long["context_rows"][0]
    l_cells = {(x["prompt"], x["mode"]): x for x in long["summary"]["cells"]}
    floor = report.ratio(row["ref_tpot_ms"], row["baseline_tpot_ms"])
    l_mode, l_stats = long["modes"][1], l_cells[(0, long["modes"][1]["name"])]
    card_ratio = report.ratio(c_stats[c_mode["name"]]["tpot_ms"], c_stats[c_base]["tpot_ms"])
    rows = [
        ("1", f"card scenario: pruned / baseline TPOT ({c_mode['name']})", card_ratio, LIMITS["card_ratio"], ""),
        ("2", f"{LONG['context']} tokens, budget {LONG['budget']}: pruned / baseline TPOT", row["ratio"],
         LIMITS["long_ratio"], f"floor {report.fmt(floor)} (baseline at {LONG['budget']} / at {LONG['context']})"),
        ("2", f"{LONG['context']} tokens: limit ratio (pruned / baseline at {LONG['budget']})", row["limit_ratio"],
         LIMITS["long_limit_ratio"], ""),
        ("3", "card scenario: prune time / decode time", c_stats[c_mode["name"]]["prune_share"],
         LIMITS["prune_share"], f"interval {c_mode['prune_interval']}"),
        ("3", f"{LONG['context']} tokens: prune time / decode time", row["prune_share"], LIMITS["prune_share"],
         f"interval {l_mode['prune_interval']}"),
    ]
    out = [{"figure": f, "what": what, "value": v, "target": t, "met": None if v is None else v <= t, "note": note}
           for f, what, v, t, note in rows]
    for label, mode, stats in (("card scenario", c_mode, c_stats[c_mode["name"]]),
                               (f"{LONG['context']} tokens", l_mode, l_stats)):
        used, bound = _kv(mode, stats, bpt)
        out.append({"figure": "4", "what": f"{label}: KV bytes max during decode", "value": used, "target": bound,
                    "met": used <= bound, "note": "bound (budget + interval) x bytes per token", "bytes": True})
    out.append({"figure": "4", "what": f"{LONG['context']} tokens: process RSS after a pruned run (each run alone)",
                "value": memory["pruned_mb"], "target": memory["baseline_mb"], "met": None, "mb": True,
                "note": f"no target; {memory['before_mb']:.0f} MB before both runs"})
    return out


def _value(r: dict, key: str) -> str:
    if r.get("bytes"):
        return report.fmt_bytes(r[key])
    if r.get("mb"):
        return report.fmt(r[key], ".0f", " MB")
    if r["figure"] == "3":
        return report.fmt(None if r[key] is None else 100 * r[key], ".2f", "%")
    return report.fmt(r[key], ".3f")


def table(rows: list[dict]) -> str:
    body = []
    for r in rows:
        met = "–" if r["met"] is None else ("yes" if r["met"] else "NO")
        target = ("after baseline: " if r.get("mb") else "<= ") + _value(r, "target")
        body.append([r["figure"], r["what"], _value(r, "value"), target, met, r["note"]])
    return report.table(["#", "Figure", "Measured", "Target", "Met", "Note"], body, left=2)
