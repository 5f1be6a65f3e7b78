"""The `ov-genai` policy's backend: OpenVINO GenAI's own KV-cache eviction, run token by token.

GenAI evicts inside its paged-attention pipeline (ContinuousBatchingPipeline, the engine behind
`LLMPipeline(model_dir, device, scheduler_config=...)`). The cache is a pool of fixed-size blocks
(32 tokens on CPU, 16 on GPU). After a decode step, once a sequence holds more than
`max_cache_size` tokens, it frees whole blocks between the first `start_size` and the last
`recent_size` tokens: those with the lowest attention scores accumulated by its kernel (SUM, or
NORM_SUM: divided by each token's time in the cache). Nothing is evicted during prefill, so the
first decode step still attends to the whole prompt.

Scope: mapping our settings to valid block sizes (`map_settings`), one pipeline per (model, device,
precision, mapped settings), and a generator of the engine's `StepRecord`s. We drive the request
with `add_request` + `step()`, which is what LLMPipeline's generate() does, minus its streaming
thread: each token is timed on our clock and the cache occupancy GenAI reports is read after every
step. Not observable: prune events (eviction is part of GenAI's step, and of its time) and
teacher forcing (there is no API to feed given tokens).
This is the only module that imports openvino_genai.
"""
from __future__ import annotations

import math
import re
import threading
import time
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..core.config import EvictionConfig, SamplingConfig, check_max_new_tokens
from ..core.engine import PromptTooLong, StepRecord
from ..errors import runtime_failure
from ..lru import Bounded
from .model import PRECISIONS, ModelError

BLOCK_SIZES = {"CPU": 32, "GPU": 16}   # GenAI's KV block per device (continuous_batching/cache)
MAX_PIPELINES = 4                      # compiled pipelines kept (one per distinct setting)
SNAPKV_WINDOW = 8                      # GenAI's default SnapKV window (CacheEvictionConfig.snapkv_window_size)
_pipelines = Bounded(MAX_PIPELINES)


def version() -> str:
    import openvino_genai
    return openvino_genai.get_version()


def block_size(device: str) -> int:
    kind = (device or "CPU").upper().split(".")[0]
    if kind not in BLOCK_SIZES:
        raise ValueError(f"ov-genai runs on CPU or GPU (its paged attention), not on {device}")
    return BLOCK_SIZES[kind]


