"""The web page's handlers: what a click does, connecting the widgets (layout.py) to triattn.ab.

Handlers only translate between widgets and the package; every user mistake becomes a gr.Error
with one readable line, so the server keeps serving. All state of a visitor's run lives in the
event (its Pair and sessions) and in the visitor's own gr.State (RunControl): nothing one visitor
does is kept where another's request could see it. Values from the page reach the file system
only as choices the server itself offers (Catalog) and hub ids (fetch_hub_model).
"""
from __future__ import annotations

import functools
import threading
import time
import sys
import traceback
import warnings

import gradio as gr
import pandas as pd

from .ab import Pair, plot_frames
from ..core.tables import headers
from .choices import Catalog, fetch_hub_model, model_notice, prompt_for_model
from ..core.config import EvictionConfig
from ..errors import Cancelled, redact
from ..core.inputs import parse_settings, prompt_ids
from ..openvino.model import load_model
from .pagetext import (FAILED_LABELS, NOT_REPORTED, divergence_text, error_status, pair_headline, precision_label,
                       progress_line, pruned_label, refused_status, run_notes, timing_line)
from ..core.text import load_tokenizer

# While generating, text is refreshed often, the table and plots less often (redrawing thousands of
# points keeps a browser busy), the eviction view (thousands of marked tokens) only at the end. Past
# LONG_RUN tokens every refresh costs more, so they come less often.
TEXT_EVERY_S, DETAIL_EVERY_S = 0.15, 1.0
LONG_RUN, LONG_TEXT_EVERY_S, LONG_DETAIL_EVERY_S = 300, 0.5, 3.0
QUEUE_MAX = 32  # comparisons waiting at once; more visitors are told the queue is full
# What a comparison updates, in order (compare's outputs).
OUTPUTS = ("baseline", "pruned", "status", "divergence", "table", "latency plot", "KV plot", "eviction view",
           "eviction summary", "Generate button")

# The page's first settings, for the default model (SmolLM2-135M-Instruct) and the first example: a budget
# of 64 KV tokens makes the pruned run part from the baseline within its first ~50 new tokens, and the
# TriAttention policy uses the calibration shipped with the model. Both runs of 150 tokens and the
# quality measurement take about 10 s on 2 CPU cores.
PAGE_DEFAULTS = EvictionConfig(policy="triattention", budget=64, recent_window=16)
PAGE_MAX_NEW_TOKENS = 150


@functools.lru_cache(maxsize=8)
def _tokenizer(model_dir: str):
    return load_tokenizer(model_dir)


def empty_table() -> pd.DataFrame:
    return pd.DataFrame(columns=headers())


class RunControl:
    """One per visitor: Stop asks the running pair to end at its next forward (between two pieces of
    a long prompt, or after the current token), so the page gets final results for the tokens made
    so far, and waits until it has (then the event is cancelled, which only matters if a step is
    stuck). `error` keeps the last run's failure for the status line."""

    def __init__(self):
        self.stop, self.idle = threading.Event(), threading.Event()
        self.idle.set()
        self.runs = 0  # this visitor's comparisons so far: which run starts alternates between them
        self.error = ""
        self.refused = False  # the last run's settings were refused before it started (see guard)
        self.pair = None  # the running comparison, for Stop to cancel

    def request_stop(self):
        self.stop.set()
        pair = self.pair
        if pair is not None:
            pair.cancel()

    def next_lead_pruned(self) -> bool:
        self.runs += 1
        return self.runs % 2 == 0

    def __deepcopy__(self, memo):  # gr.State copies its initial value for every visitor
        return RunControl()

    def guard(self, outputs, failed: str):
        """Stream a handler's `outputs` (a zero-argument generator function: its settings are read
        inside, so their mistakes are caught too). Bad input (ValueError: settings, ModelError, a
        prompt too long, OpenVINO's runtime errors as the model module words them) becomes one gr.Error
        line; any other exception is a bug, logged, and one line too (`failed: ...`): the page stays.
        `error` keeps that line for the status; the run's end is written to the server log."""
        self.stop.clear()
        self.idle.clear()
        self.error, self.refused = "", True  # refused: the settings stopped it before it yielded anything
        try:
            for out in outputs():
                self.refused = False
                yield out
        except ValueError as e:
            self.error = redact(str(e))
            raise gr.Error(self.error, print_exception=False) from None  # a user mistake, not a bug
        except gr.Error as e:
            self.error = str(e.message)
            raise
        except Exception as e:  # a bug must not take the page down; the log keeps the details
            traceback.print_exc()
            self.error = redact(f"{failed}: {type(e).__name__}: {e}")
            raise gr.Error(self.error, print_exception=False) from None
        finally:
            self.pair = None
            self.idle.set()
            print(RUN_ENDED, file=sys.stderr, flush=True)  # the server log's record that a comparison let go


