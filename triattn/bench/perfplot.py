"""Plots: the long-context plot of `bench --context-lengths ... --plot FILE` (decode time per token
against context length for the baseline and each pruned mode, with the baseline at context =
budget drawn as the limit a pruned cache can reach); `perf --plot PREFIX`'s figures (ours against
GenAI, each long model's modes with its figures against their targets and the prefill profile, the
real-dims model); and the one way every plot is saved."""
from __future__ import annotations

from pathlib import Path


def plot_context(rows: list[dict], budget: int, title: str, path) -> Path:
    """rows: report.context_rows (each with the baseline at context = budget measured beside it)."""
    import matplotlib
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    lengths = sorted({r["context"] for r in rows})
    base = {r["context"]: r["baseline_tpot_ms"] for r in rows}
    ref = {r["context"]: r["ref_tpot_ms"] for r in rows}
    fig, (ax, ax_r) = plt.subplots(1, 2, figsize=(10.5, 4), gridspec_kw={"width_ratios": [3, 2]})
    ax.plot(lengths, [base[n] for n in lengths], marker="o", color="black", label="baseline (full cache)")
    ax.plot(lengths, [ref[n] for n in lengths], color="grey", ls="--", lw=1,
            label=f"baseline at context = budget ({budget}), alongside")
    for mode in dict.fromkeys(r["mode"] for r in rows):
        rs = sorted((r for r in rows if r["mode"] == mode), key=lambda r: r["context"])
        x = [r["context"] for r in rs]
        ax.plot(x, [r["pruned_tpot_ms"] for r in rs], marker="o", label=f"{mode}, budget {budget}")
        ax_r.plot(x, [r["ratio"] for r in rs], marker="o", label=f"{mode}: pruned / baseline")
        ax_r.plot(x, [r["limit_ratio"] for r in rs], marker="s", ls=":", label=f"{mode}: limit ratio")
    ax.set(xlabel="context (prompt tokens)", ylabel="TPOT (ms/token, median)", title="Decode time per token")
    ax.set_ylim(bottom=0)
    ax_r.axhline(1.0, color="grey", lw=0.8)
    ax_r.set(xlabel="context (prompt tokens)", ylabel="ratio", title="Pruned vs baseline")
    for a in (ax, ax_r):
        a.set_xticks(lengths)
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    return save_figure(plt, fig, title, path)


def save_figure(plt, fig, title: str, path) -> Path:
    """Title, lay out, write a PNG and free the figure: every plot of the project ends here."""
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


MODE_COLOURS = {"baseline": "black", "chunked": "tab:blue", "whole then cut": "tab:orange",
                "baseline at budget": "grey"}