def to_blocks(tokens: int, block: int) -> int:
    """The nearest whole number of blocks, halves rounding up, and at least one block (GenAI's sizes
    must be non-zero multiples of the block)."""
    return block * max(1, (tokens + block // 2) // block)


def snapkv_window(prompt_len: int, start_size: int) -> int:
    """GenAI's SnapKV window for a prompt: its default, narrowed where GenAI's own check would fail.

    GenAI scores the prompt tokens after the start area by the attention of the last `window` prompt
    tokens and asserts there are at least `window` of them: a prompt 1 to 7 tokens longer than the
    start area aborted the request ("new_scores_size >= num_snapkv_scores"). There the window is the
    number of those tokens; a prompt within the start area is not scored at all.
    """
    past_start = prompt_len - start_size
    return past_start if 0 < past_start < SNAPKV_WINDOW else SNAPKV_WINDOW


def map_settings(eviction: EvictionConfig, block: int, prompt_len: int | None = None) -> dict:
    """Our budget / recent window / sink tokens as GenAI's max_cache_size / recent_size / start_size.

    Each is rounded to the nearest multiple of `block` (at least one block); KVCrush's blocks
    (ov-genai-kvcrush) come out of the budget; max_cache_size is then raised, if needed, to leave one
    evictable block between the start and recent areas (GenAI requires max_cache_size > start_size
    + recent_size). Between steps the cache holds at most max_cache_size + KVCrush's blocks +
    block - 1 tokens; with the next token, a step attends to at most `kv_bound_tokens` = that + 1.
    With the prompt's length, the SnapKV window it runs with too (`snapkv_window`).
    """
    mode = eviction.policy_object()
    start = to_blocks(eviction.sink_tokens, block)
    recent = to_blocks(eviction.recent_window, block)
    crush = mode.kvcrush_blocks * block
    max_cache = max(to_blocks(eviction.budget, block) - crush, start + recent + block)
    used = {"block_size": block, "start_size": start, "recent_size": recent, "max_cache_size": max_cache,
            "evictable_size": max_cache - start - recent,
            "aggregation": "adaptive_rkv" if mode.adaptive_rkv else eviction.genai_aggregation,
            "apply_rotation": False, "kv_bound_tokens": max_cache + crush + block,
            "snapkv_window": SNAPKV_WINDOW if prompt_len is None else snapkv_window(prompt_len, start),
            "requested": {"sink_tokens": eviction.sink_tokens, "recent_window": eviction.recent_window,
                          "budget": eviction.budget},
            "not_applied": {"prune_interval": eviction.prune_interval}}
    if mode.kvcrush_blocks:
        used["kvcrush"] = {"blocks": mode.kvcrush_blocks, "anchor": mode.anchor, "rng_seed": mode.kvcrush_seed}
    if mode.adaptive_rkv:
        used["adaptive_rkv"] = {"attention_mass": mode.attention_mass, "window_size": mode.rkv_window}
    return used


def check_adaptive_rkv(genai_version: str) -> None:
    """Refuse Adaptive R-KV where GenAI cannot run it: up to 2026.4 its pipeline stops at the first
    eviction ("Token diversity must be registered before each eviction"), with every setting tried
    (window, SnapKV window, split prefill, prompts shorter and longer than the cache)."""
    parts = [int(p) for p in re.findall(r"\d+", genai_version)[:2]]
    if parts and tuple(parts) <= (2026, 4):
        shown = ".".join(re.findall(r"\d+", genai_version)[:3])
        raise ValueError(f"ov-genai-rkv cannot run with OpenVINO GenAI {shown}: its Adaptive "
                         f"R-KV fails at the first eviction (\"Token diversity must be registered before each "
                         f"eviction\") whatever the settings; choose ov-genai or ov-genai-kvcrush")


def settings(model, eviction: EvictionConfig, prompt_len: int | None = None) -> dict:
    """What a run of `eviction` on `model` uses: the mapped sizes, device and GenAI version.
    Refuses (ValueError) what this GenAI cannot run."""
    if eviction.policy_object().adaptive_rkv:
        check_adaptive_rkv(version())
    return {"backend": "openvino_genai.ContinuousBatchingPipeline", "openvino_genai": version(),
            "device": model.device, **map_settings(eviction, block_size(model.device), prompt_len)}


def describe(used: dict) -> str:
    """One line: what ran, next to what was asked."""
    req = used["requested"]
    return (f"ov-genai used: start_size {used['start_size']} (sink tokens {req['sink_tokens']}), recent_size "
            f"{used['recent_size']} (recent window {req['recent_window']}), max_cache_size {used['max_cache_size']} "
            f"(budget {req['budget']}), in blocks of {used['block_size']} tokens; aggregation {used['aggregation']}; "
            f"SnapKV window {used['snapkv_window']}; {_extra(used)}"
            f"whole blocks evicted after a decode step, none during prefill; evictions are not reported")


def _extra(used: dict) -> str:
    """KVCrush's or Adaptive R-KV's settings, when one ran."""
    if "kvcrush" in used:
        k = used["kvcrush"]
        return (f"KVCrush {k['blocks']} block(s) beside max_cache_size, anchor {k['anchor']}, seed {k['rng_seed']}; ")
    if "adaptive_rkv" in used:
        a = used["adaptive_rkv"]
        return f"Adaptive R-KV attention mass {a['attention_mass']}, window {a['window_size']}; "
    return ""


def eviction_config(used: dict):
    """GenAI's CacheEvictionConfig for the mapped settings, KVCrush's and Adaptive R-KV's included."""
    import openvino_genai as og
    modes = {"sum": og.AggregationMode.SUM, "norm_sum": og.AggregationMode.NORM_SUM,
             "adaptive_rkv": og.AggregationMode.ADAPTIVE_RKV}
    crush = used.get("kvcrush")
    kvcrush = og.KVCrushConfig(crush["blocks"], getattr(og.KVCrushAnchorPointMode, crush["anchor"].upper()),
                               crush["rng_seed"]) if crush else None
    config = og.CacheEvictionConfig(used["start_size"], used["recent_size"], used["max_cache_size"],
                                    modes[used["aggregation"]], apply_rotation=used["apply_rotation"],
                                    snapkv_window_size=used["snapkv_window"], kvcrush_config=kvcrush)
    if "adaptive_rkv" in used:  # its class is not exported at the package's top level
        from openvino_genai.py_openvino_genai import AdaptiveRKVConfig
        a = used["adaptive_rkv"]
        config.adaptive_rkv_config = AdaptiveRKVConfig(a["attention_mass"], a["window_size"])
    return config


def scheduler_config(used: dict, max_context: int):
    import openvino_genai as og
    sc = og.SchedulerConfig()
    sc.use_cache_eviction = True
    sc.cache_eviction_config = eviction_config(used)
    sc.dynamic_split_fuse = False          # the prompt is prefilled in one step, as in our engine
    sc.max_num_batched_tokens = max_context
    sc.max_num_seqs = 1
    return sc


def generation_config(sampling: SamplingConfig, max_new_tokens: int, eos_ids: Sequence[int], logprobs: bool):
    """Greedy when temperature is 0; else multinomial with the same temperature, top-p, top-k and
    seed (GenAI's sampler, so sampled tokens differ from our sampler's even at the same seed)."""
    import openvino_genai as og
    c = og.GenerationConfig()
    c.max_new_tokens = max_new_tokens
    if eos_ids:
        c.eos_token_id = int(eos_ids[0])
        c.stop_token_ids = {int(e) for e in eos_ids}
    c.do_sample = sampling.temperature > 0
    if c.do_sample:
        c.temperature = float(sampling.temperature)
        c.top_p = float(sampling.top_p)
        if sampling.top_k:
            c.top_k = sampling.top_k
        c.rng_seed = sampling.seed
    if logprobs:
        c.logprobs = 1
    return c


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
