"""A/B comparison of a baseline run (full KV cache) and a pruned run of the same prompt.

Scope: everything the web page shows, computed without Gradio: running the two generations
interleaved token by token, the metrics table, the plot data and the first divergence.
The eviction view (which tokens the cache forgot) is in evictview.py.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Iterator

import pandas as pd

from .config import EvictionConfig, SamplingConfig, check_max_new_tokens
from .engine import check_request, generate
from .metrics import RunMetrics, rss_mb, summarize
from .policies import get_policy
from .quality import Quality, compare
from .runs import backend_for
from .text import StreamDecoder

BASELINE, PRUNED = "baseline", "pruned"
BASELINE_EVICTION = EvictionConfig(policy="none")


def interleave(streams: dict) -> Iterator[tuple[str, object]]:
    """Advance named iterators one item at a time, in turn, yielding (name, item).

    The lead alternates each round (A B, B A, A B, ...) so that neither run always follows the
    other: whatever one step leaves behind in CPU caches is shared out evenly. An iterator that
    ends drops out; the others go on.
    """
    live = dict(streams)
    order = list(streams)
    rounds = 0
    while live:
        for name in (order if rounds % 2 == 0 else order[::-1]):
            if name not in live:
                continue
            try:
                item = next(live[name])
            except StopIteration:
                del live[name]
                continue
            yield name, item
        rounds += 1


@dataclass
class Side:
    """One run of the pair, as far as it has got."""
    name: str
    eviction: EvictionConfig
    records: list = field(default_factory=list)
    token_ids: list = field(default_factory=list)
    text: str = ""
    rss_delta_mb: float = 0.0   # resident memory growth during this run's own steps
    done: bool = False
    used: dict = field(default_factory=dict)  # a backend's actual settings (ov-genai: sizes in blocks)

    def metrics(self, kv_bytes_per_token: int) -> RunMetrics | None:
        if not self.records:
            return None
        backend = backend_for(self.eviction)
        return summarize(self.records, self.used.get("kv_bytes_per_token", kv_bytes_per_token), 0.0,
                         self.rss_delta_mb, prunes_visible=backend is None)


class Pair:
    """Baseline and pruned generations on one compiled model, advanced alternately.

    Each run has its own session (its own KV cache); the steps never overlap, so each step's
    time is its own. `steps()` yields after every token; `notices` collects engine warnings.
    """

    def __init__(self, model, tokenizer, prompt_ids, eviction: EvictionConfig, sampling: SamplingConfig,
                 max_new_tokens: int, pruned_first: bool = False):
        check_max_new_tokens(max_new_tokens)
        check_request(model.info, len(prompt_ids), eviction, max_new_tokens)
        # Calibration (or its absence) is settled here, before either run starts.
        self.calibration = get_policy(eviction.policy).prepare(model.info.model_dir) if eviction.prunes else None
        self.model, self.tokenizer, self.prompt_ids = model, tokenizer, list(prompt_ids)
        self.sides = {BASELINE: Side(BASELINE, BASELINE_EVICTION), PRUNED: Side(PRUNED, eviction)}
        # The first prefill meets colder caches (its TTFT is a single sample); callers alternate the lead.
        self.order = [PRUNED, BASELINE] if pruned_first else [BASELINE, PRUNED]
        self.sampling, self.max_new_tokens = sampling, max_new_tokens
        self.notices: list[str] = []
        self.quality: Quality | None = None

    @property
    def baseline(self) -> Side:
        return self.sides[BASELINE]

    @property
    def pruned(self) -> Side:
        return self.sides[PRUNED]

    def _stream(self, side: Side):
        decoder = StreamDecoder(self.tokenizer)
        backend = backend_for(side.eviction)  # e.g. OpenVINO GenAI's own pipeline for ov-genai
        session = self.model.new_session() if backend is None else None
        if backend is None:
            gen = generate(session, self.prompt_ids, side.eviction, self.sampling,
                           self.max_new_tokens, calibration=self.calibration if side.eviction.prunes else None)
        else:
            gen = backend.generate(self.model, self.prompt_ids, side.eviction, self.sampling, self.max_new_tokens,
                                   used=side.used)
        try:
            while True:
                before = rss_mb()
                try:
                    record = next(gen) if side.records else self._first_step(gen)
                except StopIteration:
                    break
                side.rss_delta_mb += rss_mb() - before
                side.records.append(record)
                side.token_ids.append(record.token)
                side.text += decoder.push(record.token)
                yield record
            side.text += decoder.flush()
            side.done = True
        finally:
            gen.close()
            if session is not None:
                session.close()  # the infer request and its KV cache go now, also on Stop or a closed tab

    def _first_step(self, gen):
        # The engine warns (e.g. budget below a sliding window) when it starts: keep that for the page.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                return next(gen)
            finally:
                self.notices += [m for m in dict.fromkeys(str(w.message) for w in caught) if m not in self.notices]

    def steps(self) -> Iterator[str]:
        """Run both generations to the end; yields the name of the side that just stepped."""
        streams = {name: self._stream(self.sides[name]) for name in self.order}
        try:
            for name, _ in interleave(streams):
                yield name
        finally:
            for s in streams.values():
                s.close()

    def measure_quality(self) -> Quality:
        """Teacher-forced cost of the pruned run over the baseline's tokens (after both have run)."""
        self.quality = compare(self.model.new_session(), self.prompt_ids, self.baseline.token_ids,
                               self.pruned.token_ids, self.pruned.eviction)
        return self.quality

    def table(self) -> pd.DataFrame | None:
        b, p = (s.metrics(self.model.kv_bytes_per_token) for s in (self.baseline, self.pruned))
        if b is None or p is None:
            return None
        div = first_divergence(self.baseline.token_ids, self.pruned.token_ids, self.baseline.done, self.pruned.done)
        finished = self.baseline.done and self.pruned.done
        return metrics_table(b, p, {"Outputs diverge at": describe_divergence(div, self.tokenizer, finished),
                                    **quality_columns(self.quality)})


