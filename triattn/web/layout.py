"""The web page's layout: Gradio Blocks, and which handler (ui.py) each button and menu calls.

Only wiring: what happens on a click is in ui.py, the words in pagetext.py.
"""
from __future__ import annotations

import functools

import gradio as gr

from . import arenalayout
from .ab import plot_frames
from ..core.tables import BASELINE, PRUNED
from .choices import (Catalog, device_choices, example_prompts, mechanism_choices, model_notice, policy_choices,
                      prompt_select_choices)
from .evictview import COLORS
from .pagetext import GLOSSARY, INTRO
from .ui import (OUTPUTS, PAGE_DEFAULTS, PAGE_MAX_NEW_TOKENS, QUEUE_MAX, RunControl, compare, download,
                 empty_table, model_changed, ready_button, request_stop, show_failure)

RUN_COLORS = {BASELINE: "#64748b", PRUNED: "#f97316"}


def build(catalog: Catalog, device: str = "CPU") -> gr.Blocks:
    prompts = example_prompts()
    with gr.Blocks(title="triattn: KV-cache pruning, side by side") as demo:
        gr.Markdown(INTRO)
        notice = gr.Markdown(model_notice(catalog.preferred), elem_id="model-notice")
        mode = gr.Radio(arenalayout.MODES, value=arenalayout.MODES[0], label="Compare", elem_id="mode",
                        info="one pruned run beside the baseline, or up to 4 (the Arena)")
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
                arena_controls = arenalayout.controls()
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
            select = gr.Radio(prompt_select_choices(), value=d.prompt_select, label="What of the prompt is kept",
                              elem_id="prompt-select")
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
        with gr.Column() as pair_col:  # the pair's results, hidden while the Arena is shown
            status = gr.Markdown(elem_id="status")
            with gr.Row():
                base_box = gr.Textbox(label="Baseline: full KV cache", lines=10, max_lines=10, interactive=False,
                                      elem_id="baseline-output")
                pruned_box = gr.Textbox(label="Pruned", lines=10, max_lines=10, interactive=False,
                                        elem_id="pruned-output")
            divergence = gr.Markdown(elem_id="divergence")
            # Run, the card's metrics, then the pair columns: divergence and the four quality figures.
            # Columns as wide as their words (pagetext.CSS: no word is broken); the table scrolls sideways.
            table = gr.Dataframe(empty_table(), label="Results (the table scrolls sideways: speed and cache on the right)",
                                 interactive=False, elem_id="metrics", wrap=True)
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
        arena_outputs = arenalayout.outputs()

        control = gr.State(RunControl())
        inputs = [prompt, model_dd, device_dd, policy, evict, budget, recent, sinks, interval, max_new,
                  temperature, seed, select, control]
        outputs = [base_box, pruned_box, status, divergence, table, lat_plot, kv_plot, view, view_summary, run_btn]
        assert len(outputs) == len(OUTPUTS)
        # One pair at a time on the server: two pairs at once would share the CPU and skew both timings.
        gen = run_btn.click(functools.partial(compare, catalog=catalog), inputs, outputs, api_name="generate",
                            concurrency_id="generate", concurrency_limit=1)
        gen.then(ready_button, None, run_btn, queue=False, api_name=False)  # also after a run ended by an error
        gen.failure(show_failure, control, outputs, queue=False, api_name=False)
        arena = arenalayout.wire(catalog, mode, arena_controls, arena_outputs, [pair_col, run_btn, policy, evict], [
            prompt, model_dd, device_dd, evict, budget, recent, sinks, interval, max_new, temperature, seed], control)
        stop_btn.click(request_stop, control, None, queue=False, api_name=False).then(
            None, None, None, cancels=[gen, arena], api_name=False).then(ready_button, None, run_btn, queue=False,
                                                                   api_name=False)
        model_dd.change(model_changed, [model_dd, prompt], [notice, prompt], queue=False, api_name=False)
        fetch_btn.click(functools.partial(download, catalog=catalog), hub_id, [model_dd, notice],
                        api_name="download", concurrency_id="download", concurrency_limit=1)
        # Models fetched by another visitor appear after a reload.
        demo.load(lambda: gr.Dropdown(choices=catalog.choices()), None, model_dd, api_name=False)
    demo.queue(default_concurrency_limit=1, max_size=QUEUE_MAX)
    return demo
