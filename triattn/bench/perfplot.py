"""Plots: the long-context plot of `bench --context-lengths ... --plot FILE` (decode time per token
against context length for the baseline and each pruned mode, with the baseline at context =
budget drawn as the limit a pruned cache can reach), and the one way every plot is saved."""
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
