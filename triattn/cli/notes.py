"""Notes printed under the CLI's results where a figure would mislead on its own: a pruned run that
never went over its budget (nothing was pruned: its differences from the baseline are noise), and a
"First div." that is the number of tokens compared because the outputs never differed."""
from __future__ import annotations


def nothing_pruned(kv_max: int, budget: int, what: str = "the pruned run") -> str:
    return (f"note: nothing was pruned in {what}: its KV cache held at most {kv_max} tokens, never over the budget "
            f"of {budget}, so it did the baseline's work and any difference in time is noise (a longer prompt, "
            f"more --max-new-tokens or a smaller --budget would prune)")


def run_note(metrics, eviction) -> str | None:
    """infer: the note for one pruned run, or None when it pruned (or its backend does not say)."""
    if not eviction.prunes or metrics.prune_events != 0:
        return None
    return nothing_pruned(metrics.kv_tokens_max, eviction.budget)


def bench_notes(summary: dict, budgets: dict) -> list[str]:
    """bench: one line per pruned mode that never pruned or never differed. budgets: mode -> budget."""
    notes = []
    for name, s in list(summary["modes"].items())[1:]:  # the first mode is the baseline
        if s["prune_events"] == 0:
            notes.append(nothing_pruned(s["kv_tokens_max"], budgets.get(name, "?"), f"mode {name}"))
        q = s.get("quality") or {}
        if q and q.get("identical") == q.get("prompts"):
            notes.append(f"note: mode {name} gave the baseline's exact output on every prompt: its \"First div.\" "
                         f"{q['first_divergence_mean']:.1f} is the number of tokens compared; the outputs never "
                         f"differed")
    return notes
