"""A/B comparison of a baseline run (full KV cache) and a pruned run of the same prompt.

Scope: what the web page (and `infer --compare`, and `soak`) runs and draws, without Gradio: the two
generations interleaved token by token (each a `runs.stream_run`), the plot data and the headline.
The table is in tables.py; the eviction view (which tokens the cache forgot) in evictview.py.
"""
from __future__ import annotations

import math

import pandas as pd

from ..core.config import EvictionConfig, SamplingConfig, check_max_new_tokens
from ..core.engine import check_request
from .evictview import eviction_summary, eviction_view
from ..core.interleave import interleave
from ..core.metrics import PairFigures, RunMetrics, pair_figures
from ..policies import get_policy
from ..core.quality import Divergence, Quality, compare, first_divergence, teacher_forced
from ..core.runner import check_runnable, runner_for
from ..core.runs import RunResult
from ..core.stats import speed_verdict
from ..core.tables import (BASELINE, DIVERGENCE, PRUNED, describe_divergence, metrics_table, quality_columns,
                           size_text)
from .runset import BASELINE_EVICTION, RunSet


class Pair(RunSet):
    """Baseline and pruned generations on one compiled model, advanced alternately (runset.RunSet:
    `steps()` yields after every token, one cancel() stops both; own_peak as there)."""

    def __init__(self, model, tokenizer, prompt_ids, eviction: EvictionConfig, sampling: SamplingConfig,
                 max_new_tokens: int, pruned_first: bool = False, own_peak: bool = False):
        check_max_new_tokens(max_new_tokens)
        check_request(model.info, len(prompt_ids), eviction, max_new_tokens)
        check_runnable(model, eviction)  # before the baseline runs: a choice its runtime refuses loses nothing
        # Calibration (or its absence) is settled here, before either run starts.
        self.calibration = get_policy(eviction.policy).prepare(model.info.model_dir) if eviction.prunes else None
        # The runners are made here, not when the streams start, so that cancel() reaches them.
        sides = {name: RunResult(e, list(prompt_ids), runner=runner_for(model, e, self.calibration if e.prunes
                                                                         else None))
                 for name, e in ((BASELINE, BASELINE_EVICTION), (PRUNED, eviction))}
        # The first prefill meets colder caches (its TTFT is a single sample); callers alternate the lead.
        order = [PRUNED, BASELINE] if pruned_first else [BASELINE, PRUNED]
        super().__init__(model, tokenizer, prompt_ids, sides, order, interleave, {eviction.policy: self.calibration},
                         sampling, max_new_tokens, own_peak)
        self.quality: Quality | None = None

    @property
    def pruned(self) -> RunResult:
        return self.sides[PRUNED]

    def measure_quality(self) -> Quality:
        """Teacher-forced cost of the pruned run over the baseline's tokens (after both have run).
        Raises errors.Cancelled after cancel()."""
        with self.quality_session() as session:
            b = self.baseline.token_ids
            # the baseline forced over its own tokens, its prompt read in pieces (a Stop ends it between them)
            forced = b and self.pruned.runner.teacher_forcing
            full = teacher_forced(session, self.prompt_ids, b, BASELINE_EVICTION) if forced else None
            self.quality = compare(session, self.prompt_ids, b, self.pruned.token_ids, self.pruned.eviction,
                                   self.calibration, full_forced=full)
        return self.quality

    def figures(self, final: bool) -> dict:
        """What the page draws: the table (None before both runs have a token), the plots' data and,
        once the runs end (`final`), the eviction view and its summary."""
        lat, kv = plot_frames(self.sides)
        out = {"table": self.table(), "latency": lat, "kv": kv}
        if final and not self.pruned.runner.reports_prunes:  # another runtime does not say what it evicted
            out["view"] = out["summary"] = None
        elif final:
            side, n_layers = self.pruned, self.model.info.n_layers
            out["view"] = eviction_view(self.tokenizer, self.prompt_ids, side.token_ids, side.records, n_layers)
            out["summary"] = eviction_summary(side.records, len(self.prompt_ids) + len(side.token_ids), n_layers)
        return out

    def pair_figures(self) -> PairFigures | None:
        """Both runs' figures over the tokens both made (None before both have one)."""
        b, p = self.baseline, self.pruned
        if not b.records or not p.records:
            return None
        return pair_figures(b.records, p.records, (b.runner.kv_bytes_per_token(b.used),
                                                   p.runner.kv_bytes_per_token(p.used)))

    def table(self) -> pd.DataFrame | None:
        b, p, f = self.baseline.current_metrics(), self.pruned.current_metrics(), self.pair_figures()
        if f is None:
            return None
        div = first_divergence(self.baseline.token_ids, self.pruned.token_ids, self.baseline.done, self.pruned.done)
        finished = self.baseline.done and self.pruned.done
        return metrics_table(b, p, f, {DIVERGENCE: describe_divergence(div, self.tokenizer, finished),
                                       **quality_columns(self.quality)}, self.peak_mb)