FORM = "paged"  # the cache form the page runs: OpenVINO's paged form where the model takes it (model.load_model)
RUN_ENDED = "triattn: comparison ended, infer requests freed"


def compare(prompt, model_value, device, policy, evict, budget, recent_window, sink_tokens, prune_interval,
            max_new_tokens, temperature, seed, prompt_select, control: RunControl, progress=gr.Progress(), *, catalog: Catalog):
    """Stream both runs: (baseline text, pruned text, status, divergence, table, 2 plots, eviction view,
    eviction summary, the Generate button). The button says a comparison is running from the first
    output to the last (a second click is not dropped without a word)."""
    def outputs():
        button = busy_button()
        settings = parse_settings(policy, evict, budget, recent_window, sink_tokens, prune_interval, max_new_tokens,
                                  temperature, seed, prompt_select)
        for out in _compare(prompt, model_value, device, settings, control, progress, catalog):
            yield out if len(out) == len(OUTPUTS) else out + (button,)  # the last outputs carry the ready button
            button = gr.skip()
    yield from control.guard(outputs, "generation failed")


def show_failure(control: RunControl):
    """After a failed run: its message stays in the status line and nothing older looks like its result.
    Settings refused before anything ran leave the last run's results, the status line saying so. A
    run ended by Stop or a closed tab has no error: its results stand."""
    if not control.error:
        return (gr.skip(),) * 9 + (ready_button(),)
    if control.refused:  # nothing ran: what the page shows is still the last run's, and stays
        return (gr.skip(), gr.skip(), refused_status(control.error)) + (gr.skip(),) * 6 + (ready_button(),)
    lat, kv = plot_frames({})
    return (gr.Textbox(value="", label=FAILED_LABELS[0]), gr.Textbox(value="", label=FAILED_LABELS[1]),
            error_status(control.error), "", empty_table(),
            _plot(lat, "ms"), _plot(kv, "KV tokens"), [], "", ready_button())


def _plot(frame, column: str):
    """A plot is shown once it has a point to draw (an empty one would show meaningless ticks)."""
    return gr.LinePlot(value=frame, visible=bool(frame[column].notna().any()))


def warm_up(model_dir, device: str):
    """Compile a model and read its tokenizer ahead of the first Generate (the launch does this)."""
    load_model(model_dir, device, form=FORM)
    _tokenizer(str(model_dir))


def _open(model_dir, device, progress):
    progress(0.4, desc=f"Loading the model on {device} (compiled once per model and device)")
    started = time.monotonic()
    model = load_model(model_dir, device, form=FORM)
    return model, _tokenizer(str(model_dir)), time.monotonic() - started


def _compare(prompt, model_value, device, settings, control, progress, catalog):
    eviction, sampling, max_new = settings
    if not isinstance(prompt, str) or not prompt.strip():  # before the model is loaded
        raise ValueError("the prompt is empty: type one or pick an example")
    if not eviction.prunes:
        raise ValueError(f"policy {eviction.policy} keeps every token, so it is the baseline itself: "
                         f"pick a pruning policy to compare with")
    progress(0.1, desc="Preparing the model")
    model, tok, load_s = _open(catalog.resolve(model_value, notify=lambda m: None), device, progress)
    pair = Pair(model, tok, prompt_ids(tok, prompt, model.info.max_context), eviction, sampling, max_new,
                pruned_first=control.next_lead_pruned(), own_peak=True)
    control.pair = pair
    if control.stop.is_set():  # a Stop that came while the model loaded
        pair.cancel()
    ran = f"{model.device}, {precision_label(model)}"
    labels = (f"Baseline: full KV cache ({ran})", lambda: pruned_label(pair.pruned, ran))
    started = time.monotonic()
    # Said at once: the model is loaded, and a long prompt takes a while to read (no banner covers it).
    yield _outputs(pair, labels, f"Reading the prompt ({len(pair.prompt_ids)} tokens)…{run_notes(pair)}",
                   detail=False, final=False)
    yield from _run_pair(pair, labels, control, max_new)
    done = "Stopped" if control.stop.is_set() else "Done"
    status = f"{timing_line(done, time.monotonic() - started, load_s)} {pair_headline(pair)}"
    if control.stop.is_set() or not pair.baseline.token_ids:
        yield _outputs(pair, labels, f"{status}{run_notes(pair)}", detail=True, final=True) + (ready_button(),)
        return
    # The result is shown as soon as the runs end; the quality cost follows in the table. The last
    # output repeats the rest, so that an API client's final result is whole.
    done = _outputs(pair, labels, f"{status} *Measuring the quality cost (the pruned cache re-reads the baseline's "
                                  f"tokens)…*{run_notes(pair)}", detail=True, final=True)
    yield done
    try:
        with warnings.catch_warnings():  # the engine repeats its start-up warning, already in pair.notices
            warnings.simplefilter("ignore")
            pair.measure_quality()
    except Cancelled:
        yield done[:2] + (f"{status} (Stopped before the quality cost was measured.){run_notes(pair)}",) + done[3:] \
            + (ready_button(),)
        return
    yield done[:2] + (f"{status}{run_notes(pair)}", done[3], pair.table()) + done[5:] + (ready_button(),)


