"""Aggregation of raw benchmark runs and the text tables the commands print.

Conventions: latency, throughput, memory delta, prune events and prune time are means over runs
(as the model card averaged them); TPOT and TTFT are medians of the per-run medians, TPOT with its
interval over runs (spread.py); the TPOT change is the median of each round's change (the same
run index and prompt on both sides) with its interval. A "Change" is
(pruned - baseline) / baseline in percent, except memory, which is a difference in MB (as the
card's table has it). Quality figures are means over prompts.
"""
from __future__ import annotations

import statistics

from . import spread
from ..core.tables import table  # noqa: F401  (the one Markdown table, used by name across bench)

QUALITY_KEYS = ("agreement", "delta_nll", "ppl_ratio", "forced_top1_agreement")


def _mean(xs):
    """Mean of the values that are there (None: not available, e.g. a backend's prune time)."""
    xs = [x for x in xs if x is not None]
    return statistics.fmean(xs) if xs else None


def _median(xs):
    xs = list(xs)
    return statistics.median(xs) if xs else None


def run_stats(runs: list[dict]) -> dict:
    """Aggregate raw runs (see bench.raw_run) of one prompt/mode, or of one mode over prompts."""
    m = [r["metrics"] for r in runs]
    decode = sum(r["decode_time_s"] for r in runs)
    # prune time inside decode steps; None where the backend hides its evictions (ov-genai)
    known = all(x["prune_time_s"] is not None for x in m)
    prune = sum(r["decode_prune_time_s"] for r in runs) if known else None
    return {
        "runs": len(runs),
        "latency_s": _mean(x["latency_s"] for x in m),
        "tpot_ms": _median(x["tpot_ms"] for x in m),
        "tpot_spread": spread.spread(x["tpot_ms"] for x in m),
        "ttft_ms": _median(1000 * x["ttft_s"] for x in m),
        "throughput_tok_s": _mean(x["throughput_tok_s"] for x in m),
        "rss_delta_mb": _mean(x["rss_delta_mb"] for x in m),
        "new_tokens": _mean(x["new_tokens"] for x in m),
        "kv_tokens_max": max(x["kv_tokens_max"] for x in m),
        "kv_decode_max": max(r["kv_decode_max"] for r in runs),
        "prune_events": _mean(x["prune_events"] for x in m),
        "prune_time_ms": _mean(None if x["prune_time_s"] is None else 1000 * x["prune_time_s"] for x in m),
        "prune_share": None if prune is None else prune / decode if decode > 0 else 0.0,
    }


def quality_stats(qs: list[dict]) -> dict:
    """Means over prompts; a run identical to its baseline counts its full length as the first
    divergence."""
    out = {k: _mean(q[k] for q in qs) for k in QUALITY_KEYS}
    firsts = [q["compared_tokens"] if q["first_divergence"] is None else q["first_divergence"] for q in qs]
    out["first_divergence_mean"] = _mean(firsts)
    out["identical"] = sum(q["first_divergence"] is None for q in qs)
    out["prompts"] = len(qs)
    return out


def pct(new, old):
    return None if new is None or not old else 100.0 * (new - old) / old


def change(base: dict, other: dict) -> dict:
    return {"latency_pct": pct(other["latency_s"], base["latency_s"]),
            "tpot_pct": pct(other["tpot_ms"], base["tpot_ms"]),
            "throughput_pct": pct(other["throughput_tok_s"], base["throughput_tok_s"]),
            "rss_delta_mb_diff": None if None in (other["rss_delta_mb"], base["rss_delta_mb"])
            else other["rss_delta_mb"] - base["rss_delta_mb"],
            "kv_tokens_max_pct": pct(other["kv_tokens_max"], base["kv_tokens_max"])}


def tpot_change(runs: list[dict], base: str, mode: str) -> dict | None:
    """The TPOT change in percent of each round (same run index and prompt), as a spread."""
    by = {(r.get("run", 0), r["prompt"], r["mode"]): r["metrics"]["tpot_ms"] for r in runs}
    rounds = [(k[0], k[1]) for k in by if k[2] == mode and (k[0], k[1], base) in by]
    return spread.spread(100 * (by[(*k, mode)] / by[(*k, base)] - 1) for k in rounds if by[(*k, base)])


def summarize(runs: list[dict], quality: list[dict], mode_names: list[str], n_prompts: int) -> dict:
    """Per-mode aggregates (first mode = the baseline), Change per pruned mode, and per-prompt cells."""
    modes = {}
    for name in mode_names:
        rs = [r for r in runs if r["mode"] == name]
        if rs:
            modes[name] = run_stats(rs)
            qs = [q for q in quality if q["mode"] == name]
            modes[name]["quality"] = quality_stats(qs) if qs else None
    base = modes[mode_names[0]]
    changes = {n: {**change(base, s), "tpot_pct_spread": tpot_change(runs, mode_names[0], n)}
               for n, s in modes.items() if n != mode_names[0]}
    cells = []
    for p in range(n_prompts):
        for name in mode_names:
            rs = [r for r in runs if r["prompt"] == p and r["mode"] == name]
            if rs:
                q = next((q for q in quality if q["prompt"] == p and q["mode"] == name), None)
                cells.append({"prompt": p, "mode": name, **run_stats(rs), "quality": q})
    return {"modes": modes, "change": changes, "cells": cells}


