"""Long context, where pruning pays: a baseline that reads and keeps a long prompt against a pruned
run that reads it in pieces, cutting its cache to the budget before each (engine.py, chunked
prefill), each run in a process of its own (probe.py) so that every mode's peak RSS is its own.

Modes, at `context` tokens of the shipped text unless said:
- baseline: the whole prompt in one forward, the full cache (with `baseline_chunk`, in pieces of
  that many tokens: the same cache, and the memory of one piece's forward instead of the whole
  prompt's, which a model whose forward needs more than the machine holds must take);
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

from . import report, spread
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
    baseline_chunk: int = 0  # 0: the baselines read their prompt in one forward

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
        base = {"policy": "none", **({"prefill_chunk": self.baseline_chunk} if self.baseline_chunk else {})}
        return {"baseline": (self.context, base, True),
                "chunked": (self.context, {**pruned, "prefill_chunk": self.chunk}, True),
                "whole then cut": (self.context, {**pruned, "prefill_chunk": 0}, False),
                "baseline at budget": (self.budget, base, True)}


def measure(model_dir: str, setup: LongSetup, runs: int, precision: str = "auto", progress=None,
            form: str = "paged") -> dict:
    """Every mode in its own process, `runs` times alternating, on the cache form `form` (each
    answer says the form it ran). In run 0 the baseline also reads off its own tokens' NLL, and
    chunked and whole-then-cut teacher-force those tokens after their timed run. Returns name -> answers."""
    got = {name: [] for name in setup.modes()}
    forced = None
    for r in range(runs):
        order = list(setup.modes().items())
        if r % 2:
            order = order[:1] + order[1:][::-1]  # the baseline leads: its tokens are the forced text
        for name, (tokens, eviction, timed) in order:
            if (not timed and r > 0) or failed(got[name]):
                continue  # a run the machine could not hold is not tried again
            if name == "whole then cut" and failed(got["baseline"]):
                # it reads the whole prompt in one forward: more working memory than the baseline needed
                got[name].append({"failed": f"not run: the baseline failed ({failed(got['baseline'])}), and this "
                                            f"run reads the whole prompt in one forward"})
                continue
            first = r == 0 and tokens == setup.context
            job = {"model_dir": str(model_dir), "precision": precision, "form": form, "tokens": tokens,
                   "eviction": eviction,
                   "max_new_tokens": setup.max_new_tokens, "forced": forced if first else None,
                   "own_nll": first and forced is None}
            answer = probe(job)
            if name == "baseline" and "tokens" in answer:
                forced = answer["tokens"]
            got[name].append(answer)
            if progress is not None:
                progress.update(1)
    return got


def failed(answers: list) -> str | None:
    """Why a mode has no figures (its process was killed, or it could not run), else None."""
    return next((a["failed"] for a in answers if "failed" in a), None)


def _median(answers: list, key: str) -> float | None:
    return None if failed(answers) or not answers else statistics.median(a[key] for a in answers)


def _values(answers: list, key: str) -> list:
    """One value per run, in run order (run r of every mode ran in the same round)."""
    return [] if failed(answers) else [a.get(key) for a in answers]


def _paired(got: dict, num: str, den: str, key: str) -> dict | None:
    return spread.spread(spread.paired_ratios(_values(got[num], key), _values(got[den], key)))


def _above(answers: list) -> list:
    return [a["peak_mb"] - a["loaded_mb"] for a in answers] if not failed(answers) else []


def figures(got: dict, setup: LongSetup, targets: bool = True) -> list[dict]:
    """One row per figure: its spread over runs (each run's ratio of two modes from the same round;
    None where a mode it needs could not run), target (None: reported only, and for all when not
    `targets`), verdict, a note; the TPOT ratio's row has its floor's spread."""
    nll = {k: None if failed(v) or not v else v[0].get("nll") for k, v in got.items()}
    why = failed(got["baseline"])
    floor = _paired(got, "baseline at budget", "baseline", "tpot_ms")
    whole_ttft = _paired(got, "whole then cut", "baseline", "ttft_s")
    above = spread.spread(spread.paired_ratios(_above(got["chunked"]), _above(got["baseline"])))
    rows = [
        ("chunked / baseline TPOT", _paired(got, "chunked", "baseline", "tpot_ms"), TARGETS["tpot_ratio"],
         "" if floor is None else f"floor {spread.fmt(floor)} (baseline at {setup.budget} / at {setup.context})"),
        (f"limit ratio: chunked / baseline at {setup.budget} tokens",
         _paired(got, "chunked", "baseline at budget", "tpot_ms"), TARGETS["limit_ratio"], ""),
        ("chunked / baseline TTFT", _paired(got, "chunked", "baseline", "ttft_s"), TARGETS["ttft_ratio"],
         "" if whole_ttft is None else f"whole then cut / baseline {spread.fmt(whole_ttft)}"),
        ("chunked / baseline peak RSS", _paired(got, "chunked", "baseline", "peak_mb"), TARGETS["peak_ratio"],
         _above_load(got["chunked"], above)),
        ("ΔNLL chunked − whole then cut (forced continuation)",
         _one(_diff(nll["chunked"], nll["whole then cut"])), None,
         f"run 0, {setup.max_new_tokens} forced tokens" +
         _fmt_note("; each against the baseline: chunked {:+.3f}", _diff(nll["chunked"], nll["baseline"])) +
         _fmt_note(", whole then cut {:+.3f}", _diff(nll["whole then cut"], nll["baseline"]))),
    ]
    out = []
    for w, s, t, n in rows:
        t = t if targets else None
        if s is None and why:
            n = f"the baseline {why}" + (f"; {n}" if n else "")
        v = spread.verdict(s, t)
        out.append({"what": w, "value": None if s is None else s["value"], "spread": s, "target": t,
                    "verdict": v, "met": None if v is None else v == "met", "note": n})
    out[0]["floor"] = None if floor is None else floor["value"]  # the TPOT ratio's physical floor
    out[0]["floor_spread"] = floor
    return out


def _one(value) -> dict | None:
    return None if value is None else {"value": value, "lo": value, "hi": value, "n": 1, "level": 0.0}


def _diff(a, b):
    return None if a is None or b is None else a - b


def _fmt_note(text: str, value) -> str:
    return "" if value is None else text.format(value)


def _above_load(chunked: list, above: dict | None) -> str:
    """Peak RSS less the loaded model's RSS: the run's own memory, which is what pruning can save."""
    if above is None:
        c = _median(chunked, "peak_mb")
        return "" if c is None else f"chunked peaked at {c:.0f} MB"
    return f"above the loaded model: chunked / baseline {spread.fmt(above)}"


def form_of(got: dict) -> str:
    """The cache form the modes' runs ran on, from their answers: "paged", "stateful", both with
    why where they differ, or "stateful (not recorded)" for runs saved before the answers said
    (the probes loaded the stateful form then)."""
    forms = {a["form"] for answers in got.values() for a in answers if "form" in a}
    notes = sorted({a["form_note"] for answers in got.values() for a in answers if a.get("form_note")})
    if not forms:
        return "stateful (not recorded)"
    return " and ".join(sorted(forms)) + "".join(f"; {n}" for n in notes)


def mode_rows(got: dict) -> list[list[str]]:
    """Per mode: prompt tokens, runs, TTFT, TPOT, peak RSS, above the loaded model, KV after prefill."""
    out = []
    for name, answers in got.items():
        if failed(answers):
            out.append([name, str(len(answers)), failed(answers), "", "", "", ""])
            continue
        out.append([name, str(len(answers)), report.fmt(_median(answers, "ttft_s"), ".2f", " s"),
                    report.fmt(_median(answers, "tpot_ms"), ".1f", " ms"),
                    report.fmt(_median(answers, "peak_mb"), ".0f", " MB"),
                    report.fmt(_median(answers, "peak_mb") - _median(answers, "loaded_mb"), ".0f", " MB"),
                    str(answers[0]["kv_after_prefill"])])
    return out


MODE_HEADER = ["Mode", "Runs", "TTFT", "TPOT", "Peak RSS", "Above loaded model", "KV after prefill"]
