"""OpenVINO GenAI's settings for an `ov-genai` run: our budget, recent window and sink tokens mapped
to GenAI's block-sized cache areas (`map_settings`), checked against what this GenAI can run, and
written as its CacheEvictionConfig, SchedulerConfig and GenerationConfig. The pipeline that runs
them is genai.py; see its docstring for how GenAI evicts (Cache eviction, GenAI's continuous
batching: https://github.com/openvinotoolkit/openvino.genai).
"""
from __future__ import annotations

import re
from typing import Sequence

from ..core.config import EvictionConfig, SamplingConfig

BLOCK_SIZES = {"CPU": 32, "GPU": 16}   # GenAI's KV block per device (continuous_batching/cache)
SNAPKV_WINDOW = 8                      # GenAI's default SnapKV window (CacheEvictionConfig.snapkv_window_size)


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