def paired_refs(runs: list[dict], reference_prompt: int, base_name: str = "baseline") -> dict:
    """Step-interleaved runs: the reference baseline's TPOT measured alongside each prompt group
    (median over runs), by group. Empty for runs that were not grouped."""
    out = {}
    for r in runs:
        if "group" in r and r["prompt"] == reference_prompt and r["mode"] == base_name:
            out.setdefault(r["group"], []).append(r["metrics"]["tpot_ms"])
    return {g: statistics.median(xs) for g, xs in out.items()}


def context_rows(summary: dict, lengths: list[int], modes: list[dict], budget_prompt: int,
                 kv_bytes_per_token: int, refs: dict | None = None) -> list[dict]:
    """Per length and pruned mode: TPOTs, ratio, limit ratio (vs the baseline at context = budget:
    the one measured alongside that length where `refs` has it), prune share of decode time, and KV
    bytes during decode against (budget + interval) x bytes/token. A backend mode (with `used`) has
    its own bound in tokens and its own bytes per token."""
    cell = {(c["prompt"], c["mode"]): c for c in summary["cells"]}
    base_name = modes[0]["name"]
    overall = cell[(budget_prompt, base_name)]["tpot_ms"]
    rows = []
    for p, n in enumerate(lengths):
        base = cell[(p, base_name)]
        ref = (refs or {}).get(p, base["tpot_ms"] if p == budget_prompt else overall)
        # the reference also ran beside the other lengths: at its own length, its own group's runs count
        base_tpot = ref if p == budget_prompt else base["tpot_ms"]
        for m in modes[1:]:
            c = cell[(p, m["name"])]
            q = c["quality"] or {}
            used = m.get("used", {})
            per_token = used.get("kv_bytes_per_token", kv_bytes_per_token)
            bound = used.get("kv_bound_tokens", m["budget"] + m["prune_interval"])
            rows.append({"context": n, "mode": m["name"], "baseline_tpot_ms": base_tpot,
                         "pruned_tpot_ms": c["tpot_ms"], "ratio": ratio(c["tpot_ms"], base_tpot),
                         "ref_tpot_ms": ref, "limit_ratio": ratio(c["tpot_ms"], ref), "prune_share": c["prune_share"],
                         "kv_decode_bytes": c["kv_decode_max"] * per_token, "kv_bound_bytes": bound * per_token,
                         "agreement": q.get("agreement"), "delta_nll": q.get("delta_nll")})
    return rows


def ratio(a, b):
    return a / b if a is not None and b else None


def _round_tpot(runs: list[dict], prompt: int, mode: str, group: int | None = None) -> dict:
    """run index -> that run's TPOT, for one prompt and mode (and step-interleaved group)."""
    return {r.get("run", 0): r["metrics"]["tpot_ms"] for r in runs if r["prompt"] == prompt and r["mode"] == mode
            and (group is None or r.get("group", group) == group)}


def context_spreads(rows: list[dict], runs: list[dict], lengths: list[int], base_name: str,
                    budget_prompt: int) -> None:
    """Add to each context row the spread over runs of its ratio and its limit ratio: each run's
    pruned TPOT over the baseline of the same run index (and, step-interleaved, the reference that
    advanced beside it)."""
    grouped = any("group" in r for r in runs)
    for row in rows:
        p = lengths.index(row["context"])
        pruned = _round_tpot(runs, p, row["mode"])
        base = _round_tpot(runs, p, base_name, p if grouped else None)
        ref = _round_tpot(runs, budget_prompt, base_name, p if grouped else None)
        for key, den in (("ratio_spread", base), ("limit_ratio_spread", ref)):
            keys = [k for k in pruned if k in den]
            row[key] = spread.spread(spread.paired_ratios([pruned[k] for k in keys], [den[k] for k in keys]))


# ---- text tables ---------------------------------------------------------------------------------

def _pct(x):
    return None if x is None else 100 * x


def fmt(x, spec: str = ".2f", suffix: str = "") -> str:
    return "–" if x is None else f"{x:{spec}}{suffix}"


