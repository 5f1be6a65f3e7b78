"""The sweep's agreement columns and figure: at each point where a policy would cut, how much of its
top-k set the attention of the next N decode steps would also keep, and the rank correlation of the
two (core/agreement.py; measured beside one full-cache greedy run per prompt, core/observe.py).

Only policies of our loop score tokens (a runtime that evicts by itself, ov-genai, shows none), and
only the paged form reports the attention paid: on the stateful form the columns stay empty and
`note` says why. Each figure is a median over the cut points of every prompt, with its interval
and its count; `chance_overlap` is the mean k / n, what keeping k of n tokens at random gets.
Scores are compared per layer whatever the mechanism (mask and zero choose one set for all layers
from their standardised mean): the figure is about the policy's ranking, not the mechanism's.
"""
from __future__ import annotations

from ..core.observe import observe
from ..core.stats import median_interval

FIELDS = ["topk_overlap", "chance_overlap", "rank_corr", "agreement_events"]


def scorable(mode) -> bool:
    policy = mode.eviction.policy_object()
    return policy.prunes and policy.runtime == "loop"


def measure(model, prompts, modes, max_new_tokens: int, steps: int) -> tuple[dict, str | None]:
    """({mode name: figures} for the modes whose policy scores tokens, a note when none could be
    measured and why)."""
    chosen = [m for m in modes if scorable(m)]
    if not chosen:
        return {}, None
    session = model.new_session()
    try:
        if not session.reports_attention:
            return {}, (f"agreement with the attention paid not measured: only the paged cache form reports it "
                        f"(this model runs on the {getattr(model, 'form', 'stateful')} form)")
        events = {m.name: [] for m in chosen}
        calibrations = [m.eviction.policy_object().prepare(model.info.model_dir) for m in chosen]
        for p in prompts:
            found = observe(session, model.info, p.ids, [m.eviction for m in chosen], max_new_tokens, steps,
                            calibrations)
            for m, ev in zip(chosen, found):
                events[m.name] += ev
    finally:
        session.close()
    return {name: summarize(ev, steps) for name, ev in events.items()}, None


def summarize(events, steps: int) -> dict:
    """Medians over the cut points, with intervals, and how many there were (none: a budget the runs
    never reached)."""
    out = {"agreement_events": len(events), "agreement_steps": steps}
    if not events:
        return {**out, "topk_overlap": None, "chance_overlap": None, "rank_corr": None}
    ov = median_interval([e.overlap for e in events])
    rc = median_interval([e.rank_corr for e in events])
    return {**out, "topk_overlap": ov.value, "topk_overlap_interval": [ov.lo, ov.hi],
            "chance_overlap": sum(e.k / e.n for e in events) / len(events),
            "rank_corr": rc.value, "rank_corr_interval": [rc.lo, rc.hi]}


def plot(rows: list[dict], path, title: str):
    """Top-k overlap and rank correlation against budget, one line per policy, chance dashed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .perfplot import save_figure

    rows = [r for r in rows if r.get("agreement_events")]
    if not rows:
        return None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label in dict.fromkeys(f"{r['policy']}/{r['evict']}" for r in rows):
        rs = sorted((r for r in rows if f"{r['policy']}/{r['evict']}" == label), key=lambda r: r["budget"])
        b = [r["budget"] for r in rs]
        for ax, key in ((ax1, "topk_overlap"), (ax2, "rank_corr")):
            lo = [r[key] - r[f"{key}_interval"][0] for r in rs]
            hi = [r[f"{key}_interval"][1] - r[key] for r in rs]
            ax.errorbar(b, [r[key] for r in rs], yerr=[lo, hi], marker="o", capsize=3,
                        label=f"{label} ({sum(r['agreement_events'] for r in rs)} cuts)")
    chance = sorted({(r["budget"], r["chance_overlap"]) for r in rows})
    ax1.plot([c[0] for c in chance], [c[1] for c in chance], "--", color="grey", label="chance (k / n)")
    steps = rows[0]["agreement_steps"]
    ax1.set(xlabel="KV budget (tokens)", ylabel="share of the policy's top k", ylim=(0, 1.02),
            title=f"Top-k overlap with the next {steps} steps' attention")
    ax2.axhline(0.0, color="grey", lw=0.8)
    ax2.set(xlabel="KV budget (tokens)", ylabel="Spearman rank correlation", ylim=(-1, 1),
            title=f"Rank correlation with the next {steps} steps' attention")
    for ax in (ax1, ax2):
        ax.set_xticks(sorted({r["budget"] for r in rows}))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save_figure(plt, fig, f"{title} (medians over cut points, 95% intervals)", path)
