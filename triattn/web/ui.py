"""The web page: a Gradio Blocks layout and the handlers that connect it to triattn.ab.

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
from ..core.tables import BASELINE, PRUNED, QUALITY_COLUMNS, headers
from .choices import (Catalog, device_choices, example_prompts, fetch_hub_model, mechanism_choices,
                      model_notice, policy_choices)
from ..core.config import EvictionConfig
from ..errors import redact
from .evictview import COLORS
from ..core.inputs import parse_settings, prompt_ids
from ..openvino.model import load_model
from .pagetext import (FAILED_LABELS, GLOSSARY, INTRO, NOT_REPORTED, divergence_text, error_status, pair_headline,
                       precision_label, progress_line, pruned_label, run_notes, timing_line)
from ..core.text import load_tokenizer

# While generating, text is refreshed often, the table and plots less often (redrawing thousands of
# points keeps a browser busy), the eviction view (thousands of marked tokens) only at the end. Past
# LONG_RUN tokens every refresh costs more, so they come less often.
TEXT_EVERY_S, DETAIL_EVERY_S = 0.15, 1.0
LONG_RUN, LONG_TEXT_EVERY_S, LONG_DETAIL_EVERY_S = 300, 0.5, 3.0
QUEUE_MAX = 32  # comparisons waiting at once; more visitors are told the queue is full
RUN_COLORS = {BASELINE: "#64748b", PRUNED: "#f97316"}

# The page's first settings, for the default model (SmolLM2-135M-Instruct) and the first example: a budget
# of 64 KV tokens makes the pruned run part from the baseline within its first ~50 new tokens, and the
# TriAttention policy uses the calibration shipped with the model. Both runs of 150 tokens and the
# quality measurement take about 10 s on 2 CPU cores.
PAGE_DEFAULTS = EvictionConfig(policy="triattention", budget=64, recent_window=16)
PAGE_MAX_NEW_TOKENS = 150


@functools.lru_cache(maxsize=8)
def _tokenizer(model_dir: str):
    return load_tokenizer(model_dir)


def _empty_table() -> pd.DataFrame:
    return pd.DataFrame(columns=headers() + ["Outputs diverge at"] + list(QUALITY_COLUMNS))


class RunControl:
    """One per visitor: Stop asks the running pair to end after its current step, so the page gets
    final results for the tokens made so far, and waits until it has (then the event is cancelled,
    which only matters if a step is stuck). `error` keeps the last run's failure for the status line."""

    def __init__(self):
        self.stop, self.idle = threading.Event(), threading.Event()
        self.idle.set()
        self.runs = 0  # this visitor's comparisons so far: which run starts alternates between them
        self.error = ""

    def next_lead_pruned(self) -> bool:
        self.runs += 1
        return self.runs % 2 == 0

    def __deepcopy__(self, memo):  # gr.State copies its initial value for every visitor
        return RunControl()


FORM = "paged"  # the cache form the page runs: OpenVINO's paged form where the model takes it (model.load_model)
RUN_ENDED = "triattn: comparison ended, infer requests freed"


def compare(prompt, model_value, device, policy, evict, budget, recent_window, sink_tokens, prune_interval,
            max_new_tokens, temperature, seed, control: RunControl, progress=gr.Progress(), *, catalog: Catalog):
    """Stream both runs: (baseline text, pruned text, status, divergence, table, 2 plots, eviction view)."""
    control.stop.clear()
    control.idle.clear()
    control.error = ""
    try:
        yield from _compare(prompt, model_value, device, parse_settings(
            policy, evict, budget, recent_window, sink_tokens, prune_interval, max_new_tokens, temperature, seed),
            control, progress, catalog)
    except ValueError as e:  # bad settings, ModelError, a prompt too long for the model's context
        control.error = redact(str(e))
        raise gr.Error(control.error, print_exception=False) from None  # a user mistake, not a bug
    except gr.Error as e:
        control.error = str(e.message)
        raise
    except Exception as e:  # a bug must not take the page down; the log keeps the details
        traceback.print_exc()
        control.error = redact(f"generation failed: {type(e).__name__}: {e}")
        raise gr.Error(control.error, print_exception=False) from None
    finally:
        control.idle.set()
        print(RUN_ENDED, file=sys.stderr, flush=True)  # the server log's record that a comparison let go


