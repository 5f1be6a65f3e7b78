"""Our decode loop's baseline against OpenVINO GenAI's own `LLMPipeline` (`bench --vs-genai`).

A user who sees our full-cache baseline slower than the runtime they already use would not trust
our pruned figures, so both run here on the same IR, device and precision, greedy, from the same
token ids, whole runs alternating (ours, GenAI, GenAI, ours, ...) so a shared machine's drift
reaches both alike. Each token is timed on our clock: ours from the engine's step records,
GenAI's by a streamer that notes the time of every token it is handed. TTFT is the time to the
first token; TPOT the median gap between later tokens. Figures are medians over runs; ratios are
ours / GenAI's (below 1: ours is faster).
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from ..core.config import SamplingConfig, full_cache
from ..core.engine import generate
from ..errors import runtime_failure
from ..openvino.model import PRECISIONS, ModelError

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
    """GenAI's LLMPipeline on `model`'s folder, device and precision, its other settings its own but
    one: no prefix caching. With it, GenAI keeps a prompt's cache blocks and, asked the same prompt
    again, skips its prefill (a 2,000-token prompt's TTFT fell to 80 ms), which no fresh prompt of a
    user's gets, and which our loop does not do.

    stateful: GenAI on the stateful model our loop runs (ATTENTION_BACKEND SDPA) instead of its
    default paged-attention form: the same graph as ours, so what differs from ours is the loop."""
    import openvino_genai as og
    if stateful:
        extra = {"ATTENTION_BACKEND": "SDPA"}
    else:
        sc = og.SchedulerConfig()
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


def _row(label: str, prompt_tokens: int, got: dict) -> dict:
    med = {name: {"ttft_ms": 1000 * statistics.median(r["ttft_s"] for r in rs),
                  "tpot_ms": 1000 * statistics.median(statistics.median(r["steps_s"]) for r in rs if r["steps_s"])}
           for name, rs in got.items()}
    same = all(a["tokens"] == b["tokens"] for a, b in zip(got["ours"], got["genai"]))
    row = {"prompt": label, "prompt_tokens": prompt_tokens, "new_tokens": len(got["ours"][0]["tokens"]),
           "ours": med["ours"], "genai": med["genai"], "same_tokens": same,
           "ttft_ratio": med["ours"]["ttft_ms"] / med["genai"]["ttft_ms"],
           "tpot_ratio": med["ours"]["tpot_ms"] / med["genai"]["tpot_ms"]}
    if "genai_stateful" in med:
        row["genai_stateful"] = med["genai_stateful"]
        row["stateful_ttft_ratio"] = med["ours"]["ttft_ms"] / med["genai_stateful"]["ttft_ms"]
        row["stateful_tpot_ratio"] = med["ours"]["tpot_ms"] / med["genai_stateful"]["tpot_ms"]
    return row


def table(rows: list[dict]) -> str:
    from .report import table as markdown
    lim = LIMITS
    cells = [[r["prompt"], r["prompt_tokens"], f"{r['ours']['ttft_ms']:.1f}", f"{r['genai']['ttft_ms']:.1f}",
              f"{r['ttft_ratio']:.3f}", "met" if r["ttft_ratio"] <= lim["ttft_ratio"] else "missed",
              f"{r['ours']['tpot_ms']:.2f}", f"{r['genai']['tpot_ms']:.2f}", f"{r['tpot_ratio']:.3f}",
              "met" if r["tpot_ratio"] <= lim["tpot_ratio"] else "missed", "yes" if r["same_tokens"] else "no"]
             for r in rows]
    return markdown(["Prompt", "Tokens", "TTFT ours (ms)", "TTFT GenAI (ms)", "TTFT ratio", f"<= {lim['ttft_ratio']}",
                     "TPOT ours (ms)", "TPOT GenAI (ms)", "TPOT ratio", f"<= {lim['tpot_ratio']}", "Same tokens"], cells)


def stateful_table(rows: list[dict]) -> str:
    """Ours against GenAI on the same stateful model (rows of compare(stateful=True)): where the
    gap to GenAI's default lies, in the graph form or in the loop."""
    from .report import table as markdown
    cells = [[r["prompt"], r["prompt_tokens"], f"{r['ours']['ttft_ms']:.1f}", f"{r['genai_stateful']['ttft_ms']:.1f}",
              f"{r['stateful_ttft_ratio']:.3f}", f"{r['ours']['tpot_ms']:.2f}", f"{r['genai_stateful']['tpot_ms']:.2f}",
              f"{r['stateful_tpot_ratio']:.3f}"] for r in rows if "genai_stateful" in r]
    return markdown(["Prompt", "Tokens", "TTFT ours (ms)", "TTFT GenAI stateful (ms)", "TTFT ratio", "TPOT ours (ms)",
                     "TPOT GenAI stateful (ms)", "TPOT ratio"], cells)
