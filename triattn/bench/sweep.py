"""Quality and speed over a grid of KV budgets x policies (x mechanisms).

Every configuration is one mode of a single benchmark plan (see bench.py), so runs are interleaved
with the baseline and quality comes from the same comparisons as `bench`. Results are written as
CSV (one row per configuration), JSON (rows, raw runs, settings, machine) and PNG plots. On the
paged form each policy of our loop also gets its agreement with the attention the next queries
paid (agreement.py: top-k overlap and rank correlation at its cut points, agreement.png).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from . import agreement
from . import plan as bench
from . import report

FIELDS = ["budget", "policy", "evict", "agreement", "first_divergence_mean", "delta_nll", "ppl_ratio",
          "forced_top1_agreement", "tpot_ms", "baseline_tpot_ms", "tpot_ratio", "prune_events", "prune_time_ms",
          "kv_tokens_max", "kv_decode_max", *agreement.FIELDS]


def sweep_rows(summary: dict, modes: list[bench.Mode]) -> list[dict]:
    base = summary["modes"][modes[0].name]
    rows = []
    for m in modes[1:]:
        s, q = summary["modes"][m.name], summary["modes"][m.name]["quality"]
        rows.append({"budget": m.eviction.budget, "policy": m.eviction.policy, "evict": m.eviction.evict,
                     "agreement": q["agreement"], "first_divergence_mean": q["first_divergence_mean"],
                     "delta_nll": q["delta_nll"], "ppl_ratio": q["ppl_ratio"],
                     "forced_top1_agreement": q["forced_top1_agreement"], "tpot_ms": s["tpot_ms"],
                     "baseline_tpot_ms": base["tpot_ms"], "tpot_ratio": report.ratio(s["tpot_ms"], base["tpot_ms"]),
                     "prune_events": s["prune_events"], "prune_time_ms": s["prune_time_ms"],
                     "kv_tokens_max": s["kv_tokens_max"], "kv_decode_max": s["kv_decode_max"]})
    return rows


def write_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")  # intervals: in the JSON
        w.writeheader()
        w.writerows(rows)


def _series(rows):
    """(label, rows sorted by budget) per policy/mechanism, in first-seen order."""
    keys = list(dict.fromkeys((r["policy"], r["evict"]) for r in rows))
    return [(f"{p}/{e}", sorted((r for r in rows if (r["policy"], r["evict"]) == (p, e)), key=lambda r: r["budget"]))
            for p, e in keys]


def plot(rows: list[dict], out_dir: Path, title: str) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    from .perfplot import save_figure

    series = _series(rows)
    budgets = sorted({r["budget"] for r in rows})
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, rs in series:
        b = [r["budget"] for r in rs]
        ax1.plot(b, [100 * r["agreement"] for r in rs], marker="o", label=label)
        ax2.plot(b, [r["delta_nll"] for r in rs], marker="o", label=label)
    ax1.set(xlabel="KV budget (tokens)", ylabel="token agreement with baseline (%)", ylim=(-2, 102),
            title="Greedy output agreement")
    ax2.axhline(0.0, color="grey", lw=0.8)
    ax2.set(xlabel="KV budget (tokens)", ylabel="ΔNLL (nats/token, teacher-forced)", title="Cost on the baseline's tokens")
    for ax in (ax1, ax2):
        ax.set_xticks(budgets)
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    quality_png = save_figure(plt, fig, title, out_dir / "quality.png")

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for label, rs in series:
        ax.plot([r["budget"] for r in rs], [r["tpot_ms"] for r in rs], marker="o", label=label)
    ax.axhline(rows[0]["baseline_tpot_ms"], color="black", ls="--", lw=1, label="baseline (full cache)")
    ax.set(xlabel="KV budget (tokens)", ylabel="TPOT (ms/token, median)", title="Decode time per token")
    ax.set_xticks(budgets)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return [quality_png, save_figure(plt, fig, title, out_dir / "tpot.png")]


def run_sweep(model, tokenizer, texts, modes, sampling, max_new_tokens: int, runs: int, out_dir: Path,
              chat: bool = True, bar=None, title: str | None = None, agreement_steps: int = 16,
              agreement_plot: Path | None = None) -> dict:
    """Run the grid and write sweep.csv, sweep.json, quality.png, tpot.png and (when measured)
    agreement.png into `out_dir`, the last also to `agreement_plot`. `note`: why agreement is missing."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = bench.prompt_plan(bench.text_prompts(tokenizer, texts, chat), modes)
    result = bench.benchmark(model, tokenizer, plan, sampling, max_new_tokens, runs, bar=bar)
    summary = report.summarize(result["runs"], result["quality"], [m.name for m in modes], len(plan.prompts))
    rows = sweep_rows(summary, modes)
    found, note = agreement.measure(model, plan.prompts, modes[1:], max_new_tokens, agreement_steps)
    for m, row in zip(modes[1:], rows):
        row.update({k: None for k in agreement.FIELDS} | found.get(m.name, {}))
    write_csv(rows, out_dir / "sweep.csv")
    title = title or (f"{Path(model.info.model_dir).name} on {model.device}: {len(texts)} prompts, "
                      f"{max_new_tokens} new tokens, {runs} run(s)")
    files = [out_dir / "sweep.csv", out_dir / "sweep.json", *plot(rows, out_dir, title)]
    for path in [out_dir / "agreement.png"] + ([Path(agreement_plot)] if agreement_plot else []):
        drawn = agreement.plot(rows, path, title)
        files += [drawn] if drawn else []
    doc = {"settings": {"runs": runs, "max_new_tokens": max_new_tokens, "sampling": sampling.__dict__,
                        "chat_template": chat, "agreement_steps": agreement_steps}, "machine": result["machine"],
           "rows": rows,
           "modes": result["modes"], "prompts": result["prompts"], "summary": summary,
           "quality": result["quality"], "runs": result["runs"]}
    (out_dir / "sweep.json").write_text(json.dumps(doc, indent=1))
    return {"rows": rows, "files": files, "machine": result["machine"], "note": note}


def rows_table(rows: list[dict]) -> str:
    headers = ["Budget", "Policy/evict", "Agreement", "First div.", "ΔNLL", "PPL ratio", "Top-1 (forced)",
               "TPOT (ms)", "TPOT / baseline", "Top-k overlap (chance)", "Rank corr.", "Cuts"]
    body = [[r["budget"], f"{r['policy']}/{r['evict']}", report.fmt(r["agreement"], ".1%"),
             report.fmt(r["first_divergence_mean"], ".1f"), report.fmt(r["delta_nll"], "+.3f"),
             report.fmt(r["ppl_ratio"], ".3f"), report.fmt(r["forced_top1_agreement"], ".1%"),
             report.fmt(r["tpot_ms"]), report.fmt(r["tpot_ratio"]), _overlap(r), report.fmt(r.get("rank_corr"), "+.2f"),
             report.fmt(r.get("agreement_events"), "d")] for r in rows]
    return report.table(headers, body, left=2)


def _overlap(r: dict) -> str:
    if r.get("topk_overlap") is None:
        return report.fmt(None)
    return f"{r['topk_overlap']:.2f} ({r['chance_overlap']:.2f})"
