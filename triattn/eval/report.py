"""An evaluation's answers as figures: accuracy per task x length x policy x budget with Wilson's
95% interval (core/stats.py) and the baseline beside it, a JSON of every answer, and a plot of
accuracy against budget per policy.

Accuracy is the share of samples whose answer contains every expected string (RULER's all-found);
"score" is RULER's own mean of the share found per sample (Hsieh et al. 2024). A (task, length)
whose baseline is below 50% is marked not informative for this model: a pruned run cannot be told
from a model that never knew the answer.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..core.stats import binomial_interval
from .run import INFORMATIVE, Settings, key, labels

NOT_INFORMATIVE = "not informative for this model (baseline below 50%)"


def _cell(answers: list[dict]) -> dict:
    k, n = sum(a["all_found"] for a in answers), len(answers)
    iv = binomial_interval(k, n)
    return {"k": k, "n": n, "accuracy": iv.value, "lo": iv.lo, "hi": iv.hi,
            "score": sum(a["found"] for a in answers) / n}


def rows(answers: dict, settings: Settings) -> list[dict]:
    """One row per task x length x policy x budget that has all its samples, the baseline beside it."""
    out = []
    for L in settings.lengths:
        for t in settings.tasks:
            base = [answers.get(key(t, L, i, "none", None)) for i in range(settings.samples)]
            if any(a is None for a in base):
                continue
            b = _cell(base)
            informative = b["k"] >= INFORMATIVE * b["n"]
            out.append({"task": t, "length": L, "policy": "none", "budget": None, **b, "baseline": b["accuracy"],
                        "informative": informative})
            for p in labels(settings):
                for budget in settings.budgets:
                    got = [answers.get(key(t, L, i, p, budget)) for i in range(settings.samples)]
                    if any(a is None for a in got):
                        continue
                    out.append({"task": t, "length": L, "policy": p, "budget": budget, **_cell(got),
                                "baseline": b["accuracy"], "informative": informative})
    return out


def pooled(rs: list[dict], settings: Settings) -> list[dict]:
    """Accuracy per length x policy x budget over the informative tasks, counts summed."""
    out = []
    for L in settings.lengths:
        for p, budget in [("none", None)] + [(p, b) for p in labels(settings) for b in settings.budgets]:
            cells = [r for r in rs if r["length"] == L and r["policy"] == p and r["budget"] == budget
                     and r["informative"]]
            if not cells:
                continue
            k, n = sum(r["k"] for r in cells), sum(r["n"] for r in cells)
            iv = binomial_interval(k, n)
            out.append({"length": L, "policy": p, "budget": budget, "k": k, "n": n, "accuracy": iv.value,
                        "lo": iv.lo, "hi": iv.hi, "tasks": [r["task"] for r in cells]})
    return out


def _pct(r: dict) -> str:
    return f"{r['accuracy']:.0%} ({r['k']}/{r['n']}; {r['lo']:.0%}–{r['hi']:.0%})"


def markdown(rs: list[dict], pool: list[dict]) -> str:
    """The table: per task and length, the baseline then each policy x budget."""
    lines = ["| task | length | policy | budget | accuracy (all found; 95% interval) | RULER score | baseline | note |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rs:
        base = r["policy"] == "none"
        note = "" if r["informative"] else NOT_INFORMATIVE
        lines.append(f"| {r['task']} | {r['length']} | {'baseline' if base else r['policy']} | "
                     f"{'full' if base else r['budget']} | {_pct(r)} | {r['score']:.2f} | "
                     f"{'' if base else format(r['baseline'], '.0%')} | {note} |")
    if pool:
        lines += ["", "Over the informative tasks (counts summed):", "",
                  "| length | policy | budget | accuracy (95% interval) | tasks |", "|---|---|---|---|---|"]
        for r in pool:
            lines.append(f"| {r['length']} | {'baseline' if r['policy'] == 'none' else r['policy']} | "
                         f"{'full' if r['budget'] is None else r['budget']} | {_pct(r)} | {', '.join(r['tasks'])} |")
    else:
        lines += ["", "No task is informative for this model: its baseline is below 50% on every task and length."]
    return "\n".join(lines) + "\n"


def plot(pool: list[dict], settings: Settings, path: Path, title: str) -> Path | None:
    """Accuracy over the informative tasks against budget, a line per policy, a panel per length,
    the baseline as a band; None when no task is informative."""
    if not pool:
        return None
    import matplotlib
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    lengths = [L for L in settings.lengths if any(r["length"] == L for r in pool)]
    fig, axes = plt.subplots(1, len(lengths), figsize=(max(6.5, 4.2 * len(lengths) + 1), 4.2), squeeze=False,
                             sharey=True)
    for ax, L in zip(axes[0], lengths):
        at = [r for r in pool if r["length"] == L]
        for r in (r for r in at if r["policy"] == "none"):
            ax.axhspan(r["lo"], r["hi"], color="0.85", label="baseline (95% interval)")
            ax.axhline(r["accuracy"], color="0.4", lw=1)
        for i, p in enumerate(labels(settings)):
            rs = sorted((r for r in at if r["policy"] == p), key=lambda r: r["budget"])
            if rs:
                x = [r["budget"] * (1 + 0.03 * (i - 1.5)) for r in rs]  # nudged apart so the bars do not overlap
                y = [r["accuracy"] for r in rs]
                ax.errorbar(x, y, yerr=[[a - r["lo"] for a, r in zip(y, rs)], [r["hi"] - a for a, r in zip(y, rs)]],
                            marker="o", capsize=3, label=p)
        ax.set_xscale("log", base=2)
        ax.set_xticks(settings.budgets, [str(b) for b in settings.budgets])
        ax.set_title(f"{L} tokens ({at[0]['n']} answers: {', '.join(at[0]['tasks'])})", fontsize=9)
        ax.set_xlabel("KV budget (tokens)")
        ax.set_ylim(-0.03, 1.03)
    axes[0][0].set_ylabel("accuracy (all expected found)")
    axes[0][-1].legend(fontsize=8, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(answers: dict, settings: Settings, folder: Path, title: str) -> list[Path]:
    """eval.json (settings, rows, pooled rows, every answer), table.md and accuracy.png in `folder`."""
    rs = rows(answers, settings)
    pool = pooled(rs, settings)
    every = sorted(answers.values(), key=lambda a: (a["length"], a["task"], a["index"], a["policy"] != "none",
                                                    a["policy"], a["budget"] or 0))
    out = folder / "eval.json"
    out.write_text(json.dumps({"settings": settings.as_dict(), "rows": rs, "pooled": pool, "answers": every},
                              indent=1) + "\n", encoding="utf-8")
    table = folder / "table.md"
    table.write_text(markdown(rs, pool), encoding="utf-8")
    files = [out, table]
    png = plot(pool, settings, folder / "accuracy.png", title)
    return files + ([png] if png else [])
