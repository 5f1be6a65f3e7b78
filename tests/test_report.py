"""Aggregation, Change rows and the run schedule on hand-made numbers."""
import pytest

from triattn.bench import plan as bench
from triattn.bench import report
from triattn.core.config import EvictionConfig


def raw(mode, prompt, latency, tpot, throughput, rss, prune_events=0, prune_s=0.0, decode_s=1.0, kv=20):
    return {"mode": mode, "prompt": prompt, "decode_time_s": decode_s, "decode_prune_time_s": prune_s,
            "kv_decode_max": kv,
            "metrics": {"latency_s": latency, "tpot_ms": tpot, "ttft_s": 0.01, "throughput_tok_s": throughput,
                        "rss_delta_mb": rss, "new_tokens": 10, "kv_tokens_max": kv, "prune_events": prune_events,
                        "prune_time_s": prune_s}}


def quality(mode, prompt, agreement, first, compared=12, dnll=0.1):
    return {"mode": mode, "prompt": prompt, "agreement": agreement, "first_divergence": first,
            "compared_tokens": compared, "delta_nll": dnll, "ppl_ratio": 1.1, "forced_top1_agreement": 0.9}


def test_means_medians_and_change_row():
    """baseline: latency 1, 3 -> mean 2; TPOT 10, 30, 20 -> median 20; throughput 100; memory +2 MB.
    pruned: latency 4 -> +100%; TPOT 30, 32, 90 -> median 32 -> +60%; throughput 50 -> -50%; memory
    +10 MB -> +8 MB; KV 10 vs 40 -> -75%; prune share = (0.1 + 0.3 + 0.2) / (1 + 1 + 1) = 20%."""
    runs = [raw("baseline", 0, 1.0, 10.0, 100.0, 2.0, kv=40), raw("baseline", 1, 3.0, 30.0, 100.0, 2.0),
            {**raw("baseline", 0, 2.0, 20.0, 100.0, 2.0), "run": 1},
            raw("p", 0, 4.0, 30.0, 50.0, 10.0, 2, 0.1, kv=10), raw("p", 1, 4.0, 32.0, 50.0, 10.0, 4, 0.3, kv=10),
            {**raw("p", 0, 4.0, 90.0, 50.0, 10.0, 3, 0.2, kv=10), "run": 1}]
    qs = [quality("p", 0, 0.5, 4), quality("p", 1, 1.0, None, compared=12)]
    s = report.summarize(runs, qs, ["baseline", "p"], 2)
    b, p = s["modes"]["baseline"], s["modes"]["p"]
    assert (b["latency_s"], b["tpot_ms"], b["rss_delta_mb"]) == (2.0, 20.0, 2.0)
    assert (p["latency_s"], p["tpot_ms"], p["prune_events"]) == (4.0, 32.0, 3.0)
    assert p["prune_time_ms"] == pytest.approx(200.0) and p["prune_share"] == pytest.approx(0.2)
    c = s["change"]["p"]
    assert c["latency_pct"] == pytest.approx(100.0) and c["tpot_pct"] == pytest.approx(60.0)
    assert c["throughput_pct"] == pytest.approx(-50.0) and c["rss_delta_mb_diff"] == pytest.approx(8.0)
    assert c["kv_tokens_max_pct"] == pytest.approx(-75.0)
    # quality: agreement mean 0.75; first divergence 4 and (identical) 12 -> 8
    assert p["quality"]["agreement"] == pytest.approx(0.75) and p["quality"]["first_divergence_mean"] == 8.0
    assert p["quality"]["identical"] == 1
    # per-prompt cells: prompt 0 of p has TPOT 30 and 90 -> median 60, latency 4
    cell = next(x for x in s["cells"] if x["prompt"] == 0 and x["mode"] == "p")
    assert cell["tpot_ms"] == 60.0 and cell["quality"]["agreement"] == 0.5
    text = report.mode_table(s)
    change_row = next(ln for ln in text.splitlines() if ln.startswith("| Change (p)"))
    # the TPOT change: each round's own (30/10, 32/30, 90/20: +200%, +6.7%, +350%), their median and min..max
    assert [x.strip() for x in change_row.split("|")[2:7]] == ["+100.0%", "+200.0% [+6.7, +350.0] n=3, 75%",
                                                                "-50.0%", "+8.0 MB", "-75.0%"]