def show_failure(control: RunControl):
    """After a failed run: its message stays in the status line and nothing older looks like its result.
    A run ended by Stop or a closed tab has no error: its results stand."""
    if not control.error:
        return (gr.skip(),) * 9
    lat, kv = plot_frames({})
    return (gr.Textbox(value="", label=FAILED_LABELS[0]), gr.Textbox(value="", label=FAILED_LABELS[1]),
            error_status(control.error), "", _empty_table(),
            _plot(lat, "ms"), _plot(kv, "KV tokens"), [], "")


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
                pruned_first=control.next_lead_pruned())
    ran = f"{model.device}, {precision_label(model)}"
    labels = (f"Baseline: full KV cache ({ran})", lambda: pruned_label(pair.pruned, ran))
    started, last_text, last_detail = time.monotonic(), 0.0, 0.0
    steps = pair.steps()
    try:
        for _ in steps:
            if control.stop.is_set():
                break
            now, long = time.monotonic(), len(pair.baseline.token_ids) > LONG_RUN
            if now - last_text >= (LONG_TEXT_EVERY_S if long else TEXT_EVERY_S):
                detail = now - last_detail >= (LONG_DETAIL_EVERY_S if long else DETAIL_EVERY_S)
                last_text, last_detail = now, (now if detail else last_detail)
                status = f"Generating… {progress_line(pair, max_new)}{run_notes(pair)}"
                yield _outputs(pair, labels, status, detail, final=False)
    finally:
        steps.close()  # frees both sessions, also when the event is cancelled or the tab closed
    if not control.stop.is_set() and pair.baseline.token_ids:
        yield _outputs(pair, labels, "Measuring the quality cost (the pruned cache re-reads the baseline's "
                                     f"tokens)…{run_notes(pair)}", detail=True, final=False)
        with warnings.catch_warnings():  # the engine repeats its start-up warning, already in pair.notices
            warnings.simplefilter("ignore")
            pair.measure_quality()
    done = "Stopped" if control.stop.is_set() else "Done"
    status = timing_line(done, time.monotonic() - started, load_s)
    yield _outputs(pair, labels, f"{status} {pair_headline(pair)}{run_notes(pair)}", detail=True, final=True)


def _outputs(pair: Pair, labels, status: str, detail: bool, final: bool):
    texts = (gr.Textbox(value=pair.baseline.text, label=labels[0]),
             gr.Textbox(value=pair.pruned.text, label=labels[1]()), status, divergence_text(pair))
    if not detail:
        return texts + (gr.skip(),) * 5
    f = pair.figures(final)
    table = f["table"] if f["table"] is not None else _empty_table()
    details = texts + (table, _plot(f["latency"], "ms"), _plot(f["kv"], "KV tokens"))
    if not final:
        return details + ([], "The eviction view appears when the runs end.")
    if f["view"] is None:  # e.g. OpenVINO GenAI: it does not say what it evicted
        return details + ([], NOT_REPORTED)
    return details + (f["view"], f["summary"])


def request_stop(control: RunControl):
    control.stop.set()
    control.idle.wait(timeout=5)  # the pair ends after its current step and shows its final results


def download(name, progress=gr.Progress(track_tqdm=True), *, catalog: Catalog):
    try:
        progress(0, desc=f"Fetching {name}")
        path = fetch_hub_model(name)
    except ValueError as e:
        raise gr.Error(redact(str(e)), print_exception=False) from None  # a user mistake, not a bug
    value = catalog.add(path, label=f"{name.strip()} ({path})")
    gr.Info(f"{name.strip()} is ready; it is now selected")
    return gr.Dropdown(choices=catalog.choices(), value=value), model_notice(value)


