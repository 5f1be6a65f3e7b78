"""Long context, where pruning pays: a baseline that reads and keeps a long prompt against a pruned
run that reads it in pieces, cutting its cache to the budget before each (engine.py, chunked
prefill), each run in a process of its own (probe.py) so that every mode's peak RSS is its own.

Modes, at `context` tokens of the shipped text unless said:
- baseline: the whole prompt in one forward, the full cache;
- chunked: the pruned policy, the prompt read `chunk` tokens at a time, cut before each piece;
- whole then cut: the pruned policy, the prompt in one forward, cut once after it (the quality
  reference for chunked; its TTFT and peak are the baseline's plus the cut); measured in run 0 only;
- baseline at budget: the baseline on a prompt of `budget` tokens, for the limit ratio.

Figures, medians over runs (whole runs alternate between modes, so drift reaches all alike):
chunked / baseline TPOT (target <= 0.65), limit ratio chunked / baseline at budget (<= 1.05) with
its floor beside it (baseline at budget / baseline: no pruned run can go below it), TTFT and peak
RSS chunked / baseline (<= 0.5 each), and the quality cost: mean NLL of the baseline's own
continuation, teacher-forced, chunked minus whole-then-cut (ΔNLL, no target).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass

from . import report
from .probe import probe

TARGETS = {"tpot_ratio": 0.65, "limit_ratio": 1.05, "ttft_ratio": 0.5, "peak_ratio": 0.5}


@dataclass(frozen=True)
class LongSetup:
    context: int = 16384
    budget: int = 2048
    chunk: int = 512
    recent_window: int = 128
    sink_tokens: int = 4
    max_new_tokens: int = 32
    policy: str = "triattention"

    def check(self) -> None:
        """Refuse settings no mode can run, before any run starts (a ValueError for the user)."""
        from ..core.config import EvictionConfig
        for _, eviction, _ in self.modes().values():
            EvictionConfig(**eviction)
        if self.budget >= self.context:
            raise ValueError(f"the budget ({self.budget}) must be below the context ({self.context}): "
                             f"there would be nothing to prune")

    def modes(self) -> dict:
        """name -> (prompt tokens, eviction settings, timed every run)."""
        pruned = dict(policy=self.policy, budget=self.budget, recent_window=self.recent_window,
                      sink_tokens=self.sink_tokens)
        return {"baseline": (self.context, {"policy": "none"}, True),
                "chunked": (self.context, {**pruned, "prefill_chunk": self.chunk}, True),
                "whole then cut": (self.context, pruned, False),
                "baseline at budget": (self.budget, {"policy": "none"}, True)}


def measure(model_dir: str, setup: LongSetup, runs: int, precision: str = "auto", progress=None) -> dict:
    """Every mode in its own process, `runs` times alternating. In run 0 the baseline also reads
    off its own tokens' NLL, and chunked and whole-then-cut teacher-force those tokens after their
    timed run. Returns name -> answers."""
    got = {name: [] for name in setup.modes()}
    forced = None
    for r in range(runs):
        order = list(setup.modes().items())
        if r % 2:
            order = order[:1] + order[1:][::-1]  # the baseline leads: its tokens are the forced text
        for name, (tokens, eviction, timed) in order:
            if not timed and r > 0:
                continue
            first = r == 0 and tokens == setup.context
            job = {"model_dir": str(model_dir), "precision": precision, "tokens": tokens, "eviction": eviction,
                   "max_new_tokens": setup.max_new_tokens, "forced": forced if first else None,
                   "own_nll": first and forced is None}
            answer = probe(job)
            forced = forced or answer["tokens"]
            got[name].append(answer)
            if progress is not None:
                progress.update(1)
    return got


def _median(answers: list, key: str) -> float:
    return statistics.median(a[key] for a in answers)


def figures(got: dict, setup: LongSetup, targets: bool = True) -> list[dict]:
    """One row per figure: value, target (None: reported only, and for all when not `targets`),
    whether met, a note."""
    base, chunked, whole, ref = (got[k] for k in ("baseline", "chunked", "whole then cut", "baseline at budget"))
    tpot = {k: _median(v, "tpot_ms") for k, v in got.items()}
    floor = tpot["baseline at budget"] / tpot["baseline"]
    d_nll = chunked[0]["nll"] - whole[0]["nll"]
    rows = [
        ("chunked / baseline TPOT", tpot["chunked"] / tpot["baseline"], TARGETS["tpot_ratio"],
         f"floor {floor:.3f} (baseline at {setup.budget} / at {setup.context})"),
        (f"limit ratio: chunked / baseline at {setup.budget} tokens", tpot["chunked"] / tpot["baseline at budget"],
         TARGETS["limit_ratio"], ""),
        ("chunked / baseline TTFT", _median(chunked, "ttft_s") / _median(base, "ttft_s"), TARGETS["ttft_ratio"],
         f"whole then cut / baseline {_median(whole, 'ttft_s') / _median(base, 'ttft_s'):.3f}"),
        ("chunked / baseline peak RSS", _median(chunked, "peak_mb") / _median(base, "peak_mb"),
         TARGETS["peak_ratio"], _above_load(base, chunked)),
        ("ΔNLL chunked − whole then cut (forced continuation)", d_nll, None,
         f"each against the baseline: chunked {chunked[0]['nll'] - base[0]['nll']:+.3f}, "
         f"whole then cut {whole[0]['nll'] - base[0]['nll']:+.3f}"),
    ]
    return [{"what": w, "value": v, "target": t if targets else None,
             "met": None if t is None or not targets else v <= t, "note": n} for w, v, t, n in rows]


def _above_load(base: list, chunked: list) -> str:
    """Peak RSS less the loaded model's RSS: the run's own memory, which is what pruning can save."""
    b = _median(base, "peak_mb") - _median(base, "loaded_mb")
    c = _median(chunked, "peak_mb") - _median(chunked, "loaded_mb")
    return f"above the loaded model: {c:.0f} / {b:.0f} MB = {c / b:.3f}" if b > 0 else ""


def mode_rows(got: dict) -> list[list[str]]:
    """Per mode: prompt tokens, runs, TTFT, TPOT, peak RSS, above the loaded model, KV after prefill."""
    out = []
    for name, answers in got.items():
        out.append([name, str(len(answers)), report.fmt(_median(answers, "ttft_s"), ".2f", " s"),
                    report.fmt(_median(answers, "tpot_ms"), ".1f", " ms"),
                    report.fmt(_median(answers, "peak_mb"), ".0f", " MB"),
                    report.fmt(_median(answers, "peak_mb") - _median(answers, "loaded_mb"), ".0f", " MB"),
                    str(answers[0]["kv_after_prefill"])])
    return out


MODE_HEADER = ["Mode", "Runs", "TTFT", "TPOT", "Peak RSS", "Above loaded model", "KV after prefill"]
