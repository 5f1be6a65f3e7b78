"""How a run is executed, chosen in one place: our decode loop, or OpenVINO GenAI's own pipeline.

A policy either scores cached tokens for our decode loop (engine.py), or names a runtime that evicts
by itself (`Policy.runtime`: ov-genai runs inside OpenVINO GenAI's paged-attention pipeline,
genai.py). `runner_for` is the one place that looks at which; everything else asks the runner what
it can do:

- `stream(...)`: the engine's StepRecords, one per generated token (record 0 = prefill);
- `teacher_forcing`: whether it can be fed given tokens (the quality measures need it);
- `reports_prunes`: whether its prune events are observable;
- `describe(used)`: one line on the settings it really ran (`used` is filled while it runs), or None;
- `cancel()`: stop the run from another thread (a Stop): its next forward raises errors.Cancelled;
- `check(model, eviction)` (optional): refuse, before any run, what that runtime cannot run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

from .config import EvictionConfig, SamplingConfig
from .engine import StepRecord, generate
from .mechanisms import get_mechanism
from ..policies import get_policy


@dataclass
class LoopRunner:
    """Our decode loop on a session of `model`: a new one per stream (closed at its end), or `session`."""
    model: object
    eviction: EvictionConfig
    calibration: object = None
    session: object = None
    teacher_forcing = True
    reports_prunes = True
    _active: object = field(default=None, init=False, repr=False)
    _cancelled: bool = field(default=False, init=False, repr=False)

    def cancel(self) -> None:
        """The run's session stops at its next forward (between two pieces of a long prompt)."""
        self._cancelled = True
        if self._active is not None:
            self._active.cancel()

    def stream(self, prompt_ids: Sequence[int], sampling: SamplingConfig, max_new_tokens: int,
               used: dict | None = None, **kw) -> Iterator[StepRecord]:
        own = self.session is None
        session = self.model.new_session() if own else self.session
        self._active = session
        if self._cancelled:  # a cancel that came before the session existed
            session.cancel()
        calibration = self.calibration if self.eviction.prunes else None
        try:
            yield from generate(session, prompt_ids, self.eviction, sampling, max_new_tokens,
                                calibration=calibration, **kw)
        finally:
            self._active = None
            if own:
                session.close()  # the infer request and its KV cache go now, also on Stop or a closed tab

    def kv_bytes_per_token(self, used: dict) -> int:
        return self.model.kv_bytes_per_token

    def describe(self, used: dict) -> str | None:
        line = getattr(self.model, "form_line", None)  # which cache form runs it, when not the one asked for
        return line(get_mechanism(self.eviction.evict).needs_attention_mask) if line else None

    def label(self, eviction: EvictionConfig, used: dict) -> str:
        chosen = ", the prompt kept by what its question attends to" if eviction.prompt_select == "query" else ""
        return f"{eviction.policy}, {eviction.evict}, budget {eviction.budget} tokens{chosen}"

    def why_larger(self, used: dict) -> str:
        return ""

    def held(self, tokens: int, used: dict) -> str:
        """Why the cache held `tokens`, more than the budget: it grows between cuts (the prune interval)."""
        e = self.eviction
        if not e.prunes or tokens <= e.budget or e.prune_interval < 2:
            return ""
        return (f"the budget of {e.budget}, plus up to {e.prune_interval - 1} new tokens between cuts, "
                f"one every {e.prune_interval}")


RUNNERS = {"loop": LoopRunner}  # other runtimes register themselves (the backend's runners: triattn.openvino)


def register_runner(runtime: str, runner) -> None:
    """Make `runner` run the policies whose `runtime` is `runtime`: a backend passes it in, so this
    package imports nothing from the backend."""
    RUNNERS[runtime] = runner


def _runner(eviction: EvictionConfig):
    runtime = get_policy(eviction.policy).runtime
    if runtime not in RUNNERS:
        raise ValueError(f"policy {eviction.policy!r} runs in the {runtime!r} runtime, which no loaded backend offers")
    return RUNNERS[runtime]


def runner_for(model, eviction: EvictionConfig, calibration=None, session=None):
    """The runner for `eviction`'s policy: the one place that tells our loop from another runtime."""
    return _runner(eviction)(model, eviction, calibration, session)


def can_force(eviction: EvictionConfig) -> bool:
    """Whether runs of `eviction` can be teacher-forced (fed given tokens)."""
    return _runner(eviction).teacher_forcing


def check_runnable(model, eviction: EvictionConfig) -> None:
    """Refuse (ValueError) before any run what the runtime that would run `eviction` cannot run."""
    check = getattr(_runner(eviction), "check", None)
    if check is not None:
        check(model, eviction)