@dataclass(frozen=True)
class Divergence:
    index: int              # 0-based index among the new tokens
    baseline: int | None    # token id, None where that run had already ended
    pruned: int | None


def first_divergence(a: list, b: list, a_done: bool = True, b_done: bool = True) -> Divergence | None:
    """First new token where the runs differ; None if they agree as far as both have got.

    A run that has ended counts as differing from one that goes on (its token is None);
    a run still going may yet produce the other's next token, so it is not compared.
    """
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return Divergence(i, x, y)
    n = min(len(a), len(b))
    if len(a) != len(b) and ((len(a) == n and a_done) or (len(b) == n and b_done)):
        return Divergence(n, a[n] if len(a) > n else None, b[n] if len(b) > n else None)
    return None


def describe_divergence(div: Divergence | None, tokenizer, finished: bool = False) -> str:
    if div is None:
        return "never (identical outputs)" if finished else "not yet (identical so far)"

    def show(t):
        return "(end)" if t is None else repr(tokenizer.decode([t], skip_special_tokens=False))
    return f"token #{div.index + 1}: {show(div.baseline)} vs {show(div.pruned)}"


# The model card's table, one row per run. (header, value from RunMetrics, number format)
COLUMNS = [
    ("Tokens", lambda m: m.new_tokens, "{:.0f}"),
    ("TTFT (ms)", lambda m: m.ttft_s * 1000, "{:.1f}"),
    ("TPOT (ms)", lambda m: m.tpot_ms, "{:.2f}"),
    ("Throughput (tok/s)", lambda m: m.throughput_tok_s, "{:.1f}"),
    ("Latency (s)", lambda m: m.latency_s, "{:.2f}"),
    ("Memory Δ (MB)", lambda m: m.rss_delta_mb, "{:+.1f}"),
    ("KV tokens", lambda m: m.kv_tokens_max, "{:.0f}"),
    ("KV size (KiB)", lambda m: m.kv_bytes_max / 1024, "{:.1f}"),
    ("Prune events", lambda m: m.prune_events, "{:.0f}"),
    ("Prune time (ms)", lambda m: None if m.prune_time_s is None else m.prune_time_s * 1000, "{:.1f}"),
]
UNSEEN = "—"  # a backend that evicts out of sight (ov-genai) reports no prune events
CHANGE = "Change"


