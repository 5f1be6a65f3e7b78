"""Soak test: many A/B comparisons in one process, as the web page runs them, and how much the
process's resident memory (RSS) grows once it is warm.

Scope: the page's work per Generate without Gradio or a browser: a Pair (baseline and pruned run
interleaved token by token, each on its own infer request of one shared compiled model), then the
figures the page draws at the end (metrics table, plot data, eviction view). Prompts are taken in
turn. The first `warmup` comparisons fill what a process fills once (compiled kernels for new
shapes, allocator pools); RSS is read after them and after the `runs` that follow, both after a
garbage collection. Growth over `limit_mb`, or an infer request still open at the end, fails.
"""
from __future__ import annotations

import gc
from dataclasses import asdict, dataclass
from typing import Callable

from ..web.ab import Pair
from ..core.config import EvictionConfig, SamplingConfig
from ..core.inputs import prompt_ids
from ..core.metrics import peak_rss_mb, rss_mb


@dataclass(frozen=True)
class SoakResult:
    runs: int
    warmup: int
    rss_start_mb: float      # before the first comparison (model compiled and warmed up)
    rss_warm_mb: float       # after the warm-up comparisons
    rss_end_mb: float        # after the measured comparisons
    limit_mb: float
    open_requests: int       # infer requests not freed at the end (should be 0)
    tokens: int              # new tokens generated in the measured comparisons, both runs
    peak_rss_mb: float | None = None  # the process's high-water mark at the end (None: not kept by the OS)

    @property
    def growth_mb(self) -> float:
        return self.rss_end_mb - self.rss_warm_mb

    @property
    def ok(self) -> bool:
        return self.growth_mb <= self.limit_mb and self.open_requests == 0

    def as_dict(self) -> dict:
        return {**asdict(self), "growth_mb": self.growth_mb, "ok": self.ok}

    def summary(self) -> str:
        verdict = "OK" if self.ok else "FAILED"
        return (f"RSS after {self.warmup} warm-up comparisons: {self.rss_warm_mb:.1f} MB; after {self.runs} more: "
                f"{self.rss_end_mb:.1f} MB; growth {self.growth_mb:+.1f} MB (limit {self.limit_mb:g} MB); "
                f"infer requests still open: {self.open_requests}; "
                + (f"peak RSS {self.peak_rss_mb:.1f} MB; " if self.peak_rss_mb is not None else "") + verdict)


def one_comparison(model, tokenizer, ids, eviction, sampling, max_new_tokens, pruned_first) -> Pair:
    """One Generate as the page does it, start to end."""
    pair = Pair(model, tokenizer, ids, eviction, sampling, max_new_tokens, pruned_first=pruned_first)
    for _ in pair.steps():
        pass
    pair.figures(final=True)
    return pair


def soak(model, tokenizer, prompts: list, eviction: EvictionConfig = EvictionConfig(),
         sampling: SamplingConfig = SamplingConfig(), max_new_tokens: int = 200, runs: int = 50,
         warmup: int = 5, limit_mb: float = 50.0, chat: bool = True,
         on_run: Callable[[int, Pair, float], None] | None = None) -> SoakResult:
    """`warmup` + `runs` comparisons; on_run(index, pair, rss_mb) after each (index from 0).

    prompts: texts (put in the chat template if `chat`) or lists of token ids (taken as they are).
    """
    if runs < 1 or warmup < 0:
        raise ValueError("runs must be at least 1 and warm-up at least 0")
    if not prompts:
        raise ValueError("no prompts to run")
    ids = [prompt_ids(tokenizer, p, model.info.max_context, chat) if isinstance(p, str) else list(p)
           for p in prompts]
    gc.collect()
    start = warm = rss_mb()
    tokens = 0
    for i in range(warmup + runs):
        pair = one_comparison(model, tokenizer, ids[i % len(ids)], eviction, sampling, max_new_tokens, i % 2 == 1)
        if i >= warmup:
            tokens += len(pair.baseline.token_ids) + len(pair.pruned.token_ids)
        if on_run:
            on_run(i, pair, rss_mb())
        del pair  # nothing of a finished comparison is kept, as on the page
        if i == warmup - 1:
            gc.collect()
            warm = rss_mb()
    gc.collect()
    return SoakResult(runs, warmup, start, warm, rss_mb(), limit_mb, model.live_sessions(), tokens,
                      peak_rss_mb())