def fmt_bytes(n) -> str:
    if n is None:
        return "–"
    for unit, size in (("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def header_line(machine: dict) -> str:
    return (f"machine: {machine['cpu']} ({machine['cores_logical']} logical / {machine['cores_physical']} "
            f"physical cores) | device: {machine['device']} ({machine['device_name']}) | precision: "
            f"{machine['precision']} (KV cache {machine['kv_cache_precision']}) | OpenVINO "
            f"{machine['openvino'].split('-')[0]} | model: {machine['model_dir']}")


def mode_table(summary: dict) -> str:
    headers = ["Mode", "Avg Latency (s)", "TPOT (ms/tok, median [interval] runs)", "Throughput (tok/s)", "Mem Δ (MB)",
               "KV tokens max", "Prune events", "Prune time (ms)", "Agreement", "First div.", "ΔNLL",
               "PPL ratio", "Top-1 (forced)"]
    rows = []
    for name, s in summary["modes"].items():
        q = s.get("quality") or {}
        rows.append([name, fmt(s["latency_s"], ".3f"), spread.fmt(s.get("tpot_spread"), ".2f"),
                     fmt(s["throughput_tok_s"], ".1f"),
                     fmt(s["rss_delta_mb"], "+.1f"), s["kv_tokens_max"], fmt(s["prune_events"], ".1f"),
                     fmt(s["prune_time_ms"], ".1f"), fmt(q.get("agreement"), ".1%"),
                     _first_div(q), fmt(q.get("delta_nll"), "+.3f"),
                     fmt(q.get("ppl_ratio"), ".3f"), fmt(q.get("forced_top1_agreement"), ".1%")])
    for name, c in summary["change"].items():
        rows.append([f"Change ({name})", fmt(c["latency_pct"], "+.1f", "%"), _pct_spread(c.get("tpot_pct_spread")),
                     fmt(c["throughput_pct"], "+.1f", "%"), fmt(c["rss_delta_mb_diff"], "+.1f", " MB"),
                     fmt(c["kv_tokens_max_pct"], "+.1f", "%")] + [""] * 7)
    return table(headers, rows)


def _pct_spread(s: dict | None) -> str:
    """A change in percent: the median of each round's change, with its interval and count."""
    if s is None:
        return "–"
    if s["n"] < 2:
        return f"{s['value']:+.1f}% (n=1)"
    return f"{s['value']:+.1f}% [{s['lo']:+.1f}, {s['hi']:+.1f}] n={s['n']}, {s['level']:.0%}"


def _first_div(q: dict) -> str:
    """Mean first divergence over prompts; 'never' when no prompt's outputs differed (the mean would
    only be the number of tokens compared)."""
    if q and q.get("prompts") and q.get("identical") == q.get("prompts"):
        return "never"
    return fmt(q.get("first_divergence_mean"), ".1f")


def prompt_table(summary: dict, labels: list[str]) -> str:
    headers = ["Prompt", "Mode", "Latency (s)", "TPOT (ms)", "Throughput (tok/s)", "Mem Δ (MB)", "Agreement",
               "First div.", "ΔNLL"]
    rows = []
    for c in summary["cells"]:
        q = c["quality"] or {}
        first = q.get("first_divergence", "–") if q else "–"
        rows.append([labels[c["prompt"]], c["mode"], fmt(c["latency_s"], ".3f"), fmt(c["tpot_ms"]),
                     fmt(c["throughput_tok_s"], ".1f"), fmt(c["rss_delta_mb"], "+.1f"),
                     fmt(q.get("agreement"), ".1%"), "none" if q and first is None else first,
                     fmt(q.get("delta_nll"), "+.3f")])
    return table(headers, rows, left=2)


def _ratio_cell(row: dict, key: str) -> str:
    s = row.get(f"{key}_spread")
    return spread.fmt(s, ".2f") if s else fmt(row[key])


def context_table(rows: list[dict], budget: int) -> str:
    headers = ["Context", "Mode", "Baseline TPOT (ms)", "Pruned TPOT (ms)", f"Baseline at {budget} (ms)", "Ratio",
               "Limit ratio", "Prune % of decode", "KV max (decode)", "KV bound", "Agreement", "ΔNLL"]
    body = [[r["context"], r["mode"], fmt(r["baseline_tpot_ms"]), fmt(r["pruned_tpot_ms"]), fmt(r["ref_tpot_ms"]),
             _ratio_cell(r, "ratio"), _ratio_cell(r, "limit_ratio"), fmt(_pct(r["prune_share"]), ".1f", "%"),
             fmt_bytes(r["kv_decode_bytes"]), fmt_bytes(r["kv_bound_bytes"]), fmt(r["agreement"], ".1%"),
             fmt(r["delta_nll"], "+.3f")] for r in rows]
    note = (f"Ratio = pruned / baseline TPOT at the same context (with runs: the median of each run's ratio, "
            f"its interval, runs and level); limit ratio = pruned TPOT / baseline TPOT at "
            f"context = budget ({budget} tokens; with --interleave steps, measured alongside each length). KV "
            f"bound = (budget + prune interval) x bytes per token; for ov-genai, (max_cache_size + block) x its "
            f"bytes per token, and it evicts nothing before the first decode step has attended to the whole prompt.")
    return table(headers, body, left=2) + "\n" + note
