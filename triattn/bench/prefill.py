"""Where a long prompt's time goes: time per token of three forwards on a model that reads in
pieces of `chunk` with a budget of `budget` tokens:

- the whole prompt of `budget` tokens over an empty cache (what a baseline's prefill runs);
- one piece of `chunk` tokens over an empty cache (the first piece);
- one piece of `chunk` tokens over a cache cut to `budget - 1` (every later piece).

The third less the second is what attending to the cut cache costs. Reading in pieces pays only
if that stays small. On OpenVINO's CPU plugin's stateful form it does not: the fused
attention takes its one-query kernel (a dot product per query and cached token) for every forward
whose cache already holds tokens, and its matrix-product kernel only for a forward over an empty
cache. (The plugin's per-node performance counters could not show it: with shapes changing between
forwards they reported more time than the forward took, so this profile is timed from outside.)
The paged form (the default; docs/paged.md) runs its multi-query kernel over a cache as well; the
form is the command's --form. Runs in a process of its own (probe.py), after the timed modes.
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from . import report


def forwards(budget: int, chunk: int) -> dict:
    """name -> (tokens cached before, tokens fed)."""
    return {"whole prompt": (0, budget), "first piece": (0, chunk), "piece over the cut cache": (budget - 1, chunk)}


def run_job(job: dict) -> dict:
    """job: model_dir, precision, form (default paged), budget, chunk, runs. Per forward: tokens,
    cached before, median ms per token over `runs` (after one round that warms the plugin's shapes up)."""
    from ..core.text import load_tokenizer
    from ..openvino.model import DEFAULT_FORM, load_model
    from .plan import context_prompts

    model = load_model(job["model_dir"], "CPU", job.get("precision", "auto"), form=job.get("form", DEFAULT_FORM))
    kinds = forwards(job["budget"], job["chunk"])
    n_ids = max(p + n for p, n in kinds.values())
    ids = context_prompts(load_tokenizer(job["model_dir"]), [n_ids], 1, model.info.max_context)[0].ids
    times = {k: [] for k in kinds}
    session = model.new_session()
    for _ in range(job["runs"] + 1):
        for kind, (past, n) in kinds.items():
            session.reset()
            if past:
                session.forward(ids[:past], np.arange(past), np.ones(past, np.int64), keys=False)
            t = time.perf_counter()
            session.forward(ids[past:past + n], np.arange(past, past + n), np.ones(past + n, np.int64), keys=False)
            times[kind].append(time.perf_counter() - t)
    session.close()
    return {kind: {"tokens": n, "past": past, "ms_per_token": 1000 * statistics.median(times[kind][1:]) / n}
            for kind, (past, n) in kinds.items()}


def table(result: dict) -> str:
    rows = [[kind, str(r["tokens"]), str(r["past"]), f"{r['ms_per_token']:.2f}"] for kind, r in result.items()]
    return report.table(["Forward", "Tokens", "Cached before", "ms per token"], rows)


def summary(result: dict) -> str:
    """One line: what attending to the cut cache adds per token, against the whole prompt's rate."""
    whole, first, later = (result[k]["ms_per_token"] for k in ("whole prompt", "first piece",
                                                                 "piece over the cut cache"))
    past = result["piece over the cut cache"]["past"]
    return (f"A piece over {past} cached tokens costs {later:.2f} ms per token, {later - first:.2f} ms of it for "
            f"attending to the cache; the whole prompt costs {whole:.2f} ms per token.")
