"""The page's Arena: handlers that connect the arena widgets (arenalayout.py) to web/arena.py.

As ui.py for the A/B pair: every user mistake becomes one readable gr.Error line; the run lives in
the event and the visitor's RunControl (its Stop cancels every run at once). When the runs end the
report (arenareport.py) is written to a fresh temporary folder, as HTML and JSON, for the Download
buttons.
"""
from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import gradio as gr

from ..core.answers import expected_for
from ..core.config import EvictionConfig, MECHANISMS
from ..core.inputs import parse_settings, prompt_ids
from ..core.tables import answer_cell, leaderboard
from ..errors import Cancelled
from ..policies import get_policy, list_policies
from . import arenareport
from .arena import MAX_PRUNED, Arena

from .pagetext import precision_label, refused_status, run_notes, timing_line
from .ui import DETAIL_EVERY_S, TEXT_EVERY_S, _open, _plot

SEP = " / "


def run_choices() -> list[tuple[str, str]]:
    """Every policy x mechanism a pruned run can be (a policy with its own mechanism once), and the
    baseline's policy, so that choosing it gets its own clear line."""
    out = []
    for name in list_policies():
        p = get_policy(name)
        mechs = [p.mechanism] if p.mechanism is not None or not p.prunes else list(MECHANISMS)
        for m in mechs:
            if getattr(p, "per_kv_head", False) and m != "hard":  # a token set per KV head: only hard eviction keeps it
                continue
            value = name if m is None else f"{name}{SEP}{m}"
            out.append((f"{value} (the baseline)" if not p.prunes else value, value))
    return out


def parse_budgets(text, fallback) -> list:
    """'64, 128' -> [64, 128]; blank: the page's budget."""
    parts = [t for t in str(text or "").replace(",", " ").split() if t]
    if not parts:
        return [fallback]
    try:
        return [int(t) for t in parts]
    except ValueError:
        raise ValueError(f"budgets are whole numbers separated by commas, got {text!r}") from None


def arena_evictions(runs, budgets_text, budget, recent, sinks, interval) -> list[EvictionConfig]:
    """The chosen runs x budgets as configs; ValueError with one line for the visitor."""
    runs = list(runs or [])
    if not runs:
        raise ValueError("choose at least one pruning policy to run against the baseline")
    out = []
    for b in parse_budgets(budgets_text, budget):
        for r in runs:
            policy, _, mech = str(r).partition(SEP)
            if not get_policy(policy).prunes:
                raise ValueError("the baseline (policy none) already runs in every arena: choose pruning "
                                 "policies only")
            out.append(parse_settings(policy, mech or "hard", b, recent, sinks, interval, 1, 0, 0)[0])
    if len(out) > MAX_PRUNED:
        raise ValueError(f"at most {MAX_PRUNED} pruned runs beside the baseline ({len(out)} chosen)")
    return out


SLOTS = MAX_PRUNED + 1  # output boxes: the baseline, then the pruned runs
VIEWS = MAX_PRUNED
N_OUTPUTS = 1 + SLOTS + 3 + VIEWS + 2  # status, boxes, leaderboard, 2 plots, eviction views, 2 downloads


def run_arena(prompt, model_value, device, runs, budgets, evict, budget, recent, sinks, interval, max_new,
              temperature, seed, control, progress=gr.Progress(), *, catalog):
    """Stream the arena: (status, SLOTS boxes, leaderboard, 2 plots, VIEWS eviction views, HTML, JSON)."""
    def outputs():
        evictions = arena_evictions(runs, budgets, budget, recent, sinks, interval)
        _, sampling, limit = parse_settings("knorm", evict, budget, recent, sinks, interval, max_new,
                                            temperature, seed)  # the sampling and new-token settings, checked
        yield from _run(prompt, model_value, device, evictions, sampling, limit, control, progress, catalog)
    yield from control.guard(outputs, "the arena failed")