def test_context_rows_ratios_and_bound():
    """Lengths 64 and 128 (prompts 0, 1) and the baseline at context = budget (prompt 2, TPOT 4):
    at 64 baseline 8, pruned 6 -> ratio 0.75, limit 1.5; bound (32 + 2) x 100 bytes."""
    runs = [raw("baseline", 0, 1, 8.0, 1, 0), raw("p", 0, 1, 6.0, 1, 0, kv=33),
            raw("baseline", 1, 1, 12.0, 1, 0), raw("p", 1, 1, 6.0, 1, 0, kv=33), raw("baseline", 2, 1, 4.0, 1, 0)]
    s = report.summarize(runs, [], ["baseline", "p"], 3)
    modes = [{"name": "baseline", "budget": 32, "prune_interval": 2}, {"name": "p", "budget": 32, "prune_interval": 2}]
    rows = report.context_rows(s, [64, 128], modes, 2, kv_bytes_per_token=100)
    assert [(r["context"], r["ratio"], r["limit_ratio"]) for r in rows] == [(64, 0.75, 1.5), (128, 0.5, 1.5)]
    assert rows[0]["kv_decode_bytes"] == 3300 and rows[0]["kv_bound_bytes"] == 3400


def test_limit_ratio_pairs_the_reference_measured_alongside_each_length():
    """Step-interleaved: the baseline at context = budget (prompt 2) ran beside each length (group
    0: 4 and 6 ms over two runs, median 5; group 1: 3 ms), so 64 -> 6 / 5, 128 -> 6 / 3."""
    runs = [raw("baseline", 0, 1, 8.0, 1, 0), raw("p", 0, 1, 6.0, 1, 0), raw("baseline", 1, 1, 12.0, 1, 0),
            raw("p", 1, 1, 6.0, 1, 0)]
    for group, tpot in ((0, 4.0), (0, 6.0), (1, 3.0)):
        runs.append({**raw("baseline", 2, 1, tpot, 1, 0), "group": group})
    refs = report.paired_refs(runs, 2)
    assert refs == {0: 5.0, 1: 3.0}
    s = report.summarize(runs, [], ["baseline", "p"], 3)
    modes = [{"name": "baseline", "budget": 32, "prune_interval": 2}, {"name": "p", "budget": 32, "prune_interval": 2}]
    rows = report.context_rows(s, [64, 128], modes, 2, 100, refs)
    assert [(r["ref_tpot_ms"], r["limit_ratio"]) for r in rows] == [(5.0, 1.2), (3.0, 2.0)]
    assert report.paired_refs([r for r in runs if "group" not in r], 2) == {}


def test_at_the_budget_length_the_baseline_is_its_own_groups():
    """Budget 64 is one of the lengths (prompt 0): its baseline also ran beside length 128 (group 1,
    10 ms), but the 64 row takes only its own group's runs (4 ms): ratio 6 / 4, limit the same."""
    runs = [{**raw("baseline", 0, 1, 4.0, 1, 0), "group": 0}, {**raw("p", 0, 1, 6.0, 1, 0), "group": 0},
            {**raw("baseline", 1, 1, 12.0, 1, 0), "group": 1}, {**raw("p", 1, 1, 6.0, 1, 0), "group": 1},
            {**raw("baseline", 0, 1, 10.0, 1, 0), "group": 1}]
    s = report.summarize(runs, [], ["baseline", "p"], 2)
    modes = [{"name": "baseline", "budget": 64, "prune_interval": 2}, {"name": "p", "budget": 64, "prune_interval": 2}]
    rows = report.context_rows(s, [64, 128], modes, 0, 100, report.paired_refs(runs, 0))
    assert [(r["baseline_tpot_ms"], r["ratio"], r["limit_ratio"]) for r in rows] == [(4.0, 1.5, 1.5),
                                                                                     (12.0, 0.5, 0.6)]


