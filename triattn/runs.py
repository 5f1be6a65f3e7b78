"""One generation run with text and metrics attached, and the default model a user gets.

This is what the CLI and the app call: it joins the engine (token ids), the stream decoder (text)
and the metrics (figures) without adding any model logic of its own.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from .config import EvictionConfig, SamplingConfig
from .engine import StepRecord, generate
from .metrics import RunMetrics, rss_mb, summarize
from .policies import get_policy
from .paths import ASSETS, CACHE
from .text import StreamDecoder

DEMO_MODEL = ASSETS / "demo-model"
ENGLISH_MODEL = ASSETS / "smollm2-135m-instruct"


@dataclass
class RunResult:
    eviction: EvictionConfig
    prompt_ids: list
    token_ids: list = field(default_factory=list)
    text: str = ""
    records: list = field(default_factory=list)
    metrics: RunMetrics | None = None
    used: dict = field(default_factory=dict)   # a backend's actual settings (see backend_for)


def backend_for(eviction: EvictionConfig):
    """The module that runs the whole generation for a policy with a `backend` (e.g. genai), or None
    when the policy is a scorer in our decode loop."""
    name = get_policy(eviction.policy).backend
    return importlib.import_module(f".{name}", __package__) if name else None


def stream_run(model, tokenizer, prompt_ids, eviction: EvictionConfig, sampling: SamplingConfig,
               max_new_tokens: int, session=None, **kw) -> Iterator[tuple[StepRecord, str, RunResult]]:
    """Yield (record, new text, the run so far) per token; `result.metrics` is set at the end.
    A backend policy fills `result.used` with the settings it really ran (e.g. sizes in blocks)."""
    result = RunResult(eviction, list(prompt_ids))
    backend = backend_for(eviction)
    if backend is None:
        steps = generate(session or model.new_session(), prompt_ids, eviction, sampling, max_new_tokens, **kw)
    else:
        steps = backend.generate(model, prompt_ids, eviction, sampling, max_new_tokens, used=result.used, **kw)
    decoder = StreamDecoder(tokenizer)
    before = rss_mb()
    for record in steps:
        piece = decoder.push(record.token)
        result.records.append(record)
        result.token_ids.append(record.token)
        result.text += piece
        yield record, piece, result
    tail = decoder.flush()
    result.text += tail
    # a backend's own cache may hold other bytes per token; its evictions are not observable
    result.metrics = summarize(result.records, result.used.get("kv_bytes_per_token", model.kv_bytes_per_token),
                               before, rss_mb(), prunes_visible=backend is None)
    if tail:
        yield result.records[-1], tail, result


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


def default_model_dir(notify: Callable[[str], None] = print) -> Path:
    """The first bundled model, or (in a checkout without one) a random-weight tiny model built
    once into the cache."""
    bundled = bundled_models()
    if bundled:
        return bundled[0]
    target = CACHE / "tiny-gpt-oss"
    if not (target / "openvino_model.xml").is_file():
        notify(f"building a tiny random-weight gpt-oss model in {target} (once; about 15 s)")
        from .tiny import make_tiny_model
        make_tiny_model(target, "gpt-oss", "tiny", seed=0)
    notify("note: the default model has RANDOM weights; its text is noise. Load a real model with --model-dir.")
    return target
