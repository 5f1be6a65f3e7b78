"""The printed report of `perf`: each section's tables from its part of the perf JSON, so a run
prints as it goes and `perf --from FILE` prints a saved run the same way.

The JSON: {"machine", "runs", "vs_genai": [rows], "long": {model dir: section},
"real_dims": {tokens: section}}; a section is {"setup", "modes", "figures", "prefill", "form"}
(prefill only for the long models: prefill.py's profile; form: the cache form its runs ran on,
longctx.form_of, printed from the answers so that older files say it too). Every figure is
printed as its median over runs with its interval, the number of runs and the interval's level
(spread.py).
"""
from __future__ import annotations

from . import longctx, prefill, spread, vsgenai
from .report import header_line, table


def figure_table(rows: list[dict]) -> str:
    """Each figure: median over runs with its interval, count and level; target; verdict."""
    cells = [[r["what"], _measured(r), "–" if r["target"] is None else f"<= {r['target']}",
              r.get("verdict") or "–", r["note"]] for r in rows]
    return table(["Figure", "Median [interval] runs, level", "Target", "Verdict", "Note"], cells)


def _measured(r: dict) -> str:
    s = r.get("spread")
    if r["what"].startswith("ΔNLL"):
        return "–" if r["value"] is None else f"{r['value']:+.3f}"
    return spread.fmt(s)


def precision_of(section: dict, default: str | None = None) -> str:
    """The precision a section's runs ran at, from its answers (older files did not record it)."""
    for answers in section.get("modes", {}).values():
        for a in answers:
            if "precision" in a:
                return f"{a['precision']} (KV cache {a.get('kv_cache_precision', '?')})"
    return default or "not recorded (each model's device default)"


def genai_title(runs: int, max_new_tokens: int, precision: str = "") -> str:
    return (f"1. Our baseline against OpenVINO GenAI LLMPipeline ({runs} runs each, alternating, "
            f"{max_new_tokens} new tokens, {precision} precision for both; medians of each round's ratio "
            f"ours / GenAI with their interval)")


def long_title(model_dir, setup: dict, runs: int, real_dims: bool = False, precision: str = "",
               form: str = "") -> str:
    from pathlib import Path
    what = (f"3. Real dims: {Path(model_dir).name}" if real_dims else f"2. Long context: {Path(model_dir).name}")
    return (f"{what}, {setup['context']} tokens, {setup['policy']} budget {setup['budget']}, pieces of "
            f"{setup['chunk']}{baseline_pieces(setup)}, cache form {form}, precision {precision} ({runs} runs alternating, medians of "
            f"each round's ratio"
            + ("; no targets)" if real_dims else ")"))


def baseline_pieces(setup: dict) -> str:
    n = setup.get("baseline_chunk") or 0  # saved runs before it read their baselines whole
    return " (the baselines too)" if n == setup["chunk"] else (f" (the baselines in pieces of {n})" if n else "")


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
        print_genai(out["vs_genai"], genai_title(out["runs"], new, out["machine"]["precision"]))
    for d, section in out.get("long", {}).items():
        print_long(long_title(d, section["setup"], out["runs"], precision=precision_of(section),
                              form=longctx.form_of(section["modes"])), section)
    for section in out.get("real_dims", {}).values():
        print_long(long_title(out.get("real_dims_model", "real dims"), section["setup"], out["runs"], True,
                              precision_of(section), longctx.form_of(section["modes"])), section)


OLD_KILLED = "killed by the system (out of memory)"  # older files named a cause the signal does not show


def refresh_figures(out: dict) -> None:
    """Recompute every section's figures from its modes' answers: a saved run read back gets
    today's figures (spreads, verdicts, floors) from the numbers it measured."""
    for row in out.get("vs_genai", []):
        vsgenai.refresh(row, out["runs"])
    for key, targets in (("long", True), ("real_dims", False)):
        for section in out.get(key, {}).values():
            for answers in section["modes"].values():
                for a in answers:
                    if a.get("failed") == OLD_KILLED:
                        a["failed"] = "killed (signal 9), last peak RSS not recorded"
            section["figures"] = longctx.figures(section["modes"], longctx.LongSetup(**section["setup"]), targets)
