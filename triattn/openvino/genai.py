"""The `ov-genai` policy's backend: OpenVINO GenAI's own KV-cache eviction, run token by token.

GenAI evicts inside its paged-attention pipeline (ContinuousBatchingPipeline, the engine behind
`LLMPipeline(model_dir, device, scheduler_config=...)`). The cache is a pool of fixed-size blocks
(32 tokens on CPU, 16 on GPU). After a decode step, once a sequence holds more than
`max_cache_size` tokens, it frees whole blocks between the first `start_size` and the last
`recent_size` tokens: those with the lowest attention scores accumulated by its kernel (SUM, or
NORM_SUM: divided by each token's time in the cache). Nothing is evicted during prefill, so the
first decode step still attends to the whole prompt.

Scope: one pipeline per (model, device, precision, mapped settings: genaiset.py), and a generator
of the engine's `StepRecord`s. We drive the request
with `add_request` + `step()`, which is what LLMPipeline's generate() does, minus its streaming
thread: each token is timed on our clock and the cache occupancy GenAI reports is read after every
step. Not observable: prune events (eviction is part of GenAI's step, and of its time) and
teacher forcing (there is no API to feed given tokens).
With genaiset.py, the only modules of the package that import openvino_genai.
"""
from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..core.config import EvictionConfig, SamplingConfig, check_max_new_tokens
from ..core.engine import PromptTooLong, StepRecord
from ..errors import runtime_failure
from ..lru import Bounded
from .genaiset import generation_config, scheduler_config, settings
from .model import PRECISIONS, ModelError

MAX_PIPELINES = 4                      # compiled pipelines kept (one per distinct setting)
_pipelines = Bounded(MAX_PIPELINES)


def _short(e: Exception) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[-1] if lines else type(e).__name__