def test_schedule_runs_outermost_then_prompts_then_modes():
    modes = bench.make_modes(["knorm", "streaming"], ["hard"], [16], 4, 2, 2)
    assert [m.name for m in modes] == ["baseline", "knorm/hard", "streaming/hard"]
    plan = bench.prompt_plan([bench.Prompt("a", [1]), bench.Prompt("b", [2])], modes)
    order = [(r, c.prompt, c.mode) for r, c in bench.schedule(plan, 2)]
    assert order == [(r, p, m) for r in range(2) for p in range(2) for m in range(3)]
    assert plan.pairs == [(bench.Cell(p, 0), bench.Cell(p, m)) for p in range(2) for m in (1, 2)]


def test_modes_over_budgets_and_validation():
    modes = bench.make_modes(["knorm"], ["hard", "mask"], [16, 32], 4, 2, 2)
    assert [m.name for m in modes] == ["baseline", "knorm/hard@16", "knorm/mask@16", "knorm/hard@32", "knorm/mask@32"]
    assert modes[0].eviction == EvictionConfig(policy="none", budget=32, recent_window=4, sink_tokens=2,
                                               prune_interval=2)
    with pytest.raises(ValueError, match="budget 6 must exceed"):
        bench.make_modes(["knorm"], ["hard"], [32, 6], 4, 2, 2)


def test_card_mode_is_the_model_cards_configuration():
    card = bench.make_modes(["knorm"], ["hard"], [128], 32, 4, 16, with_card=True)[-1]
    assert card.name == bench.CARD_MODE
    assert card.eviction == EvictionConfig(policy="knorm-seed", evict="zero", budget=128, recent_window=32,
                                           sink_tokens=0, prune_interval=1)


def test_table_alignment():
    t = report.table(["A", "Num"], [["x", "1.5"], ["long", "10.25"]])
    assert t.splitlines() == ["| A    |   Num |", "|------|------:|", "| x    |   1.5 |", "| long | 10.25 |"]


def test_missing_figures_are_skipped_not_zero():
    """A backend mode (ov-genai) reports no prune events or time and no teacher-forced quality:
    its aggregates are None (shown as –), while its agreement is still the mean over prompts, and a
    mode with figures is unaffected."""
    runs = [raw("baseline", 0, 1.0, 10.0, 100.0, 0.0), raw("g", 0, 1.0, 8.0, 100.0, 0.0, None, None),
            raw("g", 1, 1.0, 6.0, 100.0, 0.0, None, None), raw("k", 0, 1.0, 9.0, 100.0, 0.0, 2, 0.1)]
    qs = [quality("g", 0, 0.5, 3, dnll=None), quality("g", 1, 1.0, None, dnll=None), quality("k", 0, 0.25, 1)]
    for q in qs[:2]:
        q.update(ppl_ratio=None, forced_top1_agreement=None)
    s = report.summarize(runs, qs, ["baseline", "g", "k"], 2)
    g, k = s["modes"]["g"], s["modes"]["k"]
    assert (g["prune_events"], g["prune_time_ms"], g["prune_share"]) == (None, None, None)
    assert g["quality"]["agreement"] == 0.75 and g["quality"]["delta_nll"] is None
    assert (k["prune_events"], k["quality"]["delta_nll"]) == (2.0, 0.1)
    row = next(ln for ln in report.mode_table(s).splitlines() if ln.startswith("| g "))
    cols = [x.strip() for x in row.split("|")[1:-1]]
    assert cols[6:8] == ["–", "–"] and cols[8] == "75.0%" and cols[10:] == ["–", "–", "–"]


