"""The comparison table, written once: its columns, the Change rule and the first divergence, for the
web page (a DataFrame) and the CLI (`infer --compare`, Markdown).

Columns: the pair's own figures first (where the outputs part, the quality cost: what a reader came
for), then each run's figures, then the comparison's peak memory. Each run's speed and KV figures are
taken over the first `PairFigures.tokens` new tokens of both runs (the shorter run's length), so the
rows compare like with like; the Tokens cell of the Change row says when the lengths differ.

The Change rule, per column: time per token as the paired change of the interleaved step times with
its 95% interval (stats.paired_change), a direction only where the interval excludes 0; throughput
likewise (its inverse); KV tokens and bytes as a percentage of the baseline (they do not vary between
repeats). Not compared: time to first token (which run read its prompt first moves it) and latency
(whole runs of different lengths, TTFT included). Counts the baseline does not have get no change.
Memory is the process's peak over the comparison: both runs ran interleaved in one process, so it is
not split between them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .metrics import PairFigures, RunMetrics
from .quality import Divergence, Quality
from .stats import Interval

BASELINE, PRUNED, CHANGE = "baseline", "pruned", "Change"
UNSEEN = "—"  # a runtime that evicts out of sight (ov-genai) reports no prune events
NOT_COMPARED = "not compared"
DIVERGENCE = "Outputs diverge at"


def share(x: float, n: int) -> str:
    """A share with the count it is of: a quality figure carries the number of tokens behind it."""
    return f"{x:.1%}" + (f" ({round(x * n)} of {n})" if n else "")


QUALITY_COLUMNS = {"Token agreement": lambda q: share(q.agreement, q.compared),
                   "ΔNLL (forced)": lambda q: f"{q.delta_nll:+.3f}",
                   "PPL ratio": lambda q: f"{q.ppl_ratio:.3f}",
                   "Top-1 agreement (forced)": lambda q: share(q.forced_top1_agreement, q.forced)}
RUN_HEADERS = ["Tokens", "TTFT (ms)", "TPOT (ms)", "Throughput (tok/s)", "Latency (s)", "KV tokens",
               "KV size (KiB)", "Prune events", "Prune time (ms)"]
PEAK = "Peak RSS (MB)"


def percent_change(before: float, after: float) -> str:
    """'+12.3%'; '—' where the baseline is 0 (no meaningful ratio)."""
    if before == after:
        return "0.0%"
    if before == 0 or not math.isfinite(before) or not math.isfinite(after):
        return "—"
    return f"{(after - before) / abs(before) * 100:+.1f}%"


def size_text(n_bytes: float) -> str:
    """Bytes in the unit a reader takes in at a glance: KiB below 1 MiB, else MiB, else GiB."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes / 1024:.1f} KiB"


def interval_change(change: Interval | None) -> str:
    """A paired change as a cell: its sign only when its interval excludes 0, with the interval."""
    if change is None:
        return "too few tokens"
    if not change.excludes(0.0):
        return f"no difference (±{max(abs(change.lo), abs(change.hi)) * 100:.1f}%)"
    return f"{change.value * 100:+.1f}% ({change.lo * 100:+.1f} to {change.hi * 100:+.1f})"


def inverse(change: Interval | None) -> Interval | None:
    """The change of 1/x from the change of x (throughput from time per token)."""
    if change is None:
        return None
    return Interval(1 / (1 + change.value) - 1, 1 / (1 + change.hi) - 1, 1 / (1 + change.lo) - 1,
                    change.n, change.level)


def _num(x, fmt: str) -> str:
    return UNSEEN if x is None else fmt.format(x)


def run_cells(m: RunMetrics, f: PairFigures, side: int) -> list[str]:
    """One run's cells (side 0 = baseline, 1 = pruned), in RUN_HEADERS order."""
    tpot = f.tpot_ms[side]
    return [f"{m.new_tokens}", f"{m.ttft_s * 1000:.1f}", _num(tpot, "{:.2f}"),
            _num(1000 / tpot if tpot else None, "{:.1f}"), f"{m.latency_s:.2f}", f"{f.kv_tokens[side]}",
            f"{f.kv_bytes[side] / 1024:.1f}", _num(m.prune_events, "{:.0f}"),
            _num(None if m.prune_time_s is None else m.prune_time_s * 1000, "{:.1f}")]


def change_cells(f: PairFigures) -> list[str]:
    """The Change row, in RUN_HEADERS order (the rule in the module docstring)."""
    lengths = "" if f.equal else f"unequal: the next columns over the first {f.tokens}"
    return [lengths, NOT_COMPARED, interval_change(f.change), interval_change(inverse(f.change)), NOT_COMPARED,
            percent_change(*f.kv_tokens), percent_change(*f.kv_bytes), "", ""]