def plot_perf(out: dict, prefix) -> list[Path]:
    """The figures of a perf JSON (perfreport.py's layout) as PNGs named from `prefix`."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    paths = []
    if out.get("vs_genai"):
        paths.append(_plot_genai(plt, out["vs_genai"], out["machine"], f"{prefix}-genai.png"))
    for d, section in out.get("long", {}).items():
        paths.append(_plot_long(plt, Path(d).name, section, f"{prefix}-{Path(d).name}.png"))
    if out.get("real_dims"):
        paths.append(_plot_real_dims(plt, out["real_dims"], f"{prefix}-real-dims.png"))
    return paths


def _bars(ax, labels, series: dict, ylabel: str, title: str):
    """Grouped bars: series name -> (values per label, colour); a None value is left out."""
    width = 0.8 / len(series)
    for i, (name, (values, colour)) in enumerate(series.items()):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(labels))]
        kept = [(x, v) for x, v in zip(xs, values) if v is not None]
        ax.bar([x for x, _ in kept], [v for _, v in kept], width, color=colour, label=name)
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set(ylabel=ylabel, title=title)
    ax.grid(axis="y", alpha=0.3)


def _plot_genai(plt, rows: list[dict], machine: dict, path):
    """Ratios ours / GenAI per prompt, TTFT and TPOT, each with its target; against GenAI on the
    stateful model too where measured. The times are on the bars."""
    from .vsgenai import LIMITS
    bars = [("ttft", "", "TTFT / GenAI", "tab:blue"), ("tpot", "", "TPOT / GenAI", "tab:purple")]
    if all("genai_stateful" in r for r in rows):
        bars = [bars[0], ("ttft", "stateful_", "TTFT / GenAI stateful", "lightsteelblue"),
                bars[1], ("tpot", "stateful_", "TPOT / GenAI stateful", "thistle")]
    width = 0.8 / len(bars)
    fig, ax = plt.subplots(figsize=(9, 3.8))
    for i, (key, side, name, colour) in enumerate(bars):
        xs = [j + (i - (len(bars) - 1) / 2) * width for j in range(len(rows))]
        other = "genai_stateful" if side else "genai"
        ax.bar(xs, [r[f"{side}{key}_ratio"] for r in rows], width, color=colour, label=name)
        for x, r in zip(xs, rows):
            ax.plot([x - width / 2, x + width / 2], [LIMITS[f"{key}_ratio"]] * 2, color="red", lw=2)
            ms = "{:,.0f}\n{:,.0f}" if r[other][key + "_ms"] >= 100 else "{:.1f}\n{:.1f}"
            ax.annotate(f"{r[f'{side}{key}_ratio']:.2f}\n" + ms.format(r["ours"][key + "_ms"], r[other][key + "_ms"]),
                        (x, r[f"{side}{key}_ratio"]), ha="center", va="bottom", fontsize=6)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xticks(range(len(rows)), [f"{r['prompt_tokens']:,}-token prompt" for r in rows], fontsize=8)
    top = max(r[f"{side}{key}_ratio"] for r in rows for key, side, _, _ in bars)
    ax.set(ylabel="ours / GenAI (median; red: target)", ylim=(0, 1.45 * top))
    ax.legend(fontsize=7, loc="upper left", ncol=2)
    ax.grid(axis="y", alpha=0.3)
    return save_figure(plt, fig, f"Our full-cache loop against OpenVINO GenAI's LLMPipeline: {Path(machine['model_dir']).name}"
                                 f", {machine['device']}, precision {machine['precision']} for both (ms: ours, GenAI)",
                       path)


def _median(answers, key):
    import statistics
    return None if not answers or any("failed" in a for a in answers) else statistics.median(a[key] for a in answers)


def _why_missing(answers) -> str:
    """The bar's label where a mode has no figure: what its failure says, in a word or two."""
    why = " ".join(str(a.get("failed", "")) for a in answers or [])
    return "out of\nmemory" if "memory" in why else "killed" if "killed" in why else "not run"


def _plot_long(plt, name: str, section: dict, path):
    modes = section["modes"]
    labels = [m.replace("baseline at budget", f"baseline at {section['setup']['budget']}").replace(" ", "\n", 1)
              for m in modes]
    fig = plt.figure(figsize=(12, 6.4))
    grid = fig.add_gridspec(2, 3)
    for col, (key, scale, unit, title) in enumerate((("ttft_s", 1, "s", "Time to first token"),
                                                     ("tpot_ms", 1, "ms", "Time per output token"),
                                                     ("peak_mb", 1 / 1024, "GB", "Peak RSS (own process)"))):
        ax = fig.add_subplot(grid[0, col])
        values = [None if _median(a, key) is None else _median(a, key) * scale for a in modes.values()]
        for j, (m, v) in enumerate(zip(modes, values)):
            if v is None:
                ax.annotate(_why_missing(modes[m]), (j, 0.03), ha="center",
                            va="bottom", fontsize=8, color="red", xycoords=("data", "axes fraction"))
            else:
                ax.bar(j, v, 0.7, color=MODE_COLOURS.get(m, "tab:purple"))
        ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.set(ylabel=unit, title=title)
        ax.grid(axis="y", alpha=0.3)
    _figures_panel(fig.add_subplot(grid[1, :2]), section["figures"])
    if section.get("prefill") and "failed" not in section["prefill"]:
        ax = fig.add_subplot(grid[1, 2])
        prof = section["prefill"]
        ax.bar(range(len(prof)), [r["ms_per_token"] for r in prof.values()], 0.7, color="tab:blue")
        ax.set_xticks(range(len(prof)), [f"{k.replace(' over ', chr(10) + 'over ')}\n({r['tokens']} over {r['past']})"
                                         for k, r in prof.items()],
                      fontsize=7)
        ax.set(ylabel="ms per token", title="Prefill: one forward at a time")
        ax.grid(axis="y", alpha=0.3)
    from .perfreport import baseline_pieces
    s = section["setup"]
    return save_figure(plt, fig, f"{name}: {s['context']:,} tokens, {s['policy']} budget {s['budget']:,}, "
                                 f"pieces of {s['chunk']}{baseline_pieces(s)}", path)


