"""One measured run in a process of its own, so that the process's peak RSS is that run's alone.

The plugin keeps the working memory of the largest forward a process has run, so peak memory of
two modes can only be told apart in two processes. `probe()` starts `python -m
triattn.bench.probe` with a JSON job and reads back one JSON line:

    job    {"model_dir", "precision", "form": "paged" (default) or "stateful", "tokens": N,
            "eviction": {...}, "max_new_tokens", "forced": [ids] or null, "own_nll": bool}
    answer {"ttft_s", "tpot_ms", "step_ms", "tokens", "kv_after_prefill", "loaded_mb", "peak_mb",
            "precision", "kv_cache_precision",
            "form": the cache form the model loaded as (model.load_model: the paged form falls back
                    to the stateful one where the export does not take it),
            "form_note": why the run itself ran on another form, when it did (mask: the stateful
                         twin), or where the form asked for did not load (absent otherwise),
            "nll": mean -log p of `forced` (or, with own_nll, of the run's own tokens), teacher-forced
                   under the same eviction after the timed run, so no side times extra work}

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
import tempfile
import time

import numpy as np


def run_job(job: dict) -> dict:
    from ..core.config import EvictionConfig, SamplingConfig
    from ..core.engine import generate
    from ..core.mechanisms import get_mechanism
    from ..core.metrics import peak_rss_mb, rss_mb
    from ..core.quality import forced_scores, teacher_forced
    from ..core.text import load_tokenizer
    from ..openvino.model import DEFAULT_FORM, load_model
    from ..policies import get_policy
    from .plan import context_prompts

    model = load_model(job["model_dir"], "CPU", job.get("precision", "auto"), form=job.get("form", DEFAULT_FORM))
    eviction = EvictionConfig(**job["eviction"])
    n = job["max_new_tokens"]
    ids = context_prompts(load_tokenizer(job["model_dir"]), [job["tokens"]], n, model.info.max_context)[0].ids
    calibration = get_policy(eviction.policy).prepare(model.info.model_dir) if eviction.prunes else None
    loaded = rss_mb()
    session = model.new_session()
    # no log-softmax inside the timed steps, on any side: every NLL is teacher-forced after the run
    records = list(generate(session, ids, eviction, SamplingConfig(), n, calibration=calibration))
    out = {"ttft_s": records[0].time_s, "tpot_ms": 1000 * statistics.median(r.time_s for r in records[1:]),
           "step_ms": [1000 * r.time_s for r in records[1:]], "tokens": [r.token for r in records],
           "kv_after_prefill": records[0].kv_len, "loaded_mb": loaded, "peak_mb": peak_rss_mb(),
           "precision": model.precision, "kv_cache_precision": model.kv_precision.to_string(), "form": model.form}
    note = model.form_note or model.form_line(get_mechanism(eviction.evict).needs_attention_mask)
    if note:
        out["form_note"] = note
    forced = out["tokens"] if job.get("own_nll") else job.get("forced")
    if forced:
        nll, _ = forced_scores(teacher_forced(session, ids, forced, eviction, calibration))
        out["nll"] = float(np.mean(nll))
    return out


def _peak_mb(pid: int) -> float | None:
    """The process's peak RSS so far (VmHWM), None where /proc cannot tell."""
    try:
        for line in open(f"/proc/{pid}/status", encoding="ascii"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None


def probe(job: dict, timeout: float = 3600, poll_s: float = 0.2) -> dict:
    """Run `job` in a new Python process; its answer. A process killed by a signal answers
    {"failed": "killed (signal N)", "last_peak_mb": its peak RSS last seen}: the run did not
    finish on this machine, a result in itself (a SIGKILL is often the out-of-memory killer, but
    the signal does not say who sent it). Any other failure is a ModelError with its last line."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "triattn.bench.probe", json.dumps(job)], stdout=out,
                                stderr=err, text=True)
        peak, start = None, time.monotonic()
        while proc.poll() is None:
            peak = _peak_mb(proc.pid) or peak
            if time.monotonic() - start > timeout:
                proc.kill()
                proc.wait()
                raise subprocess.TimeoutExpired(proc.args, timeout)
            time.sleep(poll_s)
        out.seek(0)
        err.seek(0)
        lines, errors = out.read().strip().splitlines(), err.read().strip().splitlines()
    code = proc.returncode
    if code < 0 or code in (128 + signal.SIGKILL,):
        sig = -code if code < 0 else signal.SIGKILL
        return {"failed": f"killed (signal {sig})" + ("" if peak is None else f", last peak RSS {peak:.0f} MB"),
                "signal": sig, "last_peak_mb": peak}
    if code != 0 or not lines:
        last = (errors or ["no output"])[-1]
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
