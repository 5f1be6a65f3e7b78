"""One measured run in a process of its own, so that the process's peak RSS is that run's alone.

The plugin keeps the working memory of the largest forward a process has run, so peak memory of
two modes can only be told apart in two processes. `probe()` starts `python -m
triattn.bench.probe` with a JSON job and reads back one JSON line:

    job    {"model_dir", "precision", "tokens": N, "eviction": {...}, "max_new_tokens",
            "forced": [ids] or null, "own_nll": bool}
    answer {"ttft_s", "tpot_ms", "tokens", "kv_after_prefill", "loaded_mb", "peak_mb",
            "nll": mean -log p of `forced` under the same eviction after the run, when given;
                   or of the run's own tokens, with own_nll}

A job with "kind": "prefill" is prefill.py's profile of one forward whole against one piece.

The prompt is the first N tokens of the shipped text sample (bench.plan.context_prompts).
`loaded_mb` is the process's RSS once the model is compiled and warm, before the run.
"""
from __future__ import annotations

import json
import signal
import statistics
import subprocess
import sys

import numpy as np


def run_job(job: dict) -> dict:
    from ..core.config import EvictionConfig, SamplingConfig
    from ..core.engine import generate
    from ..core.metrics import peak_rss_mb, rss_mb
    from ..core.quality import forced_scores, teacher_forced
    from ..core.text import load_tokenizer
    from ..openvino.model import load_model
    from ..policies import get_policy
    from .plan import context_prompts

    model = load_model(job["model_dir"], "CPU", job.get("precision", "auto"))
    eviction = EvictionConfig(**job["eviction"])
    n = job["max_new_tokens"]
    ids = context_prompts(load_tokenizer(job["model_dir"]), [job["tokens"]], n, model.info.max_context)[0].ids
    calibration = get_policy(eviction.policy).prepare(model.info.model_dir) if eviction.prunes else None
    loaded = rss_mb()
    session = model.new_session()
    records = list(generate(session, ids, eviction, SamplingConfig(), n, calibration=calibration,
                            logprobs=bool(job.get("own_nll"))))
    out = {"ttft_s": records[0].time_s, "tpot_ms": 1000 * statistics.median(r.time_s for r in records[1:]),
           "tokens": [r.token for r in records], "kv_after_prefill": records[0].kv_len,
           "loaded_mb": loaded, "peak_mb": peak_rss_mb()}
    if job.get("own_nll"):  # its own tokens' NLL, read off the run (one log-softmax a step)
        out["nll"] = float(np.mean([-r.logprob for r in records]))
    if job.get("forced"):
        nll, _ = forced_scores(teacher_forced(session, ids, job["forced"], eviction, calibration))
        out["nll"] = float(np.mean(nll))
    return out


def probe(job: dict, timeout: float = 3600) -> dict:
    """Run `job` in a new Python process; its answer. A process the system killed (on Linux, the
    out-of-memory killer's SIGKILL) answers {"failed": why}: the run did not fit this machine, a
    result in itself. Any other failure is a ModelError with the process's last line."""
    done = subprocess.run([sys.executable, "-m", "triattn.bench.probe", json.dumps(job)], capture_output=True,
                          text=True, timeout=timeout)
    lines = done.stdout.strip().splitlines()
    if done.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL):
        return {"failed": "killed by the system (out of memory)"}
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        from ..errors import ModelError
        what = (f"{job['tokens']} tokens, {job['eviction']['policy']}" if "eviction" in job
                else f"prefill profile of {job['model_dir']}")
        raise ModelError(f"a measured run failed ({what}): {last}")
    return json.loads(lines[-1])


def _main(job: dict) -> dict:
    if job.get("kind") == "prefill":
        from .prefill import run_job as prefill_job
        return prefill_job(job)
    return run_job(job)


if __name__ == "__main__":
    print(json.dumps(_main(json.loads(sys.argv[1]))))
