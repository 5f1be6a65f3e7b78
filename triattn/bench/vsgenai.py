"""Our decode loop's baseline against OpenVINO GenAI's own `LLMPipeline` (`bench --vs-genai`).

A user who sees our full-cache baseline slower than the runtime they already use would not trust
our pruned figures, so both run here on the same IR, device and precision, greedy, from the same
token ids, whole runs alternating (ours, GenAI, GenAI, ours, ...) so a shared machine's drift
reaches both alike. Each token is timed on our clock: ours from the engine's step records,
GenAI's by a streamer that notes the time of every token it is handed. TTFT is the time to the
first token; TPOT the median gap between later tokens. Every run is kept; a ratio is ours / GenAI's
of one round (below 1: ours is faster), given as the median over rounds with its interval
(spread.py), and a target is met only when that interval lies within it.
"""
from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from ..core.config import SamplingConfig, full_cache
from ..core.engine import generate
from ..errors import runtime_failure
from ..openvino.model import PRECISIONS, ModelError
from . import spread

BASELINE = full_cache()
LIMITS = {"tpot_ratio": 1.02, "ttft_ratio": 1.05}
CONTEXT = 2000


def prompts(tok, max_context: int, max_new_tokens: int, chat: bool = True, prompts_file=None,
            lengths=None) -> dict:
    """label -> token ids: the first prompt of `prompts_file` (default the card's, about 20 tokens)
    and contexts of `lengths` tokens from the shipped text (default one of 2,000)."""
    from . import plan as bench
    first = bench.read_prompts(prompts_file or bench.CARD_PROMPTS)[0]
    out = {bench.short_label(first): bench.text_prompts(tok, [first], chat=chat)[0].ids}
    lengths = lengths or [min(CONTEXT, max_context - max_new_tokens)]
    out.update({p.label: p.ids for p in bench.context_prompts(tok, lengths, max_new_tokens, max_context)})
    return out


def pipeline(model, stateful: bool = False):
    """GenAI's LLMPipeline on `model`'s folder, device and precision, with the settings it gives
    itself (its latency-oriented scheduler: a prompt is read in one forward) but one: no prefix
    caching. With it, GenAI keeps a prompt's cache blocks and, asked the same prompt again, skips
    its prefill (a 2,000-token prompt's TTFT fell to 80 ms), which no fresh prompt of a
    user's gets, and which our loop does not do.

    stateful: GenAI on the stateful model our loop runs (ATTENTION_BACKEND SDPA) instead of its
    default paged-attention form: the same graph as ours, so what differs from ours is the loop."""
    import openvino_genai as og
    if stateful:
        extra = {"ATTENTION_BACKEND": "SDPA"}
    else:
        sc = og.SchedulerConfig()  # a fresh config reads prompts in pieces of 256 (its own default);
        sc.max_num_batched_tokens = sys.maxsize  # LLMPipeline's latency default reads them whole
        sc.enable_prefix_caching = False
        extra = {"scheduler_config": sc}
    try:
        return og.LLMPipeline(model.info.model_dir, model.device, **extra, **PRECISIONS[model.precision])
    except RuntimeError as e:
        raise runtime_failure(f"OpenVINO GenAI cannot load {model.info.model_dir} as an LLMPipeline", e) from None


def _clock():
    """A GenAI streamer that keeps the time each token arrives."""
    import openvino_genai as og

    class Clock(og.StreamerBase):
        def __init__(self):
            super().__init__()
            self.times, self.tokens = [], []

        def write(self, token):
            now = time.perf_counter()
            for t in (token if isinstance(token, list) else [token]):
                self.times.append(now)
                self.tokens.append(int(t))
            return og.StreamingStatus.RUNNING

        def end(self):
            pass
    return Clock()


