"""How a run is executed, chosen in one place: our decode loop, or OpenVINO GenAI's own pipeline.

A policy either scores cached tokens for our decode loop (engine.py), or names a runtime that evicts
by itself (`Policy.runtime`: ov-genai runs inside OpenVINO GenAI's paged-attention pipeline,
genai.py). `runner_for` is the one place that looks at which; everything else asks the runner what
it can do:

- `stream(...)`: the engine's StepRecords, one per generated token (record 0 = prefill);
- `teacher_forcing`: whether it can be fed given tokens (the quality measures need it);
- `reports_prunes`: whether its prune events are observable;
- `describe(used)`: one line on the settings it really ran (`used` is filled while it runs), or None.
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

    def stream(self, prompt_ids: Sequence[int], sampling: SamplingConfig, max_new_tokens: int,
               used: dict | None = None, **kw) -> Iterator[StepRecord]:
        own = self.session is None
        session = self.model.new_session() if own else self.session
        calibration = self.calibration if self.eviction.prunes else None
        try:
            yield from generate(session, prompt_ids, self.eviction, sampling, max_new_tokens,
                                calibration=calibration, **kw)
        finally:
            if own:
                session.close()  # the infer request and its KV cache go now, also on Stop or a closed tab

    def kv_bytes_per_token(self, used: dict) -> int:
        return self.model.kv_bytes_per_token

    def describe(self, used: dict) -> str | None:
        line = getattr(self.model, "form_line", None)  # which cache form runs it, when not the one asked for
        return line(get_mechanism(self.eviction.evict).needs_attention_mask) if line else None

    def label(self, eviction: EvictionConfig, used: dict) -> str:
        return f"{eviction.policy}, {eviction.evict}, budget {eviction.budget} tokens"

    def why_larger(self, used: dict) -> str:
        return ""


@dataclass
class GenAIRunner:
    """OpenVINO GenAI's ContinuousBatchingPipeline with its own cache eviction (genai.py)."""
    model: object
    eviction: EvictionConfig
    calibration: object = field(default=None, repr=False)  # unused: GenAI scores with its own statistics
    session: object = field(default=None, repr=False)
    teacher_forcing = False
    reports_prunes = False

    def stream(self, prompt_ids, sampling, max_new_tokens, used: dict | None = None, **kw):
        from ..openvino import genai
        return genai.generate(self.model, prompt_ids, self.eviction, sampling, max_new_tokens, used=used, **kw)

    def kv_bytes_per_token(self, used: dict) -> int:
        return used.get("kv_bytes_per_token", self.model.kv_bytes_per_token)  # its own cache's precision

    def describe(self, used: dict) -> str | None:
        from ..openvino import genai
        return genai.describe(used) if used else None

    def label(self, eviction: EvictionConfig, used: dict) -> str:
        if not used:
            return f"{eviction.policy}, budget {eviction.budget} tokens, rounded to whole blocks when it starts"
        return (f"{eviction.policy}, budget {eviction.budget} tokens, used as whole blocks of {used['block_size']}: "
                f"cache {used['max_cache_size']}, start {used['start_size']}, recent {used['recent_size']} tokens")

    def why_larger(self, used: dict) -> str:
        if not used:
            return ""
        return (f"OpenVINO GenAI keeps whole blocks of {used['block_size']} tokens (budget "
                f"{used['requested']['budget']} became {used['max_cache_size']}) in its own cache layout")


RUNNERS = {"loop": LoopRunner, "genai": GenAIRunner}


def runner_for(model, eviction: EvictionConfig, calibration=None, session=None):
    """The runner for `eviction`'s policy: the one place that tells our loop from another runtime."""
    return RUNNERS[get_policy(eviction.policy).runtime](model, eviction, calibration, session)


def can_force(eviction: EvictionConfig) -> bool:
    """Whether runs of `eviction` can be teacher-forced (fed given tokens)."""
    return RUNNERS[get_policy(eviction.policy).runtime].teacher_forcing
