"""What the page's A/B pair (ab.py) and its arena (arena.py) share: runs of one prompt on one
compiled model, each a `runs.stream_run` with its own session (hence its own KV cache), advanced one
token at a time in turn; one cancel() for all; and the session the teacher-forced quality
measurement reads from. The steps never overlap, so each step's time is its own.
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Iterator

from ..core.config import DEFAULT_PREFILL_CHUNK, full_cache
from ..core.metrics import peak_rss_mb, reset_peak_rss, trim_heap
from ..core.runs import RunResult, stream_run
from ..core.tables import BASELINE

# The baseline reads a long prompt in pieces too: a Stop ends a run between two forwards, and one
# forward over a whole prompt of thousands of tokens takes tens of seconds on a busy CPU. With nothing
# evicted, pieces give the cache and logits of a whole prefill (engine.py). Its pieces are smaller than
# the pruned run's (which attend to at most budget - 1 + piece tokens): late in a 5,262-token prompt a
# piece attends to all that came before, and on a loaded 2-core machine the longest of 256 tokens took
# 12 s against 21-27 s at 512, for the same whole prefill (135-150 s both).
BASELINE_CHUNK = DEFAULT_PREFILL_CHUNK // 2
BASELINE_EVICTION = full_cache(prefill_chunk=BASELINE_CHUNK)


class RunSet:
    """The runs in `sides` (name -> RunResult with its runner, the baseline under BASELINE),
    advanced by `take_turns` (interleave.interleave or .rotate) over `order`; `calibrations` maps a
    pruning policy's name to its calibration.

    own_peak: measure the process's peak RSS over the runs (`peak_mb`) by starting the process's
    high-water mark again, for a caller whose process does nothing else meanwhile (the page,
    `infer --compare`; not a soak that reads its own). `notices`: the engine's warnings."""

    def __init__(self, model, tokenizer, prompt_ids, sides: dict, order: list[str], take_turns, calibrations: dict,
                 sampling, max_new_tokens: int, own_peak: bool):
        self.model, self.tokenizer, self.prompt_ids = model, tokenizer, list(prompt_ids)
        self.calibrations = calibrations  # policy name -> its calibration, settled before any run starts
        self.sides, self.order, self._take_turns = sides, order, take_turns
        self.sampling, self.max_new_tokens = sampling, max_new_tokens
        self.notices: list[str] = []
        self.own_peak = own_peak
        self.peak_mb: float | None = None  # the process's peak RSS over the runs (own_peak, where it can be reset)
        self._quality_session = None
        self.cancelled = False

    @property
    def baseline(self) -> RunResult:
        return self.sides[BASELINE]

    def calibration_of(self, side: RunResult):
        return self.calibrations.get(side.eviction.policy) if side.eviction.prunes else None

    def cancel(self) -> None:
        """Stop every run, or the quality measurement, from another thread (the page's Stop): each
        ends at its next forward with errors.Cancelled."""
        self.cancelled = True
        for side in self.sides.values():
            side.runner.cancel()
        if self._quality_session is not None:
            self._quality_session.cancel()

    def _stream(self, side: RunResult):
        stream = stream_run(self.model, self.tokenizer, self.prompt_ids, side.eviction, self.sampling,
                            self.max_new_tokens, calibration=self.calibration_of(side), result=side)
        try:
            yield self._first_step(stream)
            yield from stream
        except StopIteration:
            return
        finally:
            stream.close()  # the session and its KV cache go now, also on Stop or a closed tab

    def _first_step(self, stream):
        # The engine warns (e.g. budget below a sliding window) when it starts: keep that for the page.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                return next(stream)
            finally:
                self.notices += [m for m in dict.fromkeys(str(w.message) for w in caught) if m not in self.notices]

    def steps(self) -> Iterator[str]:
        """Run every generation to its end, in turn; yields the name of the run that just stepped."""
        streams = {name: self._stream(self.sides[name]) for name in self.order}
        reset = self.own_peak and reset_peak_rss()  # the peak of these runs, not of the process's past
        try:
            for name, _ in self._take_turns(streams):
                yield name
        finally:
            for s in streams.values():
                s.close()
            self.peak_mb = peak_rss_mb() if reset else None
            trim_heap()  # the runs' buffers are free now: give the pages back (see trim_heap)

    @contextmanager
    def quality_session(self):
        """A session of its own for the teacher-forced measurement, which cancel() also reaches."""
        session = self._quality_session = self.model.new_session()
        if self.cancelled:
            session.cancel()
        try:
            yield session
        finally:
            self._quality_session = None
            session.close()
