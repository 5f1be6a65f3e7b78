"""The printed report of `perf`: each section's tables from its part of the perf JSON, so a run
prints as it goes and `perf --from FILE` prints a saved run the same way.

The JSON: {"machine", "runs", "vs_genai": [rows], "long": {model dir: section},
"real_dims": {tokens: section}}; a section is {"setup", "modes", "figures", "prefill"}
(prefill only for the long models: prefill.py's profile).
"""
from __future__ import annotations

from . import longctx, prefill, vsgenai
from .report import header_line, table


def figure_table(rows: list[dict]) -> str:
    cells = [[r["what"], "–" if r["value"] is None else f"{r['value']:+.3f}" if r["what"].startswith("ΔNLL")
              else f"{r['value']:.3f}",
              "–" if r["target"] is None else f"<= {r['target']}",
              "–" if r["met"] is None else ("met" if r["met"] else "missed"), r["note"]] for r in rows]
    return table(["Figure", "Measured", "Target", "Met", "Note"], cells)


def genai_title(runs: int, max_new_tokens: int) -> str:
    return (f"1. Our baseline against OpenVINO GenAI LLMPipeline ({runs} runs each, alternating, "
            f"{max_new_tokens} new tokens, medians; ratio = ours / GenAI)")


def long_title(model_dir, setup: dict, runs: int, real_dims: bool = False) -> str:
    from pathlib import Path
    what = (f"3. Real dims: {Path(model_dir).name}" if real_dims else f"2. Long context: {Path(model_dir).name}")
    return (f"{what}, {setup['context']} tokens, {setup['policy']} budget {setup['budget']}, pieces of "
            f"{setup['chunk']} ({runs} runs, medians" + ("; no targets)" if real_dims else ")"))


def print_genai(rows: list[dict], title: str) -> None:
    print(f"\n{title}\n")
    print(vsgenai.table(rows))
    if any("genai_stateful" in r for r in rows):
        print("\nThe same against GenAI on the stateful model our loop runs (ATTENTION_BACKEND SDPA), not its "
              "paged-attention default: what is left is the loop's own cost\n")
        print(vsgenai.stateful_table(rows))


def print_long(title: str, section: dict) -> None:
    print(f"\n{title}\n")
    print(table(longctx.MODE_HEADER, longctx.mode_rows(section["modes"])))
    print()
    print(figure_table(section["figures"]))
    prof = section.get("prefill")
    if prof is None:
        return
    print("\nWhere the prefill's time goes (one forward at a time, medians):\n")
    if "failed" in prof:
        print(f"not measured: {prof['failed']}")
        return
    print(prefill.table(prof))
    print(prefill.summary(prof))


def print_all(out: dict) -> None:
    """A saved perf JSON, printed as the run printed it."""
    print(header_line(out["machine"]))
    if out.get("vs_genai"):
        new = out["vs_genai"][0].get("new_tokens", "?")
        print_genai(out["vs_genai"], genai_title(out["runs"], new))
    for d, section in out.get("long", {}).items():
        print_long(long_title(d, section["setup"], out["runs"]), section)
    for section in out.get("real_dims", {}).values():
        print_long(long_title(out.get("real_dims_model", "real dims"), section["setup"], out["runs"], True), section)


def refresh_figures(out: dict) -> None:
    """Recompute every section's figures from its modes' answers: a saved run read back gets
    today's figures (and their floors) from the numbers it measured."""
    for section in out.get("long", {}).values():
        section["figures"] = longctx.figures(section["modes"], longctx.LongSetup(**section["setup"]))
    for section in out.get("real_dims", {}).values():
        section["figures"] = longctx.figures(section["modes"], longctx.LongSetup(**section["setup"]), targets=False)