def rows(baseline: RunMetrics, pruned: RunMetrics, figures: PairFigures,
         pruned_label: str = PRUNED) -> list[list[str]]:
    """baseline, pruned and Change rows (cells as text), in RUN_HEADERS order, the label first."""
    return [[BASELINE] + run_cells(baseline, figures, 0), [pruned_label] + run_cells(pruned, figures, 1),
            [CHANGE] + change_cells(figures)]


def quality_columns(q: Quality | None) -> dict:
    """The pair's quality cost as table columns; blank until measured (and where a runtime has none)."""
    return {h: "" if q is None or getattr(q, "delta_nll", None) is None and h != "Token agreement" else f(q)
            for h, f in QUALITY_COLUMNS.items()}


def peak_cell(peak_mb: float | None) -> str:
    return "" if peak_mb is None else f"{peak_mb:.0f} (both runs)"


def headers() -> list[str]:
    return ["Run", DIVERGENCE, *QUALITY_COLUMNS, *RUN_HEADERS, PEAK]


def metrics_table(baseline: RunMetrics, pruned: RunMetrics, figures: PairFigures, pair_columns: dict | None = None,
                  peak_mb: float | None = None):
    """The page's table (a DataFrame). pair_columns: figures about the pair as a whole (first
    divergence, quality), filled in the Change row only, before the runs' columns; the peak last."""
    import pandas as pd
    pair = {DIVERGENCE: "", **{h: "" for h in QUALITY_COLUMNS}, **(pair_columns or {})}
    out = []
    for row in rows(baseline, pruned, figures):
        last = row[0] == CHANGE
        out.append([row[0]] + [pair[h] if last else "" for h in pair] + row[1:] + [peak_cell(peak_mb) if last else ""])
    return pd.DataFrame(out, columns=["Run", *pair, *RUN_HEADERS, PEAK])


def markdown(baseline: RunMetrics, pruned: RunMetrics, figures: PairFigures, pruned_label: str,
             pair_columns: dict | None = None, peak_mb: float | None = None) -> str:
    """The same table for a terminal: Markdown, pair columns as lines below it."""
    out = table(["Run", *RUN_HEADERS], rows(baseline, pruned, figures, pruned_label))
    lines = [f"{k}: {v}" for k, v in (pair_columns or {}).items() if v]
    if peak_mb is not None:
        lines.append(f"Peak RSS: {peak_mb:.0f} MB (the process, both runs together: they ran interleaved)")
    return "\n".join([out] + lines)


@dataclass(frozen=True)
class Standing:
    """One pruned run of an arena against the baseline: `figures` are baseline vs this run over the
    tokens both made; `answer` whether its output contains the expected answer (None: no expected answer)."""
    label: str
    agreement: float
    delta_nll: float | None     # None: not measured yet, or a runtime that cannot be teacher-forced
    divergence: str
    figures: PairFigures
    prune_time_s: float | None
    answer: bool | None = None
    compared: int = 0           # tokens the agreement is over (the longer output)
    stopped: bool = False       # the run was stopped before it ended (Stop)

    @property
    def agreement_text(self) -> str:
        return share(self.agreement, self.compared)


ANSWER = "Expected answer"
LEADERBOARD = ["Rank", "Run", ANSWER, "ΔNLL (forced)", "Token agreement", DIVERGENCE, "TPOT change vs baseline",
               "KV while decoding", "Prune time (ms)"]


def ranked(standings) -> list:
    """Least quality cost first: by ΔNLL (unmeasured last), then by token agreement (higher first)."""
    return sorted(standings, key=lambda s: (s.delta_nll is None, s.delta_nll or 0.0, -s.agreement))


def answer_cell(kept: bool | None, stopped: bool = False) -> str:
    """kept / lost; a run stopped before it ended that has not said the answer did not get there."""
    if kept is None:
        return ""
    return "kept" if kept else ("not reached (stopped)" if stopped else "lost")


def leaderboard_rows(standings) -> list[list[str]]:
    """The arena's leaderboard, in LEADERBOARD order: TPOT change is the paired change over the tokens
    both runs made (with its interval, a direction only where it excludes 0); KV is what the cache held
    while decoding: tokens, with their change from the baseline's, and the bytes its form counts
    (the paged form's pool: the blocks allocated)."""
    out = []
    for i, s in enumerate(ranked(standings), start=1):
        f = s.figures
        kv = f"{f.kv_tokens[1]} tokens ({percent_change(*f.kv_tokens)}); {size_text(f.kv_bytes[1])}"
        out.append([str(i), s.label, answer_cell(s.answer, s.stopped), _num(s.delta_nll, "{:+.3f}"),
                    s.agreement_text, s.divergence, interval_change(f.change), kv,
                    _num(None if s.prune_time_s is None else s.prune_time_s * 1000, "{:.1f}")])
    return out


def leaderboard(standings):
    """The leaderboard as the page's DataFrame."""
    import pandas as pd
    return pd.DataFrame(leaderboard_rows(standings), columns=LEADERBOARD)


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
