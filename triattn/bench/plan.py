"""The benchmark run plan: one baseline and several pruned modes, timed in interleaved runs after
untimed warm-ups, and their quality measured once per prompt and mode, outside the timing.

Prompts are either text (through the chat template) or exact token counts cut from the shipped
text sample (long-context runs). This module produces raw figures only; `report.py` aggregates
them and draws the tables.
"""
from __future__ import annotations

import itertools
import os
import platform
from dataclasses import dataclass
from pathlib import Path

from ..core.config import EvictionConfig, full_cache
from ..policies import get_policy
from ..core.quality import compare, teacher_forced
from ..core.runner import can_force
from ..paths import ASSETS
from ..core.runs import raw_run, run
from .stepwise import execute_steps

CARD_PROMPTS = ASSETS / "prompts" / "card.txt"
SAMPLE_TEXT = ASSETS / "text" / "stdlib-sample.txt"
WARMUP_TOKENS = 16
FULL = full_cache()


@dataclass(frozen=True)
class Mode:
    name: str
    eviction: EvictionConfig


@dataclass
class Prompt:
    label: str
    ids: list
    text: str | None = None


@dataclass(frozen=True)
class Cell:
    """One (prompt, mode) pair that is timed `runs` times."""
    prompt: int
    mode: int


@dataclass
class Plan:
    prompts: list
    modes: list
    cells: list                 # timed, in the order each run index visits them
    pairs: list                 # (baseline cell, pruned cell): the quality comparisons
    reference: Cell | None = None  # the baseline at context = budget (long-context plans)


CARD_MODE = "card (knorm-seed/zero, every step)"


def make_modes(policies, evicts, budgets, recent_window, sink_tokens, prune_interval,
               genai_aggregation: str = "norm_sum", with_card: bool = False, keep_prompt: bool = False) -> list[Mode]:
    """The baseline, then every policy x mechanism x budget; names carry the budget when several.
    A backend policy has its own mechanism (e.g. ov-genai/blocks): one mode per budget.
    with_card adds the model card's own configuration (its rule, K/V zeroing, pruning at every step,
    no sink tokens) at the same budget and recent window, to measure it side by side."""
    pruned = [p for p in dict.fromkeys(policies) if get_policy(p).prunes]
    if not pruned:
        raise ValueError("give at least one pruning policy (the baseline always runs)")
    budgets = list(dict.fromkeys(budgets))
    for b in budgets:
        if b <= sink_tokens + recent_window:
            raise ValueError(f"budget {b} must exceed sink tokens + recent window ({sink_tokens} + {recent_window})")
    kw = dict(recent_window=recent_window, sink_tokens=sink_tokens, prune_interval=prune_interval,
              genai_aggregation=genai_aggregation, keep_prompt=keep_prompt)
    modes = [Mode("baseline", full_cache(budget=max(budgets), **kw))]
    for b, p, e in itertools.product(budgets, pruned, dict.fromkeys(evicts)):
        cfg = EvictionConfig(policy=p, evict=e, budget=b, **kw)
        name = f"{p}/{cfg.evict}" + (f"@{b}" if len(budgets) > 1 else "")
        if all(m.name != name for m in modes):
            modes.append(Mode(name, cfg))
    if with_card:
        modes.append(Mode(CARD_MODE, EvictionConfig(policy="knorm-seed", evict="zero", budget=max(budgets),
                                                    recent_window=recent_window, sink_tokens=0, prune_interval=1)))
    return modes


def read_prompts(path) -> list[str]:
    """One prompt a line, or prompts of several lines separated by lines of `---`; blanks are skipped."""
    from ..core.text import split_prompts
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"prompts file not found: {p}")
    prompts = split_prompts(p.read_text(encoding="utf-8"))
    if not prompts:
        raise ValueError(f"{p} holds no prompts (one prompt a line, or blocks separated by lines of ---)")
    return prompts


def short_label(text: str, width: int = 28) -> str:
    return text if len(text) <= width else text[:width - 1].rstrip() + "…"


def text_prompts(tokenizer, texts, chat: bool = True) -> list[Prompt]:
    from ..core.text import encode_prompt
    return [Prompt(short_label(t), encode_prompt(tokenizer, t, chat), t) for t in texts]


def context_prompts(tokenizer, lengths, max_new_tokens: int, max_context: int) -> list[Prompt]:
    """Prompts of exactly `lengths` tokens: the first N tokens of the shipped sample, no template."""
    ids = tokenizer.encode(SAMPLE_TEXT.read_text(encoding="utf-8"), add_special_tokens=False)
    for n in lengths:
        if n < 1 or n > len(ids):
            raise ValueError(f"context length {n} is outside 1..{len(ids)} (tokens in the shipped sample)")
        if n + max_new_tokens > max_context:
            raise ValueError(f"context length {n} + {max_new_tokens} new tokens exceed the model's context "
                             f"of {max_context}")
    return [Prompt(f"{n} tokens", ids[:n]) for n in lengths]


def prompt_plan(prompts, modes) -> Plan:
    cells = [Cell(p, m) for p in range(len(prompts)) for m in range(len(modes))]
    pairs = [(Cell(p, 0), Cell(p, m)) for p in range(len(prompts)) for m in range(1, len(modes))]
    return Plan(prompts, modes, cells, pairs)


def context_plan(prompts, modes, extra: Prompt | None, reference: int) -> Plan:
    """Every length in every mode, plus the baseline alone at context = budget when the budget is
    not one of the lengths (`extra`), for the limit ratio. `reference`: the index of the prompt at
    context = budget (len(prompts) when `extra` is given)."""
    plan = prompt_plan(list(prompts), modes)
    if extra is not None:
        plan.prompts.append(extra)
        plan.cells.append(Cell(len(plan.prompts) - 1, 0))
    plan.reference = Cell(reference, 0)
    return plan