def build(catalog: Catalog, device: str = "CPU") -> gr.Blocks:
    prompts = example_prompts()
    with gr.Blocks(title="triattn: KV-cache pruning, side by side") as demo:
        gr.Markdown(INTRO)
        notice = gr.Markdown(model_notice(catalog.preferred), elem_id="model-notice")
        d = PAGE_DEFAULTS
        with gr.Row():
            with gr.Column(scale=3):
                prompt = gr.Textbox(label="Prompt", lines=4, value=prompts[0] if prompts else "", elem_id="prompt")
                if prompts:
                    gr.Examples([[p] for p in prompts], inputs=[prompt], label="Example prompts")
            with gr.Column(scale=2):
                policy = gr.Dropdown(policy_choices(), value=d.policy, label="Pruning policy", elem_id="policy",
                                     info="which tokens the pruned run evicts when its cache is over budget")
                evict = gr.Radio(mechanism_choices(), value=d.evict, label="How tokens are evicted",
                                 elem_id="mechanism")
                with gr.Row():
                    budget = gr.Number(d.budget, label="Budget (KV tokens)", elem_id="budget")
                    max_new = gr.Number(PAGE_MAX_NEW_TOKENS, label="Max new tokens", elem_id="max-new-tokens")
                with gr.Row():
                    run_btn = gr.Button("Generate", variant="primary", elem_id="generate")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="stop")
        with gr.Accordion("More pruning settings", open=False):
            with gr.Row():
                recent = gr.Number(d.recent_window, label="Recent window", info="newest tokens always kept",
                                   elem_id="recent-window")
                sinks = gr.Number(d.sink_tokens, label="Sink tokens", info="first tokens always kept",
                                  elem_id="sink-tokens")
                interval = gr.Number(d.prune_interval, label="Prune interval", elem_id="prune-interval",
                                     info="tokens the cache may grow past the budget before it is cut "
                                          "(1 = cut every step, as the model card did)")
        with gr.Accordion("Sampling", open=False):
            with gr.Row():
                temperature = gr.Slider(0.0, 2.0, 0.0, step=0.05, label="Temperature",
                                        info="0 = greedy; both runs draw the same random numbers")
                seed = gr.Number(0, label="Seed", elem_id="seed")
        with gr.Accordion("Model and device", open=False):
            with gr.Row():
                model_dd = gr.Dropdown(catalog.choices(), value=catalog.preferred, label="Model", elem_id="model")
                device_dd = gr.Dropdown(device_choices(), value=device, label="Device", elem_id="device")
            with gr.Row():
                hub_id = gr.Textbox(label="Another model: a Hugging Face id (an OpenVINO export)",
                                    placeholder="OpenVINO/gpt-oss-20b-int4-ov", scale=4, elem_id="hub-id")
                fetch_btn = gr.Button("Download", scale=1, elem_id="download")
        status = gr.Markdown(elem_id="status")
        with gr.Row():
            base_box = gr.Textbox(label="Baseline: full KV cache", lines=10, max_lines=10, interactive=False,
                                  elem_id="baseline-output")
            pruned_box = gr.Textbox(label="Pruned", lines=10, max_lines=10, interactive=False,
                                    elem_id="pruned-output")
        divergence = gr.Markdown(elem_id="divergence")
        # Run, the card's metrics, then the pair columns: divergence and the four quality figures.
        # Columns as wide as their words (pagetext.CSS: no word is broken); the table scrolls sideways.
        table = gr.Dataframe(_empty_table(), label="Results", interactive=False, elem_id="metrics", wrap=True)
        with gr.Accordion("What the numbers mean", open=False):
            gr.Markdown(GLOSSARY)
        with gr.Row():
            lat_plot = gr.LinePlot(plot_frames({})[0], x="token", y="ms", color="run", color_map=RUN_COLORS,
                                   title="Time per token (ms); spikes in the pruned run are prune events",
                                   height=260, elem_id="latency-plot", visible=False)
            kv_plot = gr.LinePlot(plot_frames({})[1], x="token", y="KV tokens", color="run",
                                  color_map=RUN_COLORS, title="KV cache size (tokens)", height=260,
                                  elem_id="kv-plot", visible=False)
        view = gr.HighlightedText(label="What the pruned run's cache forgot (prompt + output)", color_map=COLORS,
                                  show_legend=True, show_inline_category=False, combine_adjacent=True,
                                  elem_id="eviction-view")
        view_summary = gr.Markdown(elem_id="eviction-summary")

        control = gr.State(RunControl())
        inputs = [prompt, model_dd, device_dd, policy, evict, budget, recent, sinks, interval, max_new,
                  temperature, seed, control]
        outputs = [base_box, pruned_box, status, divergence, table, lat_plot, kv_plot, view, view_summary]
        # One pair at a time on the server: two pairs at once would share the CPU and skew both timings.
        gen = run_btn.click(functools.partial(compare, catalog=catalog), inputs, outputs, api_name="generate",
                            concurrency_id="generate", concurrency_limit=1)
        gen.failure(show_failure, control, outputs, queue=False, api_name=False)
        stop_btn.click(request_stop, control, None, queue=False, api_name=False).then(
            None, None, None, cancels=[gen], api_name=False)
        model_dd.change(model_notice, model_dd, notice, queue=False, api_name=False)
        fetch_btn.click(functools.partial(download, catalog=catalog), hub_id, [model_dd, notice],
                        api_name="download", concurrency_id="download", concurrency_limit=1)
        # Models fetched by another visitor appear after a reload.
        demo.load(lambda: gr.Dropdown(choices=catalog.choices()), None, model_dd, api_name=False)
    demo.queue(default_concurrency_limit=1, max_size=QUEUE_MAX)
    return demo
