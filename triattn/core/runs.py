"""One generation run with text and metrics attached, and the default model a user gets.

The one streaming path: the page (two runs interleaved, ab.py), the CLI, bench and soak all run
through `stream_run`, which joins a runner (runner.py: our decode loop or another runtime), the
stream decoder (text) and the metrics (figures) without adding any model logic of its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from .config import EvictionConfig, SamplingConfig
from .engine import StepRecord
from .metrics import RunMetrics, rss_mb, summarize
from ..paths import ASSETS
from .runner import runner_for
from .text import StreamDecoder

DEMO_MODEL = ASSETS / "demo-model"
ENGLISH_MODEL = ASSETS / "smollm2-135m-instruct"


@dataclass
class RunResult:
    """A run as far as it has got; `metrics` is set when it ends (`current_metrics()` before)."""
    eviction: EvictionConfig
    prompt_ids: list
    token_ids: list = field(default_factory=list)
    text: str = ""
    records: list = field(default_factory=list)
    metrics: RunMetrics | None = None
    used: dict = field(default_factory=dict)   # the settings a runtime really ran (runner.describe)
    rss_delta_mb: float = 0.0   # resident memory growth during this run's own steps
    done: bool = False
    runner: object = field(default=None, repr=False)

    def current_metrics(self) -> RunMetrics | None:
        if not self.records:
            return None
        return summarize(self.records, self.runner.kv_bytes_per_token(self.used), 0.0, self.rss_delta_mb,
                         prunes_visible=self.runner.reports_prunes)

    def describe(self) -> str | None:
        """One line on the settings a runtime really ran (ov-genai's block sizes), or None."""
        return self.runner.describe(self.used)


def stream_run(model, tokenizer, prompt_ids, eviction: EvictionConfig, sampling: SamplingConfig,
               max_new_tokens: int, session=None, calibration=None, result: RunResult | None = None,
               **kw) -> Iterator[tuple[StepRecord, str, RunResult]]:
    """Yield (record, new text, the run so far) per token; `result.metrics` is set at the end.

    session: run our loop on this session (else a new one, closed at the end, also when the
    stream is closed early); result: fill this RunResult (else a new one); a runner it already has
    runs the stream (its maker can cancel it from another thread). Memory growth counts this run's
    own steps only, so that two runs interleaved each get their own.
    """
    result = result or RunResult(eviction, list(prompt_ids))
    if result.runner is None:
        result.runner = runner_for(model, eviction, calibration, session)
    steps = result.runner.stream(prompt_ids, sampling, max_new_tokens, used=result.used, **kw)
    decoder = StreamDecoder(tokenizer)
    try:
        while True:
            before = rss_mb()
            try:
                record = next(steps)
            except StopIteration:
                break
            result.rss_delta_mb += rss_mb() - before
            piece = decoder.push(record.token)
            result.records.append(record)
            result.token_ids.append(record.token)
            result.text += piece
            yield record, piece, result
        tail = decoder.flush()
        result.text += tail
        result.done = True
        result.metrics = result.current_metrics()
        if tail:
            yield result.records[-1], tail, result
    finally:
        steps.close()


def raw_run(result, run_index: int = 0, cell=None, mode: str = "") -> dict:
    recs = result.records
    return {
        "run": run_index, "prompt": cell.prompt if cell else 0, "mode": mode,
        "metrics": result.metrics.as_dict(),
        "decode_time_s": sum(r.time_s for r in recs[1:]),
        # prune time inside decode steps; a long prompt's one cut after prefill counts in TTFT
        "decode_prune_time_s": sum(r.prune.time_s for r in recs[1:] if r.prune),
        "kv_decode_max": max((r.kv_len for r in recs[1:]), default=recs[0].kv_len),
        "step_times_s": [r.time_s for r in recs],
        "kv_len": [r.kv_len for r in recs],
        "prune": [{"step": r.index, "time_s": r.prune.time_s, "evicted": r.prune.evicted,
                   "kv_before": r.prune.kv_before, "kv_after": r.prune.kv_after} for r in recs if r.prune],
        "token_ids": list(result.token_ids),
        **({"used": result.used} if result.used else {}),
    }


def run(model, tokenizer, prompt_ids, eviction, sampling=SamplingConfig(), max_new_tokens=200,
        on_text: Callable[[str], None] | None = None, **kw) -> RunResult:
    result = None
    for _, piece, result in stream_run(model, tokenizer, prompt_ids, eviction, sampling, max_new_tokens, **kw):
        if on_text and piece:
            on_text(piece)
    return result


def bundled_models() -> list[Path]:
    """The models shipped in assets/, default first: SmolLM2-135M-Instruct (writes English), then
    the gpt-oss-family demo model (writes Python)."""
    return [d for d in (ENGLISH_MODEL, DEMO_MODEL) if (d / "openvino_model.xml").is_file()]