def schedule(plan: Plan, runs: int) -> list[tuple[int, Cell]]:
    """Run index outermost, so machine drift over time reaches every mode alike."""
    return [(r, c) for r in range(runs) for c in plan.cells]


def calibrations(model, modes) -> dict:
    return {m.name: get_policy(m.eviction.policy).prepare(model.info.model_dir) for m in modes}


def warmup_tokens(mode: Mode, prompt_len: int, max_new_tokens: int) -> int:
    """Short, but long enough for a pruning mode to reach its first prune event."""
    if not mode.eviction.prunes:
        return min(max_new_tokens, WARMUP_TOKENS)
    e = mode.eviction
    return min(max_new_tokens, max(WARMUP_TOKENS, e.budget + e.prune_interval - prompt_len + 1))


INTERLEAVE = {
    "runs": "whole runs alternate between modes; one session, so a run alone on the model gives a long "
            "prompt's working memory back, and each run's memory delta is its own",
    "steps": "the modes of one prompt advance one token each in turn, each in its own session (as the web "
             "page runs them): machine drift reaches every mode alike, step by step; memory deltas overlap, "
             "so none is reported",
}


def execute(model, tokenizer, plan: Plan, sampling, max_new_tokens: int, runs: int, calib: dict,
            progress=None, interleave: str = "runs") -> tuple[list, dict]:
    """Untimed warm-up per mode, then the interleaved timed runs.
    Returns (raw runs, first run's tokens per cell)."""
    if interleave not in INTERLEAVE:
        raise ValueError(f"unknown interleave {interleave!r}; choose one of {', '.join(INTERLEAVE)}")
    session = model.new_session()
    for m, mode in enumerate(plan.modes):
        p = next(c.prompt for c in plan.cells if c.mode == m)
        ids = plan.prompts[p].ids
        run(model, tokenizer, ids, mode.eviction, sampling, warmup_tokens(mode, len(ids), max_new_tokens),
            session=session, calibration=calib[mode.name])
    if interleave == "steps":
        del session
        return execute_steps(model, tokenizer, plan, sampling, max_new_tokens, runs, calib, progress)
    raw, tokens = [], {}
    for r, cell in schedule(plan, runs):
        mode = plan.modes[cell.mode]
        result = run(model, tokenizer, plan.prompts[cell.prompt].ids, mode.eviction, sampling, max_new_tokens,
                     session=session, calibration=calib[mode.name])
        raw.append(raw_run(result, r, cell, mode.name))
        tokens.setdefault(cell, result.token_ids)
        if progress is not None:
            progress.update(1)
    return raw, tokens


def measure_quality(model, plan: Plan, tokens: dict, calib: dict, progress=None) -> list[dict]:
    """Quality of every pruned cell against its baseline, from the first timed run's tokens; the
    full-cache teacher-forced pass is computed once per prompt and shared."""
    session = model.new_session()
    full, out = {}, []
    for base, cell in plan.pairs:
        ids, mode = plan.prompts[cell.prompt].ids, plan.modes[cell.mode]
        if base not in full and can_force(mode.eviction):
            full[base] = teacher_forced(session, ids, tokens[base], FULL)
        q = compare(session, ids, tokens[base], tokens[cell], mode.eviction, calib[mode.name], full_forced=full.get(base))
        out.append({"prompt": cell.prompt, "mode": mode.name, **q.as_dict(),
                    "compared_tokens": max(len(tokens[base]), len(tokens[cell]))})
        if progress is not None:
            progress.update(1)
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(model) -> dict:
    import openvino as ov
    import psutil
    try:
        device_name = str(ov.Core().get_property(model.device, "FULL_DEVICE_NAME"))
    except RuntimeError:
        device_name = model.device
    return {"cpu": cpu_model(), "cores_logical": os.cpu_count(), "cores_physical": psutil.cpu_count(logical=False),
            "device": model.device, "device_name": device_name, "precision": model.precision,
            "kv_cache_precision": model.kv_precision.to_string(), "kv_bytes_per_token": model.kv_bytes_per_token,
            "openvino": ov.get_version(), "model_dir": str(model.info.model_dir),
            "model_type": model.info.model_type, "python": platform.python_version(), "platform": platform.platform()}


def describe(plan: Plan, raw: list | None = None) -> dict:
    """Settings of every mode; a backend mode also gets `used`, what its first run really ran."""
    used = {}
    for r in raw or []:
        if "used" in r:
            used.setdefault(r["mode"], r["used"])
    return {"modes": [{"name": m.name, **m.eviction.as_dict(), **({"used": used[m.name]} if m.name in used else {})}
                      for m in plan.modes],
            "prompts": [{"label": p.label, "text": p.text, "tokens": len(p.ids)} for p in plan.prompts]}


def benchmark(model, tokenizer, plan: Plan, sampling, max_new_tokens: int, runs: int, bar=None,
              interleave: str = "runs") -> dict:
    """Timed runs, then quality. `bar(total=, desc=)`: an optional progress-bar factory (tqdm)."""
    calib = calibrations(model, plan.modes)
    progress = bar(total=runs * len(plan.cells), desc="runs") if bar else None
    raw, tokens = execute(model, tokenizer, plan, sampling, max_new_tokens, runs, calib, progress, interleave)
    if progress is not None:
        progress.close()
    progress = bar(total=len(plan.pairs), desc="quality") if bar else None
    quality = measure_quality(model, plan, tokens, calib, progress)
    if progress is not None:
        progress.close()
    return {"machine": machine_info(model), **describe(plan, raw), "runs": raw, "quality": quality}
