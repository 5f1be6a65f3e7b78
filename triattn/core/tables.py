"""The comparison table, written once: its columns, the Change rule and the first divergence, for the
web page (a DataFrame) and the CLI (`infer --compare`, Markdown).

The Change rule, per column: a percentage of the baseline where the baseline is well above its
noise (time per token, throughput, latency, KV tokens and bytes); a difference in the column's unit
where a percentage would mislead: memory growth (often a few MB, or 0), and time to first token,
which depends on which run prefilled first (the first prompt read meets colder caches). Counts
that the baseline does not have (prune events) get no change.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from .metrics import RunMetrics
from .quality import Divergence, Quality

BASELINE, PRUNED, CHANGE = "baseline", "pruned", "Change"
UNSEEN = "—"  # a runtime that evicts out of sight (ov-genai) reports no prune events


@dataclass(frozen=True)
class Column:
    header: str
    get: Callable[[RunMetrics], float | None]
    fmt: str
    change: str = "pct"      # "pct": percent of the baseline; "diff": difference in `unit`; "": none
    unit: str = ""


COLUMNS = [
    Column("Tokens", lambda m: m.new_tokens, "{:.0f}", ""),
    Column("TTFT (ms)", lambda m: m.ttft_s * 1000, "{:.1f}", "diff", " ms"),   # run order moves it
    Column("TPOT (ms)", lambda m: m.tpot_ms, "{:.2f}"),
    Column("Throughput (tok/s)", lambda m: m.throughput_tok_s, "{:.1f}"),
    Column("Latency (s)", lambda m: m.latency_s, "{:.2f}"),
    Column("Memory Δ (MB)", lambda m: m.rss_delta_mb, "{:+.1f}", "diff", " MB"),
    # what the cache held while decoding: a long prompt before its cut is not what decoding ran with
    Column("KV tokens", lambda m: m.kv_tokens_max_decode or m.kv_tokens_max, "{:.0f}"),
    Column("KV size (KiB)", lambda m: (m.kv_bytes_max_decode or m.kv_bytes_max) / 1024, "{:.1f}"),
    Column("Prune events", lambda m: m.prune_events, "{:.0f}", ""),
    Column("Prune time (ms)", lambda m: None if m.prune_time_s is None else m.prune_time_s * 1000, "{:.1f}", ""),
]

QUALITY_COLUMNS = {"Token agreement": lambda q: f"{q.agreement:.1%}",
                   "ΔNLL (forced)": lambda q: f"{q.delta_nll:+.3f}",
                   "PPL ratio": lambda q: f"{q.ppl_ratio:.3f}",
                   "Top-1 agreement (forced)": lambda q: f"{q.forced_top1_agreement:.1%}"}


def percent_change(before: float, after: float) -> str:
    """'+12.3%'; '—' where the baseline is 0 (no meaningful ratio)."""
    if before == after:
        return "0.0%"
    if before == 0 or not math.isfinite(before) or not math.isfinite(after):
        return "—"
    return f"{(after - before) / abs(before) * 100:+.1f}%"


def change(column: Column, before, after) -> str:
    """The Change cell of `column` (the rule in the module docstring)."""
    if not column.change:
        return ""
    if before is None or after is None:
        return UNSEEN
    if column.change == "diff":
        return f"{after - before:+.1f}{column.unit}"
    return percent_change(before, after)


def rows(baseline: RunMetrics, pruned: RunMetrics, pruned_label: str = PRUNED) -> list[list[str]]:
    """baseline, pruned and Change rows (cells as text), in COLUMNS order, the label first."""
    out = [[label] + [UNSEEN if c.get(m) is None else c.fmt.format(c.get(m)) for c in COLUMNS]
           for label, m in ((BASELINE, baseline), (pruned_label, pruned))]
    out.append([CHANGE] + [change(c, c.get(baseline), c.get(pruned)) for c in COLUMNS])
    return out


def quality_columns(q: Quality | None) -> dict:
    """The pair's quality cost as table columns; blank until measured (and where a runtime has none)."""
    return {h: "" if q is None or getattr(q, "delta_nll", None) is None and h != "Token agreement" else f(q)
            for h, f in QUALITY_COLUMNS.items()}


def metrics_table(baseline: RunMetrics, pruned: RunMetrics, pair_columns: dict | None = None):
    """The page's table (a DataFrame). pair_columns: figures about the pair as a whole (first
    divergence, quality), one column each, filled in the Change row only."""
    import pandas as pd
    table = rows(baseline, pruned)
    extra = dict(pair_columns or {})
    for row in table:
        row += [extra[k] if row[0] == CHANGE else "" for k in extra]
    return pd.DataFrame(table, columns=headers() + list(extra))


def headers() -> list[str]:
    return ["Run"] + [c.header for c in COLUMNS]


def markdown(baseline: RunMetrics, pruned: RunMetrics, pruned_label: str, pair_columns: dict | None = None) -> str:
    """The same table for a terminal: Markdown, pair columns as lines below it."""
    out = table(headers(), rows(baseline, pruned, pruned_label))
    return "\n".join([out] + [f"{k}: {v}" for k, v in (pair_columns or {}).items() if v])


def describe_divergence(div: Divergence | None, tokenizer, finished: bool = False) -> str:
    if div is None:
        return "never (identical outputs)" if finished else "not yet (identical so far)"

    def show(t):
        return "(end)" if t is None else repr(tokenizer.decode([t], skip_special_tokens=False))
    return f"token #{div.index + 1}: {show(div.baseline)} vs {show(div.pruned)}"


def table(headers: list[str], rows: list[list], left: int = 1) -> str:
    """A Markdown table; the first `left` columns are left-aligned, the rest right-aligned."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(r):
        return "| " + " | ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in
                                 enumerate(zip(r, widths))) + " |"
    sep = "|" + "|".join(("-" * (w + 2)) if i < left else ("-" * (w + 1) + ":") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(headers), sep] + [line(r) for r in cells])
