"""The arena as a report anyone can send: one self-contained HTML file, or the same as JSON.

The HTML needs nothing but a browser, offline: no script, no stylesheet or font from elsewhere; the
plots are PNG images embedded as base64 data. It holds the settings, the model, device, precision and
versions, every run's output, the leaderboard, the headline, the latency and KV plots with every run
and each pruned run's eviction view (which tokens its cache forgot).
"""
from __future__ import annotations

import base64
import html
import io
import json
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from ..core.tables import LEADERBOARD, leaderboard_rows
from .evictview import COLORS, eviction_summary, eviction_view

PACKAGES = ("triattn", "openvino", "openvino-genai", "transformers", "numpy")


def versions() -> dict:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:  # triattn itself, run from a checkout
            out[p] = "run from a checkout, not installed" if p == "triattn" else "not installed"
    return out


def eviction_spans(arena, name: str) -> list | None:
    """(text, label) spans of what run `name`'s cache forgot; None where its runtime does not say."""
    side = arena.sides[name]
    if not side.runner.reports_prunes or not side.eviction.prunes:
        return None
    return [list(s) for s in eviction_view(arena.tokenizer, arena.prompt_ids, side.token_ids, side.records,
                                           arena.model.info.n_layers)]


def record(arena, prompt: str, settings: dict | None = None) -> dict:
    """Everything the report shows, as plain JSON-able data."""
    n_layers = arena.model.info.n_layers
    runs = []
    for name, side in arena.sides.items():
        m = side.current_metrics()
        q = arena.quality.get(name)
        run = {"name": name, "eviction": side.eviction.as_dict(), "text": side.text, "tokens": len(side.token_ids),
               "done": side.done, "metrics": None if m is None else m.as_dict(),
               "quality": None if q is None else q.as_dict(), "expected_answer_kept": arena.kept(name),
               "stopped": arena.stopped(name)}
        spans = eviction_spans(arena, name)
        if spans is not None:
            run["eviction_view"] = spans
            run["eviction_summary"] = eviction_summary(side.records, len(arena.prompt_ids) + len(side.token_ids),
                                                       n_layers)
        runs.append(run)
    lat, kv = arena.plots()
    return {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "model": str(arena.model.info.model_dir), "device": arena.model.device,
            "precision": getattr(arena.model, "precision", ""), "versions": versions(),
            "settings": {"max_new_tokens": arena.max_new_tokens, **vars_of(arena.sampling), **(settings or {})},
            "prompt": prompt, "prompt_tokens": len(arena.prompt_ids), "expected": list(arena.expected),
            "headline": arena.headline(), "notices": list(arena.notices),
            "leaderboard": {"headers": LEADERBOARD, "rows": leaderboard_rows(arena.standings())},
            "peak_rss_mb": arena.peak_mb, "runs": runs,
            "latency_ms": _points(lat, "ms"), "kv_tokens": _points(kv, "KV tokens")}


def vars_of(obj) -> dict:
    from dataclasses import asdict
    return asdict(obj)


def _points(frame, column: str) -> dict:
    d = frame.dropna()
    return {run: [[int(t), float(v)] for t, v in zip(g["token"], g[column])] for run, g in d.groupby("run", sort=False)}


def plot_png(points: dict, ylabel: str, title: str) -> str:
    """One line per run, as a base64 PNG."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    fig = Figure(figsize=(7, 3.2), dpi=100)
    ax = fig.add_subplot()
    for run, pts in points.items():
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=run, linewidth=1.2)
    ax.set_xlabel("token")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _table(headers, rows, cls: str) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _spans(spans) -> str:
    out = []
    for text, lab in spans:
        t = html.escape(text)
        out.append(f'<span style="background:{COLORS[lab]}" title="{html.escape(lab)}">{t}</span>'
                   if lab in COLORS else t)
    return "".join(out)


STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
         "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px}"
         "pre{white-space:pre-wrap;background:#f6f6f6;padding:.6em}.view{white-space:pre-wrap;font-size:12px}")


def to_html(rec: dict) -> str:
    """The report as one self-contained HTML page."""
    e = html.escape
    meta = [("Model", rec["model"]), ("Device", rec["device"]), ("Precision", rec["precision"]),
            ("Prompt tokens", rec["prompt_tokens"]), ("Created", rec["created"]),
            *((k, v) for k, v in rec["settings"].items()), *((f"version {k}", v) for k, v in rec["versions"].items())]
    if rec["expected"]:
        meta.append(("Expected answer", ", ".join(rec["expected"])))
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>triattn arena</title><style>{STYLE}</style>"
             "</head><body><h1>triattn arena: pruning policies against one baseline</h1>",
             f'<p id="headline">{e(rec["headline"])}</p>',
             "<h2>Leaderboard</h2>", _table(rec["leaderboard"]["headers"], rec["leaderboard"]["rows"], "leaderboard"),
             "<h2>Outputs</h2>"]
    for run in rec["runs"]:
        kept = {True: " (expected answer kept)", False: " (expected answer lost)"}.get(run["expected_answer_kept"], "")
        parts.append(f'<h3>{e(run["name"])}{kept}</h3><pre class="output">{e(run["text"])}</pre>')
    parts.append("<h2>Plots</h2>")
    for key, ylabel, title in (("latency_ms", "ms", "Time per token"), ("kv_tokens", "KV tokens", "KV cache size")):
        parts.append(f'<img alt="{title}" src="data:image/png;base64,{plot_png(rec[key], ylabel, title)}">')
    parts.append("<h2>Eviction views</h2>")
    for run in rec["runs"]:
        if "eviction_view" in run:
            parts.append(f'<h3>{e(run["name"])}</h3><p>{e(run["eviction_summary"])}</p>'
                         f'<div class="view">{_spans(run["eviction_view"])}</div>')
    parts.append("<h2>Settings</h2>" + _table(["Setting", "Value"], meta, "settings"))
    parts.append(f"<h2>Prompt</h2><pre>{e(rec['prompt'])}</pre>")
    if rec["notices"]:
        parts.append("<h2>Notes</h2>" + "".join(f"<p>{e(n)}</p>" for n in rec["notices"]))
    return "\n".join(parts) + "</body></html>"


def write(path, rec: dict) -> Path:
    """HTML when the name ends in .html (or .htm), JSON when it ends in .json."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        path.write_text(to_html(rec), encoding="utf-8")
    elif suffix == ".json":
        path.write_text(json.dumps(rec, indent=1, ensure_ascii=False), encoding="utf-8")
    else:
        raise ValueError(f"a report file ends in .html or .json, got {path.name!r}")
    return path