class _Pipeline:
    """A compiled pipeline; one request at a time (its lock), ids counting up."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.lock = threading.Lock()
        self.next_id = 0
        self.bytes_per_block = None   # learnt from the first step (see _occupancy)


def pipeline(model, used: dict) -> _Pipeline:
    key = (str(Path(model.info.model_dir).resolve()), model.device, model.precision, used["start_size"],
           used["recent_size"], used["max_cache_size"], used["aggregation"], used["snapkv_window"],
           str(used.get("kvcrush")), str(used.get("adaptive_rkv")))
    return _pipelines.get(key, lambda: _Pipeline(_compile(model, used)))


def _compile(model, used: dict):
    import openvino_genai as og
    props = {"PERFORMANCE_HINT": "LATENCY", **PRECISIONS[model.precision]}
    try:
        return og.ContinuousBatchingPipeline(model.info.model_dir, scheduler_config(used, model.info.max_context),
                                             model.device, props)
    except RuntimeError as e:
        raise ModelError(f"OpenVINO GenAI cannot load {model.info.model_dir} on {model.device}: {_short(e)}") from None


def unload_pipelines() -> None:
    """Stop holding every compiled pipeline."""
    _pipelines.clear()


def _occupancy(pl: _Pipeline, metrics, written: int, prompt_len: int, first: bool, block: int) -> tuple[int, int]:
    """(slots in used blocks, tokens held) while a step ran. GenAI reports the share of allocated
    blocks in use (`cache_usage`, %) and the allocated bytes; the bytes of one block are learnt on
    the first step, whose prompt fills exactly ceil(prompt_len / block) blocks. Eviction frees only
    full blocks, so the tokens held are those written minus block_size per freed block."""
    if pl.bytes_per_block is None:
        if not (first and metrics.cache_usage > 0):
            raise ModelError("OpenVINO GenAI reported no cache in use after the prefill")
        total = round(100 * math.ceil(prompt_len / block) / metrics.cache_usage)
        pl.bytes_per_block = metrics.cache_size_in_bytes // total
    total_blocks = metrics.cache_size_in_bytes // pl.bytes_per_block
    used_blocks = round(metrics.cache_usage / 100 * total_blocks)
    freed = max(0, math.ceil(written / block) - used_blocks)
    return used_blocks * block, written - freed * block


def _read(handle) -> list[tuple[int, float]]:
    out = []
    while handle.can_read():
        for o in handle.read().values():
            out += list(zip(map(int, o.generated_ids), map(float, o.generated_log_probs)))
    return out


def generate(model, prompt_ids: Sequence[int], eviction: EvictionConfig, sampling: SamplingConfig = SamplingConfig(),
             max_new_tokens: int = 200, used: dict | None = None, force=None, logprobs: bool = False,
             keep_logits: bool = False, calibration=None) -> Iterator[StepRecord]:
    """One generation under GenAI's cache eviction, as the engine's records (record 0 = prefill).
    Checks, maps and loads now; returns the generator of records.

    kv_len: slots of the blocks in use during the step; kv_live: tokens held in them. prune is
    always None (GenAI does not report its evictions). `used` (a dict) is filled with `settings()`
    and the KV bytes per token GenAI allocates. `calibration` is accepted and unused: GenAI scores
    with its own attention statistics.
    """
    if force is not None:
        raise ValueError("ov-genai cannot be teacher-forced: OpenVINO GenAI has no API to feed given tokens")
    if keep_logits:
        raise ValueError("ov-genai does not expose logits")
    info = model.info
    prompt = [int(t) for t in prompt_ids]
    if not prompt:
        raise ValueError("the prompt is empty")
    limit = check_max_new_tokens(max_new_tokens)
    if len(prompt) + limit > info.max_context:
        raise PromptTooLong(f"prompt ({len(prompt)} tokens) + {limit} new tokens exceed the model's "
                            f"context of {info.max_context}")
    mapped = settings(model, eviction, len(prompt))
    if used is not None:
        used.update(mapped)
    pl = pipeline(model, mapped)   # here, not on the first next(): a caller measuring the run starts after
    config = generation_config(sampling, limit, info.eos_token_ids, logprobs)
    return _locked(pl, prompt, config, mapped["block_size"], logprobs, used)


def _locked(pl: _Pipeline, *args):
    with pl.lock:
        try:
            yield from _run(pl, *args)
        except RuntimeError as e:
            _forget(pl)  # after an internal failure its state is unknown: the next run gets a new pipeline
            raise runtime_failure("OpenVINO GenAI failed while generating", e) from None


def _forget(pl: _Pipeline):
    _pipelines.forget(pl)


def _run(pl: _Pipeline, prompt: list, config, block: int, logprobs: bool, used: dict | None):
    import openvino as ov
    import openvino_genai as og
    pipe, index = pl.pipe, 0
    t0 = time.perf_counter()
    handle = pipe.add_request(pl.next_id, ov.Tensor(np.asarray([prompt], np.int64)), config)
    pl.next_id += 1
    try:
        while pipe.has_non_finished_requests():
            pipe.step()
            new = _read(handle)
            if not new:   # a step without a token: its time goes to the next token
                continue
            kv_len, kv_live = _occupancy(pl, pipe.get_metrics(), len(prompt) + index, len(prompt), index == 0, block)
            if used is not None and "kv_bytes_per_token" not in used:
                used["kv_bytes_per_token"] = pl.bytes_per_block // block
            elapsed = time.perf_counter() - t0
            for j, (token, lp) in enumerate(new):
                yield StepRecord(index, token, elapsed if j == 0 else 0.0, kv_len, kv_live,
                                 logprob=lp if logprobs else None)
                index += 1
            t0 = time.perf_counter()
        if handle.get_status() == og.GenerationStatus.IGNORED:
            raise ModelError("OpenVINO GenAI could not schedule the prompt (its KV cache is too small for it)")
    finally:
        if pipe.has_non_finished_requests():   # abandoned mid-run: free its blocks for the next run
            handle.cancel()
            try:
                while pipe.has_non_finished_requests():
                    pipe.step()
            except RuntimeError:  # it failed while winding down: its state is unknown
                _forget(pl)
