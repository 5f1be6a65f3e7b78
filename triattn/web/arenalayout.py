"""The page's Arena panel: several pruned runs against one baseline (widgets and wiring only; the
handlers are in arenaui.py). The A/B pair stays the page's default; the Arena is one switch away."""
from __future__ import annotations

import functools

import gradio as gr

from ..core.tables import BASELINE
from .ab import plot_frames
from .arenaui import N_OUTPUTS, SLOTS, VIEWS, run_arena, run_choices, show_failure
from .evictview import COLORS

MODES = ("A/B pair", "Arena")
ARENA_HELP = ("Run up to 4 pruned runs (policy / mechanism, at each budget listed) beside one baseline; they "
              "take turns token by token, so their timings stay comparable, and Stop ends them all. The "
              "leaderboard ranks them by quality cost (ΔNLL).")


def controls():
    """The Arena's own settings (hidden until the switch is set)."""
    with gr.Column(visible=False) as col:
        gr.Markdown(ARENA_HELP)
        runs = gr.Dropdown(run_choices(), value=["knorm / hard", "streaming / hard", "triattention / hard",
                                                 "random / hard"], multiselect=True, label="Pruned runs (up to 4)",
                           elem_id="arena-runs")
        budgets = gr.Textbox("", label="Budgets (blank: the Budget above; several: 64, 128)",
                             elem_id="arena-budgets")
        button = gr.Button("Run arena", variant="primary", elem_id="arena-run")
    return col, runs, budgets, button


def outputs():
    """Status, one box per run (the baseline first), the leaderboard, both plots, eviction tabs, downloads."""
    with gr.Column(visible=False) as col:
        status = gr.Markdown(elem_id="arena-status")
        boxes = []
        with gr.Row():
            for i in range(SLOTS):
                boxes.append(gr.Textbox(label=BASELINE if i == 0 else f"run {i}", lines=8, max_lines=8,
                                        interactive=False, visible=i == 0, elem_id=f"arena-output-{i}"))
        board = gr.Dataframe(label="Leaderboard (least quality cost first)", interactive=False, wrap=True,
                             elem_id="arena-leaderboard")
        with gr.Row():
            lat = gr.LinePlot(plot_frames({})[0], x="token", y="ms", color="run", title="Time per token (ms)",
                              height=260, elem_id="arena-latency-plot", visible=False)
            kv = gr.LinePlot(plot_frames({})[1], x="token", y="KV tokens", color="run", title="KV cache size (tokens)",
                             height=260, elem_id="arena-kv-plot", visible=False)
        views = []
        with gr.Tabs():
            for i in range(VIEWS):
                with gr.Tab(f"Eviction view, run {i + 1}"):
                    views.append(gr.HighlightedText(color_map=COLORS, show_legend=True, show_inline_category=False,
                                                    combine_adjacent=True, elem_id=f"arena-view-{i + 1}"))
        with gr.Row():
            html = gr.DownloadButton("Download report (HTML)", visible=False, elem_id="arena-html")
            js = gr.DownloadButton("Download report (JSON)", visible=False, elem_id="arena-json")
    return col, [status, *boxes, board, lat, kv, *views, html, js]


def wire(catalog, mode, arena_controls, arena_outputs, pair_parts, settings, control):
    """The switch, the Run button and Stop. pair_parts: the pair's widgets hidden in the Arena;
    settings: [prompt, model, device, evict, budget, recent, sinks, interval, max_new, temperature, seed]."""
    ctl_col, runs, budgets, button = arena_controls
    out_col, outs = arena_outputs
    prompt, model_dd, device_dd, *rest = settings

    def switch(m):
        arena = m == MODES[1]
        return [gr.update(visible=not arena)] * len(pair_parts) + [gr.update(visible=arena)] * 2
    mode.change(switch, mode, [*pair_parts, ctl_col, out_col], queue=False, api_name=False)
    ev = button.click(functools.partial(run_arena, catalog=catalog),
                      [prompt, model_dd, device_dd, runs, budgets, *rest, control], outs, api_name="arena",
                      concurrency_id="generate", concurrency_limit=1)
    assert len(outs) == N_OUTPUTS
    ev.failure(show_failure, control, outs, queue=False, api_name=False)
    return ev
