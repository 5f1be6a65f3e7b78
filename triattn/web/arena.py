"""Arena: one baseline (full KV cache) and up to four pruned runs of the same prompt, side by side.

Scope: what the page's Arena and `infer --compare --policy a b c` run, without Gradio. It is the A/B
pair (ab.py) for N runs, on the same RunSet (runset.py): each run with its own session and cache, advanced
one token at a time in turn, the lead rotating each round (interleave.rotate) so that no run always
steps first and every run meets the machine's slow moments alike; one cancel() stops them all. The
leaderboard (tables.leaderboard) ranks the pruned runs by their quality cost against the baseline
(teacher-forced ΔNLL, as in kvpress's and the KV-compression papers' evaluations; token agreement;
first divergence), with each run's paired TPOT change against the baseline and its interval. When
the prompt carries an expected answer (answers.py), each run says whether it kept it.
"""
from __future__ import annotations

from ..core.answers import contains_answer
from ..core.config import EvictionConfig, SamplingConfig, check_max_new_tokens
from ..core.engine import check_request
from ..core.interleave import rotate
from ..core.metrics import pair_figures
from ..core.quality import compare, first_divergence, teacher_forced, token_agreement
from ..core.runner import check_runnable, runner_for
from ..core.runs import RunResult
from ..core.tables import BASELINE, Standing, describe_divergence, ranked
from ..policies import get_policy
from .ab import plot_frames
from .runset import BASELINE_EVICTION, RunSet

MAX_PRUNED = 4


def label(e: EvictionConfig) -> str:
    return f"{e.policy}/{e.evict}@{e.budget}"


def check_arena(evictions) -> None:
    """One clear line (ValueError) for an arena that cannot run."""
    if not evictions:
        raise ValueError("choose at least one pruning policy to run against the baseline")
    if any(not e.prunes for e in evictions):
        raise ValueError("the baseline (policy none) already runs in every arena: choose pruning policies only")
    if len(evictions) > MAX_PRUNED:
        raise ValueError(f"at most {MAX_PRUNED} pruned runs beside the baseline ({len(evictions)} chosen)")
    names = [label(e) for e in evictions]
    if len(set(names)) < len(names):
        raise ValueError("the same policy, mechanism and budget is chosen twice")


class Arena(RunSet):
    """The baseline and the pruned runs on one compiled model, advanced in turn (see module doc).

    `sides` maps each run's label to its RunResult, the baseline first. `expected`: the strings a
    right answer contains (answers.expected_for), or ().
    """

    def __init__(self, model, tokenizer, prompt_ids, evictions, sampling: SamplingConfig, max_new_tokens: int,
                 expected=(), own_peak: bool = False):
        evictions = list(evictions)
        check_arena(evictions)
        check_max_new_tokens(max_new_tokens)
        for e in evictions:
            check_request(model.info, len(prompt_ids), e, max_new_tokens)
            check_runnable(model, e)  # one choice its runtime refuses stops the arena before any run
        # Calibration is settled before any run starts, once per policy.
        calibrations = {e.policy: get_policy(e.policy).prepare(model.info.model_dir) for e in evictions}
        runs = [(BASELINE, BASELINE_EVICTION, None)] + [(label(e), e, calibrations[e.policy]) for e in evictions]
        # The runners are made here, not when the streams start, so that cancel() reaches them.
        sides = {name: RunResult(e, list(prompt_ids), runner=runner_for(model, e, cal)) for name, e, cal in runs}
        super().__init__(model, tokenizer, prompt_ids, sides, list(sides), rotate, calibrations, sampling,
                         max_new_tokens, own_peak)
        self.expected = tuple(expected)
        self.quality: dict = {}

    @property
    def names(self) -> list[str]:
        return list(self.sides)

    @property
    def pruned_names(self) -> list[str]:
        return self.names[1:]

    def measure_quality(self) -> dict:
        """Teacher-forced cost of each pruned run over the baseline's tokens (the baseline forced once).
        Raises errors.Cancelled after cancel()."""
        with self.quality_session() as session:
            b = self.baseline.token_ids
            forced = b and any(self.sides[n].runner.teacher_forcing for n in self.pruned_names)
            full = teacher_forced(session, self.prompt_ids, b, BASELINE_EVICTION) if forced else None
            for n in self.pruned_names:
                side = self.sides[n]
                self.quality[n] = compare(session, self.prompt_ids, b, side.token_ids, side.eviction,
                                          self.calibrations[side.eviction.policy], full_forced=full)
        return self.quality

    def kept(self, name: str) -> bool | None:
        """Whether the run's output contains the expected answer (None: the prompt carries none)."""
        return contains_answer(self.sides[name].text, self.expected)

    def standing(self, name: str) -> Standing | None:
        """The pruned run `name` against the baseline; None before both have a token."""
        b, p = self.baseline, self.sides[name]
        if not b.records or not p.records:
            return None
        f = pair_figures(b.records, p.records, (b.runner.kv_bytes_per_token(b.used),
                                                p.runner.kv_bytes_per_token(p.used)))
        div = first_divergence(b.token_ids, p.token_ids, b.done, p.done)
        q = self.quality.get(name)
        m = p.current_metrics()
        return Standing(name, token_agreement(b.token_ids, p.token_ids), None if q is None else q.delta_nll,
                        describe_divergence(div, self.tokenizer, b.done and p.done), f, m.prune_time_s,
                        self.kept(name), max(len(b.token_ids), len(p.token_ids)), self.stopped(name))

    def stopped(self, name: str) -> bool:
        """Whether Stop ended the run before it did."""
        return self.cancelled and not self.sides[name].done

    def standings(self) -> list[Standing]:
        return [s for s in (self.standing(n) for n in self.pruned_names) if s is not None]

    def plots(self):
        """(latency, KV) long tables with every run, the baseline first."""
        return plot_frames(self.sides, runs=tuple(self.names))

    def headline(self) -> str:
        """Which runs kept the expected answer (when there is one), and which ranks first."""
        done = self.standings()
        if not done:
            return ""
        best = ranked(done)[0]
        unmeasured = "; ΔNLL not measured: the runs were stopped" if self.cancelled and not self.quality else ""
        lead = (f"Least quality cost: {best.label}" +
                (f" (ΔNLL {best.delta_nll:+.3f})" if best.delta_nll is not None else
                 f" ({best.agreement_text} token agreement{unmeasured})"))
        if not self.expected:
            return lead + "."
        want = " and ".join(f"“{e}”" for e in self.expected)
        kept = [n for n in self.names if self.kept(n)]
        said = ", ".join(kept) if kept else "no run"
        short = [n for n in self.names if not self.kept(n) and self.stopped(n)]
        cut = f"; stopped before they said it: {', '.join(short)}" if short else ""
        return f"Expected answer {want}: kept by {said} ({len(kept)} of {len(self.names)} runs{cut}). {lead}."