def genai_run(pipe, ids, max_new_tokens: int) -> dict:
    """One greedy generation through GenAI: tokens, TTFT and the gaps between tokens."""
    import openvino as ov
    import openvino_genai as og
    cfg = og.GenerationConfig()
    cfg.max_new_tokens = max_new_tokens
    cfg.do_sample = False
    arr = np.asarray([ids], np.int64)
    inputs = og.TokenizedInputs(ov.Tensor(arr), ov.Tensor(np.ones_like(arr)))
    clock = _clock()
    t0 = time.perf_counter()
    try:
        pipe.generate(inputs, cfg, clock)
    except RuntimeError as e:
        raise runtime_failure("OpenVINO GenAI failed while generating", e) from None
    if not clock.times:
        raise ModelError("OpenVINO GenAI produced no tokens")
    return {"tokens": clock.tokens, "ttft_s": clock.times[0] - t0, "steps_s": list(np.diff(clock.times))}


def our_run(model, ids, max_new_tokens: int, session=None, eviction=BASELINE) -> dict:
    """One greedy generation through our decode loop (the full cache unless `eviction` says), timed the same way."""
    session = session or model.new_session()
    t0 = time.perf_counter()
    times, tokens = [], []
    for r in generate(session, ids, eviction, SamplingConfig(), max_new_tokens):
        times.append(time.perf_counter())
        tokens.append(r.token)
    return {"tokens": tokens, "ttft_s": times[0] - t0, "steps_s": list(np.diff(times))}


def compare(model, prompts: dict, max_new_tokens: int, runs: int, progress=None, stateful: bool = False) -> list[dict]:
    """Per prompt (label -> token ids): each side `runs` times, taking turns to lead, after one
    warm-up each; medians and ratios. Returns one row per prompt. stateful: GenAI on the stateful
    model as a third side (a third compiled copy of the model)."""
    session = model.new_session()
    pipes = {"genai": pipeline(model), **({"genai_stateful": pipeline(model, stateful=True)} if stateful else {})}
    sides = {"ours": lambda ids: our_run(model, ids, max_new_tokens, session),
             **{name: (lambda ids, p=p: genai_run(p, ids, max_new_tokens)) for name, p in pipes.items()}}
    rows = []
    for label, ids in prompts.items():
        for run in sides.values():
            run(ids)  # warm-up: the first run of a shape meets cold caches
        got = {name: [] for name in sides}
        for r in range(runs):
            names = list(sides) if r % 2 == 0 else list(sides)[::-1]  # 2 sides: ours, GenAI / GenAI, ours
            for name in names:
                got[name].append(sides[name](ids))
                if progress is not None:
                    progress.update(1)
        rows.append(_row(label, len(ids), got))
    return rows


def _per_run(r: dict) -> dict:
    """One run's own figures, kept in the JSON: TTFT, TPOT (median gap), every gap, tokens."""
    return {"ttft_ms": 1000 * r["ttft_s"], "tpot_ms": 1000 * statistics.median(r["steps_s"]) if r["steps_s"] else None,
            "steps_ms": [1000 * x for x in r["steps_s"]], "new_tokens": len(r["tokens"])}


def _row(label: str, prompt_tokens: int, got: dict) -> dict:
    """Per side its runs and medians; per ratio the median of the runs' own ratios (run r of ours
    against run r of GenAI, taken in the same round) with its interval and verdict."""
    runs = {name: [_per_run(r) for r in rs] for name, rs in got.items()}
    med = {name: {k: statistics.median(x[k] for x in rs if x[k] is not None) for k in ("ttft_ms", "tpot_ms")}
           for name, rs in runs.items()}
    same = all(a["tokens"] == b["tokens"] for a, b in zip(got["ours"], got["genai"]))
    row = {"prompt": label, "prompt_tokens": prompt_tokens, "new_tokens": len(got["ours"][0]["tokens"]),
           "runs": runs, "ours": med["ours"], "genai": med["genai"], "same_tokens": same}
    for other, prefix in (("genai", ""), ("genai_stateful", "stateful_")):
        if other not in runs:
            continue
        if other != "genai":
            row[other] = med[other]
        for key in ("ttft", "tpot"):
            s = spread.spread(spread.paired_ratios([x[f"{key}_ms"] for x in runs["ours"]],
                                                   [x[f"{key}_ms"] for x in runs[other]]))
            row[f"{prefix}{key}_ratio"] = s["value"]
            row[f"{prefix}{key}_ratio_spread"] = s
            if not prefix:
                row[f"{key}_verdict"] = spread.verdict(s, LIMITS[f"{key}_ratio"])
    return row