class Refresh:
    """When the page is sent the runs' text (and, less often, the table and plots): past LONG_RUN
    tokens every refresh costs the browser more, so they come less often. Pure: `due(now, long)`."""

    def __init__(self):
        self.last_text = self.last_detail = float("-inf")

    def due(self, now: float, long: bool) -> tuple[bool, bool]:
        """(send the text now, send the table and plots with it)."""
        if now - self.last_text < (LONG_TEXT_EVERY_S if long else TEXT_EVERY_S):
            return False, False
        detail = now - self.last_detail >= (LONG_DETAIL_EVERY_S if long else DETAIL_EVERY_S)
        self.last_text, self.last_detail = now, (now if detail else self.last_detail)
        return True, detail


def _run_pair(pair, labels, control, max_new):
    """Both runs to their end or to a Stop, the page refreshed as they go."""
    refresh = Refresh()
    steps = pair.steps()
    try:
        for _ in steps:
            if control.stop.is_set():
                break
            text, detail = refresh.due(time.monotonic(), len(pair.baseline.token_ids) > LONG_RUN)
            if text:
                status = f"Generating… {progress_line(pair, max_new)}{run_notes(pair)}"
                yield _outputs(pair, labels, status, detail, final=False)
    except Cancelled:  # a Stop during a forward's wait: the runs end here
        pass
    finally:
        steps.close()  # frees both sessions, also when the event is cancelled or the tab closed


def _outputs(pair: Pair, labels, status: str, detail: bool, final: bool):
    texts = (gr.Textbox(value=pair.baseline.text, label=labels[0]),
             gr.Textbox(value=pair.pruned.text, label=labels[1]()), status, divergence_text(pair))
    if not detail:
        return texts + (gr.skip(),) * 5
    f = pair.figures(final)
    table = f["table"] if f["table"] is not None else empty_table()
    details = texts + (table, _plot(f["latency"], "ms"), _plot(f["kv"], "KV tokens"))
    if not final:
        return details + ([], "The eviction view appears when the runs end.")
    if f["view"] is None:  # e.g. OpenVINO GenAI: it does not say what it evicted
        return details + ([], NOT_REPORTED)
    return details + (f["view"], f["summary"])


def request_stop(control: RunControl):
    control.request_stop()
    control.idle.wait(timeout=5)  # the pair ends after its current step and shows its final results


BUSY_LABEL = "Running… (Stop ends it)"


def busy_button():
    return gr.Button(value=BUSY_LABEL, interactive=False)


def ready_button():
    return gr.Button(value="Generate", interactive=True)


def model_changed(value, prompt):
    """Another model: its notice, and its own example in place of an example written for another."""
    return model_notice(value), prompt_for_model(value, prompt)


def download(name, progress=gr.Progress(track_tqdm=True), *, catalog: Catalog):
    try:
        progress(0, desc=f"Fetching {name}")
        path = fetch_hub_model(name)
    except ValueError as e:
        raise gr.Error(redact(str(e)), print_exception=False) from None  # a user mistake, not a bug
    value = catalog.add(path, label=f"{name.strip()} ({path})")
    gr.Info(f"{name.strip()} is ready; it is now selected")
    return gr.Dropdown(choices=catalog.choices(), value=value), model_notice(value)