def test_context_rows_use_a_backend_modes_own_bound():
    """ov-genai: bound = kv_bound_tokens (max_cache_size + block), bytes per token its own (50)."""
    runs = [raw("baseline", 0, 1, 8.0, 1, 0), raw("g", 0, 1, 6.0, 1, 0, None, None, kv=64),
            raw("baseline", 1, 1, 4.0, 1, 0)]
    s = report.summarize(runs, [], ["baseline", "g"], 2)
    modes = [{"name": "baseline", "budget": 32, "prune_interval": 2},
             {"name": "g", "budget": 32, "prune_interval": 2, "used": {"kv_bound_tokens": 64, "kv_bytes_per_token": 50}}]
    row = report.context_rows(s, [64], modes, 1, kv_bytes_per_token=100)[0]
    assert (row["kv_decode_bytes"], row["kv_bound_bytes"], row["prune_share"]) == (3200, 3200, None)
    assert "| 64      | g    |" in report.context_table([row], 32)


def test_backend_policy_is_one_mode_per_budget():
    modes = bench.make_modes(["ov-genai", "knorm"], ["hard", "zero"], [64], 16, 4, 8, genai_aggregation="sum")
    assert [m.name for m in modes] == ["baseline", "ov-genai/blocks", "knorm/hard", "knorm/zero"]
    assert modes[1].eviction.genai_aggregation == "sum"


def test_the_tpot_change_pairs_rounds_and_leaves_out_a_round_one_side_lacks():
    """Noisy steps, runs of unequal count: the pruned mode lost its third round. Rounds 0, 1:
    44/40 and 36/40 (+10%, -10%); the baseline's third run (80 ms, a slow moment) pairs with nothing."""
    def run(mode, r, tpot):
        return {**raw(mode, 0, 1.0, tpot, 1.0, 0.0), "run": r}
    runs = [run("baseline", 0, 40.0), run("p", 0, 44.0), run("baseline", 1, 40.0), run("p", 1, 36.0),
            run("baseline", 2, 80.0)]
    c = report.tpot_change(runs, "baseline", "p")
    assert (c["value"], c["lo"], c["hi"], c["n"]) == pytest.approx((0.0, -10.0, 10.0, 2))
    assert report.tpot_change(runs[:1], "baseline", "p") is None  # no round has both


def test_context_ratios_pair_each_run_with_the_reference_beside_it():
    """Steps interleaved, two runs: length 128 (prompt 1) with its reference at 64 (prompt 0) in
    group 1. Run 0: pruned 6 / baseline 12, reference 4; run 1: 9 / 12, reference 6."""
    def run(mode, prompt, r, tpot, group):
        return {**raw(mode, prompt, 1, tpot, 1, 0), "run": r, "group": group}
    runs = [run("baseline", 0, 0, 5.0, 0), run("p", 0, 0, 5.0, 0),
            run("baseline", 1, 0, 12.0, 1), run("p", 1, 0, 6.0, 1), run("baseline", 0, 0, 4.0, 1),
            run("baseline", 0, 1, 5.0, 0), run("p", 0, 1, 5.0, 0),
            run("baseline", 1, 1, 12.0, 1), run("p", 1, 1, 9.0, 1), run("baseline", 0, 1, 6.0, 1)]
    rows = [{"context": 64, "mode": "p"}, {"context": 128, "mode": "p"}]
    report.context_spreads(rows, runs, [64, 128], "baseline", 0)
    r = rows[1]
    assert (r["ratio_spread"]["lo"], r["ratio_spread"]["hi"]) == pytest.approx((0.5, 0.75))
    assert (r["limit_ratio_spread"]["lo"], r["limit_ratio_spread"]["hi"]) == pytest.approx((1.5, 1.5))
    assert r["limit_ratio_spread"]["n"] == 2 and rows[0]["ratio_spread"]["value"] == pytest.approx(1.0)