def refresh(row: dict, runs: int) -> None:
    """A saved row of an older perf file kept only medians: its ratios get n = `runs` and no
    interval; a row with its runs gets its spreads and verdicts recomputed."""
    if "runs" in row:
        same = row["same_tokens"]  # the saved runs keep times, not tokens
        row.update(_row(row["prompt"], row["prompt_tokens"], {n: [_from_saved(x) for x in rs]
                                                               for n, rs in row["runs"].items()}), same_tokens=same)
        return
    for key in ("ttft_ratio", "tpot_ratio", "stateful_ttft_ratio", "stateful_tpot_ratio"):
        if key in row:
            row[f"{key}_spread"] = {"value": row[key], "lo": None, "hi": None, "n": runs, "level": None}
    for key in ("ttft", "tpot"):
        row[f"{key}_verdict"] = "not shown: runs not saved"


def _from_saved(x: dict) -> dict:
    return {"ttft_s": x["ttft_ms"] / 1000, "steps_s": [t / 1000 for t in x["steps_ms"]], "tokens": [0] * x["new_tokens"]}


def _ratio(row: dict, key: str) -> str:
    s = row[f"{key}_spread"]
    if s["lo"] is None:
        return f"{s['value']:.3f} (median of {s['n']} runs; runs not saved)"
    return spread.fmt(s)


def table(rows: list[dict]) -> str:
    from .report import table as markdown
    lim = LIMITS
    cells = [[r["prompt"], r["prompt_tokens"], f"{r['ours']['ttft_ms']:.1f}", f"{r['genai']['ttft_ms']:.1f}",
              _ratio(r, "ttft_ratio"), r["ttft_verdict"], f"{r['ours']['tpot_ms']:.2f}", f"{r['genai']['tpot_ms']:.2f}",
              _ratio(r, "tpot_ratio"), r["tpot_verdict"], "yes" if r["same_tokens"] else "no"] for r in rows]
    return markdown(["Prompt", "Tokens", "TTFT ours (ms)", "TTFT GenAI (ms)", "TTFT ratio [interval] runs",
                     f"<= {lim['ttft_ratio']}", "TPOT ours (ms)", "TPOT GenAI (ms)", "TPOT ratio [interval] runs",
                     f"<= {lim['tpot_ratio']}", "Same tokens"], cells)


def stateful_table(rows: list[dict]) -> str:
    """Ours against GenAI on the same stateful model (rows of compare(stateful=True)): where the
    gap to GenAI's default lies, in the graph form or in the loop."""
    from .report import table as markdown
    cells = [[r["prompt"], r["prompt_tokens"], f"{r['ours']['ttft_ms']:.1f}", f"{r['genai_stateful']['ttft_ms']:.1f}",
              _ratio(r, "stateful_ttft_ratio"), f"{r['ours']['tpot_ms']:.2f}", f"{r['genai_stateful']['tpot_ms']:.2f}",
              _ratio(r, "stateful_tpot_ratio")] for r in rows if "genai_stateful" in r]
    return markdown(["Prompt", "Tokens", "TTFT ours (ms)", "TTFT GenAI stateful (ms)", "TTFT ratio [interval] runs",
                     "TPOT ours (ms)", "TPOT GenAI stateful (ms)", "TPOT ratio [interval] runs"], cells)