def plot_frames(pair_sides: dict, runs=(BASELINE, PRUNED)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-token latency, KV cache size) as long tables: token, run, value.

    Latency leaves out step 0 (the prefill, shown as TTFT): it would flatten the rest of the plot.
    Every run in `runs` has a first row with no value (not drawn), so the plot's legend and colours
    know both runs from the start, before either has data.
    """
    lat = [(1, name, math.nan) for name in runs]
    kv = [(0, name, math.nan) for name in runs]
    for name, side in pair_sides.items():
        for r in side.records:
            if r.index > 0:
                lat.append((r.index, name, r.time_s * 1000))
            kv.append((r.index, name, r.kv_len))
    # Fixed dtypes: an empty frame would otherwise make the plot treat the axes as categories.
    types = {"token": int, "run": str}
    return (pd.DataFrame(lat, columns=["token", "run", "ms"]).astype({**types, "ms": float}),
            pd.DataFrame(kv, columns=["token", "run", "KV tokens"]).astype({**types, "KV tokens": float}))


def _change(before, after, smaller: str, larger: str) -> str:
    if before <= 0:
        return "unchanged" if after == before else f"{larger} (baseline was 0)"
    r = (after - before) / before
    if abs(r) < 0.005:
        return "about the same"
    return f"{abs(r) * 100:.0f}% {smaller if r < 0 else larger}"


def _same(div: Divergence | None, n: int) -> str:
    if div is None:
        return f"outputs identical for all {n} tokens" if n != 1 else "outputs identical for the one token"
    if div.index == 0:
        return "outputs differ from the first token"
    first = "the first token" if div.index == 1 else f"the first {div.index} tokens"
    return f"outputs identical for {first}, then they differ"


def _lengths(baseline: RunMetrics, pruned: RunMetrics, f: PairFigures) -> str:
    if f.equal:
        return ""
    return (f" The runs made {baseline.new_tokens} (baseline) and {pruned.new_tokens} (pruned) tokens: speed and "
            f"cache are compared over the first {f.tokens} of each.")


def headline(baseline: RunMetrics, pruned: RunMetrics, figures: PairFigures, div: Divergence | None,
             why_larger: str = "", chunk: int = 0, held: str = "") -> str:
    """One plain sentence: what pruning changed in this pair.

    Speed is the paired change of time per token with its interval (a direction only when the
    interval excludes 0). The KV figure is what each cache held while decoding, over the tokens both
    runs made (a long prompt's cut is said apart: the prompt before its cut is not what decoding ran
    with). `why_larger`: why the pruned cache can be the larger (the runner's `why_larger`: ov-genai
    sizes its cache in whole blocks). `chunk`: the pieces the pruned run read its prompt in.
    `held`: why the pruned cache held more than its budget (the runner's `held`).
    """
    same = _same(div, figures.tokens)
    b_kv, p_kv = figures.kv_bytes
    b_tok, p_tok = figures.kv_tokens
    # the change is of the bytes each cache held (a block pool counts whole blocks), said beside them
    kv = (f"KV cache {_change(b_kv, p_kv, 'smaller', 'larger')} while decoding ({size_text(b_kv)} vs "
          f"{size_text(p_kv)}; {b_tok} vs {p_tok} tokens{': ' + held if held else ''})")
    if why_larger and p_kv > b_kv:
        kv += f", because {why_larger}"
    cut = ""
    if pruned.prompt_cut is not None and pruned.prompt_cut_in_pieces and chunk:
        cut = (f" The pruned run read the prompt's {pruned.prompt_cut[0]} tokens {chunk} at a time, cutting its "
               f"cache to the budget before each piece (together one prune event, within its time to first token), "
               f"and decoded from {pruned.prompt_cut[1]}.")
    elif pruned.prompt_cut is not None:
        cut = f" The prompt's {pruned.prompt_cut[0]} tokens were cut to {pruned.prompt_cut[1]} before decoding."
    lengths = _lengths(baseline, pruned, figures)
    if pruned.prune_events == 0:
        return (f"Nothing was pruned: the cache never went over the budget ({pruned.kv_tokens_max} tokens at most), "
                f"so both runs did the same work and any difference in time is noise; {same}.{lengths}")
    return f"Pruned vs baseline: {speed_verdict(figures.change)}; {kv}; {same}.{lengths}{cut}"