QUALITY_COLUMNS = {"Token agreement": lambda q: f"{q.agreement:.1%}",
                   "ΔNLL (forced)": lambda q: f"{q.delta_nll:+.3f}",
                   "PPL ratio": lambda q: f"{q.ppl_ratio:.3f}",
                   "Top-1 agreement (forced)": lambda q: f"{q.forced_top1_agreement:.1%}"}


def quality_columns(q: Quality | None) -> dict:
    """The pair's quality cost as table columns; blank until measured (and where a backend has none)."""
    return {h: "" if q is None or getattr(q, "delta_nll", None) is None and h != "Token agreement" else f(q)
            for h, f in QUALITY_COLUMNS.items()}


def percent_change(before: float, after: float) -> str:
    """'+12.3%'; '—' where the baseline is 0 (no meaningful ratio)."""
    if before == after:
        return "0.0%"
    if before == 0 or not math.isfinite(before) or not math.isfinite(after):
        return "—"
    return f"{(after - before) / abs(before) * 100:+.1f}%"


def metrics_table(baseline: RunMetrics, pruned: RunMetrics, pair_columns: dict | None = None) -> pd.DataFrame:
    """Rows: baseline, pruned, Change (pruned vs baseline, in %).

    pair_columns: figures about the pair as a whole (first divergence; quality scores such as token
    agreement go here too), one column each, filled in the Change row only.
    """
    rows = []
    for name, m in ((BASELINE, baseline), (PRUNED, pruned)):
        rows.append([name] + [UNSEEN if get(m) is None else fmt.format(get(m)) for _, get, fmt in COLUMNS])
    pairs = [(get(baseline), get(pruned)) for _, get, _ in COLUMNS]
    rows.append([CHANGE] + [UNSEEN if None in ab else percent_change(*ab) for ab in pairs])
    extra = dict(pair_columns or {})
    for row in rows:
        row += [extra[k] if row[0] == CHANGE else "" for k in extra]
    return pd.DataFrame(rows, columns=["Run"] + [h for h, _, _ in COLUMNS] + list(extra))


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


def headline(baseline: RunMetrics, pruned: RunMetrics, div: Divergence | None, used: dict | None = None) -> str:
    """One plain sentence: what pruning changed in this pair.

    The KV figure is what each cache held while decoding (a long prompt's cut is said apart: the
    prompt before its cut is not what decoding ran with). `used`: a backend's actual settings
    (ov-genai sizes its cache in whole blocks, which can make it larger than the baseline's).
    """
    n = min(baseline.new_tokens, pruned.new_tokens)
    same = (f"outputs identical for all {n} tokens" if div is None
            else f"outputs identical for the first {div.index} tokens, then they differ")
    b_kv, p_kv = (m.kv_bytes_max_decode or m.kv_bytes_max for m in (baseline, pruned))
    kv = (f"KV cache {_change(b_kv, p_kv, 'smaller', 'larger')} while decoding "
          f"({baseline.kv_tokens_max_decode or baseline.kv_tokens_max} vs "
          f"{pruned.kv_tokens_max_decode or pruned.kv_tokens_max} tokens)")
    if used and "block_size" in used and p_kv > b_kv:
        kv += (f", because OpenVINO GenAI keeps whole blocks of {used['block_size']} tokens (budget "
               f"{used['requested']['budget']} became {used['max_cache_size']}) in its own cache layout")
    cut = ""
    if pruned.prompt_cut is not None:
        cut = f" The prompt's {pruned.prompt_cut[0]} tokens were cut to {pruned.prompt_cut[1]} before decoding."
    if pruned.prune_events == 0:
        return (f"Nothing was pruned: the cache never went over the budget ({pruned.kv_tokens_max} tokens at most), "
                f"so both runs did the same work and any difference in time is noise; {same}.")
    return (f"Pruned vs baseline: time per token {_change(baseline.tpot_ms, pruned.tpot_ms, 'lower', 'higher')}, "
            f"{kv}, {same}.{cut}")