def _figures_panel(ax, figures: list[dict]):
    """Each ratio with a target as a bar, its target as a red tick; the TPOT ratio's floor in grey."""
    rows = [f for f in figures if f["target"] is not None]
    for i, f in enumerate(rows):
        if f["value"] is None:
            why = "the baseline was killed" if "killed" in f["note"] else "see the table"
            ax.annotate(f"not measured: {why}", (0.02, i), va="center", fontsize=8, color="red",
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
        else:
            ax.barh(i, f["value"], 0.6, color="tab:green" if f["met"] else "tab:orange")
            s = f.get("spread")
            if s and s["n"] > 1:  # the interval over runs, with the number of runs beside it
                ax.errorbar(f["value"], i, xerr=[[f["value"] - s["lo"]], [s["hi"] - f["value"]]], color="black",
                            capsize=3, lw=1)
            n = f" (n={s['n']})" if s else ""
            ax.annotate(f"{f['value']:.2f}{n}", (f["value"] if not s else s["hi"], i), va="center", fontsize=8,
                        xytext=(3, 0), textcoords="offset points")
        ax.plot([f["target"]] * 2, [i - 0.4, i + 0.4], color="red", lw=2)
        if f.get("floor") is not None:
            ax.plot([f["floor"]] * 2, [i - 0.4, i + 0.4], color="grey", lw=2, ls=":")
    ax.set_yticks(range(len(rows)), [f["what"] for f in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set(xlabel="ratio: median and interval over runs (red: target; dotted grey: floor; green: interval within "
                  "the target)", title="Figures against targets")
    ax.grid(axis="x", alpha=0.3)


def _plot_real_dims(plt, sections: dict, path):
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    labels = [f"{int(n):,} tokens" for n in sections]
    for ax, (key, scale, unit, title) in zip(axes, (("ttft_s", 1, "s", "Time to first token"),
                                                    ("tpot_ms", 1, "ms", "Time per output token"),
                                                    ("peak_mb", 1 / 1024, "GB", "Peak RSS"))):
        series = {}
        for mode, colour in (("baseline", "black"), ("chunked", "tab:blue")):
            values = [_median(s["modes"][mode], key) for s in sections.values()]
            name = "baseline" if mode == "baseline" else "pruned (budget " + ", ".join(
                f"{s['setup']['budget']:,}" for s in sections.values()) + ")"
            series[name] = ([None if v is None else v * scale for v in values], colour)
        _bars(ax, labels, series, unit, title)
        ax.set_ylim(top=1.3 * ax.get_ylim()[1])
        ax.legend(fontsize=7, loc="upper left")
    chunk = next(iter(sections.values()))["setup"]["chunk"]
    return save_figure(plt, fig, f"gpt-oss-20b's widths (real-dims model: 4 layers, 4 experts), pieces of {chunk}", path)