def show_failure(control) -> tuple:
    """After a failed arena: its line in the status, every output left as it was (settings refused
    before anything ran leave the last arena's results; a run that failed midway leaves what its
    runs made, the status saying which)."""
    if not control.error:
        return (gr.skip(),) * N_OUTPUTS
    if control.refused:
        status = refused_status(control.error)
    else:
        end = "" if control.error.rstrip().endswith((".", "!", "?")) else "."
        status = (f"❌ **The arena failed: {control.error.rstrip()}{end}** What is below is what its runs made "
                  f"before it failed; change the settings and press Run arena again.")
    return (status,) + (gr.skip(),) * (N_OUTPUTS - 1)


def _run(prompt, model_value, device, evictions, sampling, max_new, control, progress, catalog):
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("the prompt is empty: type one or pick an example")
    progress(0.1, desc="Preparing the model")
    model, tok, load_s = _open(catalog.resolve(model_value, notify=lambda m: None), device, progress)
    arena = Arena(model, tok, prompt_ids(tok, prompt, model.info.max_context), evictions, sampling, max_new,
                  expected=expected_for(prompt), own_peak=True)
    control.pair = arena
    if control.stop.is_set():
        arena.cancel()
    started, last_text, last_detail = time.monotonic(), 0.0, 0.0
    yield _outputs(arena, f"Reading the prompt ({len(arena.prompt_ids)} tokens) in {len(arena.sides)} runs…",
                   detail=False)
    steps = arena.steps()
    try:
        for _ in steps:
            if control.stop.is_set():
                break
            now = time.monotonic()
            if now - last_text >= TEXT_EVERY_S:
                detail = now - last_detail >= DETAIL_EVERY_S
                last_text, last_detail = now, (now if detail else last_detail)
                made = min(len(s.token_ids) for s in arena.sides.values())
                status = f"Generating… {made} of {max_new} tokens in every run{run_notes(arena)}"
                yield _outputs(arena, status, detail)
    except Cancelled:
        pass
    finally:
        steps.close()
    stopped = control.stop.is_set()
    ran = f"{model.device}, {precision_label(model)}"
    status = f"{timing_line('Stopped' if stopped else 'Done', time.monotonic() - started, load_s)} ({ran})"
    if not stopped and arena.baseline.token_ids:
        yield _outputs(arena, f"{status} *Measuring each run's quality cost…*", detail=True)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                arena.measure_quality()
        except Cancelled:
            status += " (Stopped before the quality cost was measured.)"
    yield _outputs(arena, f"{status} {arena.headline()}{run_notes(arena)}", detail=True, final=prompt)


def _outputs(arena: Arena, status: str, detail: bool, final: str | None = None):
    boxes = []
    for i in range(SLOTS):
        names = arena.names
        if i < len(names):
            side = arena.sides[names[i]]
            cell = answer_cell(arena.kept(names[i]), arena.stopped(names[i]))
            kept = f" · expected answer {cell}" if cell else ""
            what = "full KV cache" if i == 0 else f"{side.eviction.policy}, {side.eviction.evict}, budget " \
                                                  f"{side.eviction.budget}"
            boxes.append(gr.Textbox(value=side.text, label=f"{names[i]}: {what}{kept if final else ''}",
                                    visible=True))
        else:
            boxes.append(gr.Textbox(value="", visible=False))
    if not detail:
        return (status, *boxes) + (gr.skip(),) * (3 + VIEWS + 2)
    lat, kv = arena.plots()
    table = leaderboard(arena.standings())
    if final is None:
        return (status, *boxes, table, _plot(lat, "ms"), _plot(kv, "KV tokens")) + (gr.skip(),) * (VIEWS + 2)
    views = []
    for i in range(VIEWS):
        names = arena.pruned_names
        spans = arenareport.eviction_spans(arena, names[i]) if i < len(names) else None
        label = names[i] if i < len(names) else "—"
        views.append(gr.HighlightedText(value=spans or [], label=f"What {label}'s cache forgot (prompt + output)"))
    folder = Path(tempfile.mkdtemp(prefix="triattn-arena-"))
    rec = arenareport.record(arena, final)
    html = arenareport.write(folder / "triattn-arena.html", rec)
    js = arenareport.write(folder / "triattn-arena.json", rec)
    return (status, *boxes, table, _plot(lat, "ms"), _plot(kv, "KV tokens"), *views,
            gr.DownloadButton(value=str(html), visible=True), gr.DownloadButton(value=str(js), visible=True))
