"""The A/B module without Gradio: interleaving, the table, divergence, the eviction view, settings."""
import re
from pathlib import Path

import numpy as np
import pytest

from triattn.web.ab import Pair, headline, plot_frames
from triattn.core.interleave import interleave
from triattn.core.quality import first_divergence
from triattn.core.tables import BASELINE, CHANGE, PRUNED, metrics_table, percent_change
from triattn.core.config import EvictionConfig, SamplingConfig
from triattn.core.engine import PruneEvent, StepRecord, generate
from triattn.web.evictview import (EVICTED_ALL, EVICTED_SOME, evicted_layer_counts, eviction_summary, eviction_view,
                               token_spans)
from triattn.core.inputs import parse_settings
from triattn.core.metrics import RunMetrics
from triattn.openvino.model import load_model
from triattn.core.text import load_tokenizer


def test_interleave_alternates_and_lets_the_longer_run_finish():
    out = list(interleave({"a": iter([1, 2, 3, 4]), "b": iter("xy")}))
    # rounds lead alternately: a b, b a, a (b has ended), a
    assert out == [("a", 1), ("b", "x"), ("b", "y"), ("a", 2), ("a", 3), ("a", 4)]


def test_interleave_never_runs_two_steps_at_once():
    log, active = [], []

    def stream(name, n):
        for i in range(n):
            active.append(name)
            assert len(active) == 1, "two runs stepping at once"
            log.append(name)
            active.pop()
            yield i
    list(interleave({"a": stream("a", 5), "b": stream("b", 5)}))
    assert log.count("a") == log.count("b") == 5


def _records(times_ms, kv=lambda i: 300 + i, prune_at=(), tokens=None):
    """Synthetic step records: record 0 the prefill (20 ms), then one decode step per time."""
    out = [StepRecord(0, 1, 0.020, kv(0), kv(0))]
    for i, t in enumerate(times_ms, start=1):
        prune = PruneEvent(4, 0.001, kv(i) + 4, kv(i), np.zeros((1, 4), int)) if i in prune_at else None
        out.append(StepRecord(i, (tokens or {}).get(i, 1), t / 1000, kv(i), kv(i), prune))
    return out


def _pair(b_recs, p_recs, bpt=1024):
    from triattn.core.metrics import pair_figures, summarize
    return summarize(b_recs, bpt, 0, 0), summarize(p_recs, bpt, 0, 0), pair_figures(b_recs, p_recs, (bpt, bpt))


def _noisy(n, ms, spread, seed):
    return list(np.random.default_rng(seed).uniform(ms - spread, ms + spread, n))


def _change_row(table):
    return dict(zip(table.columns, table.iloc[2]))


def test_change_row_states_a_speed_change_with_its_interval():
    """Pruned steps 20% shorter than the baseline's beside them: the TPOT change is their plain ratio
    over the same steps, with an interval that excludes 0; throughput is its inverse."""
    bt, pt = _noisy(99, 10.0, 0.5, 1), _noisy(99, 8.0, 0.4, 2)
    b, p, f = _pair(_records(bt), _records(pt, kv=lambda i: 64, prune_at={10, 20}))
    row = _change_row(metrics_table(b, p, f, {"Outputs diverge at": "token #8"}))
    expected = sum(pt) / sum(bt) - 1
    m = re.fullmatch(r"([+-]\d+\.\d)% \(([+-]\d+\.\d) to ([+-]\d+\.\d)\)", row["TPOT (ms)"])
    assert m, row["TPOT (ms)"]
    assert float(m.group(1)) == pytest.approx(expected * 100, abs=0.05)
    assert float(m.group(2)) <= float(m.group(1)) <= float(m.group(3)) < 0
    assert row["Throughput (tok/s)"].startswith(f"{(1 / (1 + expected) - 1) * 100:+.1f}%")
    assert row["TTFT (ms)"] == row["Latency (s)"] == "not compared"  # run order; whole runs
    assert row["Tokens"] == ""  # equal lengths
    assert row["KV tokens"] == percent_change(399, 64) and row["Prune events"] == ""
    assert row["Outputs diverge at"] == "token #8"
    pruned = dict(zip(f_cols := list(metrics_table(b, p, f).columns), metrics_table(b, p, f).iloc[1]))
    assert pruned["TPOT (ms)"] == f"{sum(pt) / len(pt):.2f}" and pruned["Prune events"] == "2"
    assert "Memory Δ (MB)" not in f_cols and f_cols.index("Token agreement") < f_cols.index("Tokens")


def test_change_row_and_headline_say_no_difference_within_the_noise():
    """Both runs' steps drawn from the same noisy distribution: no direction is stated anywhere."""
    bt, pt = _noisy(149, 10.0, 4.0, 3), _noisy(149, 10.0, 4.0, 4)
    b, p, f = _pair(_records(bt), _records(pt, kv=lambda i: 64, prune_at={10}))
    row = _change_row(metrics_table(b, p, f))
    assert row["TPOT (ms)"].startswith("no difference (±") and row["Throughput (tok/s)"].startswith("no difference")
    text = headline(b, p, f, None)
    assert "no measurable difference in time per token (within ±" in text
    assert "lower" not in text and "higher" not in text


def test_unequal_lengths_are_compared_over_the_shorter_run_and_said_so():
    """The pruned run stopped at 19 tokens, the baseline at 150: speed and KV over the first 19 of each."""
    bt, pt = _noisy(149, 10.0, 0.5, 5), _noisy(18, 12.0, 0.5, 6)
    b_recs, p_recs = _records(bt), _records(pt, kv=lambda i: 40 + i, prune_at={5})
    b, p, f = _pair(b_recs, p_recs)
    t = metrics_table(b, p, f)
    base, row = dict(zip(t.columns, t.iloc[0])), _change_row(t)
    assert base["Tokens"] == "150" and base["TPOT (ms)"] == f"{sum(bt[:18]) / 18:.2f}"
    assert base["KV tokens"] == str(300 + 18)  # held over the first 19 tokens, not all 150
    assert row["Tokens"] == "unequal: the next columns over the first 19"
    assert row["Latency (s)"] == "not compared"
    text = headline(b, p, f, None)
    assert "The runs made 150 (baseline) and 19 (pruned) tokens: speed and cache are compared over the first 19" \
        in text
    assert f"; {300 + 18} vs {40 + 18} tokens" in text


def test_too_few_tokens_to_compare_speed():
    b, p, f = _pair(_records([10.0] * 4), _records([5.0] * 4, kv=lambda i: 8, prune_at={2}))
    assert _change_row(metrics_table(b, p, f))["TPOT (ms)"] == "too few tokens"
    assert "too few decoded tokens to compare time per token" in headline(b, p, f, None)


def test_no_change_cell_states_a_direction_of_a_noisy_figure_without_its_interval():
    """Over many noisy pairs: every Change cell with a sign either shows its interval or is a KV
    figure (the same in every repeat)."""
    for seed in range(20):
        bt, pt = _noisy(60, 10.0, 5.0, seed), _noisy(60 - seed, 10.0, 5.0, seed + 100)
        b, p, f = _pair(_records(bt), _records(pt, kv=lambda i: 64, prune_at={3}))
        row = _change_row(metrics_table(b, p, f))
        for col, cell in row.items():
            if re.match(r"[+-]\d", cell):
                assert " to " in cell or col.startswith("KV"), (col, cell)
            if f.equal is False and "%" in cell:
                assert row["Tokens"].startswith("unequal"), row


def test_percent_change_edge_cases():
    assert percent_change(0, 0) == "0.0%"
    assert percent_change(0, 5) == "—"
    assert percent_change(-2.0, -1.0) == "+50.0%"  # relative to the baseline's size


def test_plot_frames_name_both_runs_before_any_data():
    lat, kv = plot_frames({})
    assert set(lat["run"]) == set(kv["run"]) == {BASELINE, PRUNED}
    assert lat["ms"].isna().all() and kv["KV tokens"].isna().all()


def test_first_divergence():
    assert first_divergence([1, 2, 3], [1, 2, 3]) is None
    d = first_divergence([1, 2, 3, 4], [1, 2, 9, 4])
    assert (d.index, d.baseline, d.pruned) == (2, 3, 9)
    # a run still going is not a divergence yet; an ended one is
    assert first_divergence([1, 2], [1, 2, 3], a_done=False) is None
    d = first_divergence([1, 2], [1, 2, 3], a_done=True, b_done=False)
    assert (d.index, d.baseline, d.pruned) == (2, None, 3)


def _metrics(**kw):
    base = dict(ttft_s=0.1, tpot_ms=10.0, tpot_mean_ms=11.0, throughput_tok_s=50.0, latency_s=2.0, new_tokens=100,
                prune_events=0, prune_time_s=0.0, kv_tokens_max=300, kv_tokens_final=300, kv_bytes_max=300 * 1024,
                rss_delta_mb=8.0)
    return RunMetrics(**{**base, **kw})


def _figures(kv=(300, 75), bpt=(1, 1), change=-0.5, tokens=100, equal=True):
    from triattn.core.metrics import PairFigures
    from triattn.core.stats import Interval
    return PairFigures(tokens, equal, (10.0, 10.0 * (1 + change)), kv, tuple(k * b for k, b in zip(kv, bpt)),
                       Interval(change, change - 0.05, change + 0.05, tokens - 1, 0.95))


def test_headline_says_what_changed():
    b, p = _metrics(), _metrics(prune_events=3)
    text = headline(b, p, _figures(), first_divergence([1, 2, 3], [1, 2, 4]))
    assert "time per token 50% lower (95% interval -55% to -45%" in text
    assert "75% smaller" in text and "the first 2 tokens" in text
    assert "identical for all 100" in headline(b, p, _figures(), None)
    assert "outputs differ from the first token" in headline(b, p, _figures(), first_divergence([1, 2], [3, 2]))
    assert "identical for the first token, then" in headline(b, p, _figures(), first_divergence([1, 2], [1, 3]))


def test_headline_says_why_the_cache_held_more_than_the_budget():
    from triattn.core.runner import LoopRunner
    from triattn.openvino.runners import GenAIRunner
    loop = LoopRunner(None, EvictionConfig(policy="knorm", budget=64, prune_interval=16))
    text = headline(_metrics(), _metrics(prune_events=3), _figures(kv=(1800, 79)), None, held=loop.held(79, {}))
    assert "; 1800 vs 79 tokens: the budget of 64, plus up to 15 new tokens between cuts, one every 16)" in text
    assert loop.held(64, {}) == ""
    used = {"block_size": 32, "max_cache_size": 96, "requested": {"budget": 64}}
    text = headline(_metrics(), _metrics(prune_events=None), _figures(kv=(190, 128)), None,
                    held=GenAIRunner(None, None).held(128, used))
    assert "; 190 vs 128 tokens: whole blocks of 32: the budget of 64 as a cache of 96, plus the block being filled)" \
        in text


def test_headline_on_a_long_prompt_is_about_the_cache_while_decoding():
    """A 1,791-token prompt cut to 256: the pruned cache is ~87% smaller while decoding, not 10%."""
    b = _metrics(kv_tokens_max=1990, kv_bytes_max=1990, kv_tokens_max_decode=1990, kv_bytes_max_decode=1990)
    p = _metrics(kv_tokens_max=1791, kv_bytes_max=1791, kv_tokens_max_decode=256, kv_bytes_max_decode=256,
                 prune_events=5, prompt_cut=(1791, 256))
    f = _figures(kv=(1990, 256))
    text = headline(b, p, f, None)
    assert "87% smaller while decoding (1.9 KiB vs 0.2 KiB; 1990 vs 256 tokens)" in text
    assert "10%" not in text and "The prompt's 1791 tokens were cut to 256" in text
    p.prompt_cut_in_pieces = True
    assert "read the prompt's 1791 tokens 512 at a time, cutting its cache to the budget before each piece " \
           "(together one prune event, within its time to first token), and decoded from 256" \
        in headline(b, p, f, None, chunk=512)


def test_headline_says_when_nothing_was_pruned():
    text = headline(_metrics(), _metrics(), _figures(kv=(300, 300)), None)
    assert text.startswith("Nothing was pruned") and "lower" not in text and "noise" in text


def test_headline_explains_a_larger_genai_cache():
    b = _metrics()
    p = _metrics(prune_events=None)
    used = {"block_size": 32, "max_cache_size": 96, "requested": {"budget": 64}}
    from triattn.openvino.runners import GenAIRunner
    text = headline(b, p, _figures(kv=(100, 119)), None, GenAIRunner(None, None).why_larger(used))
    assert "19% larger" in text and "because OpenVINO GenAI counts its cache in whole blocks of 32 tokens, partly " \
        "filled ones included" in text


class CharTokenizer:
    """Token id n is the character chr(n); id 0 is a special token shown as <s>."""
    def decode(self, ids, skip_special_tokens=False, **kw):
        return "".join("" if (i == 0 and skip_special_tokens) else ("<s>" if i == 0 else chr(i)) for i in ids)


def _record(index, evicted_positions):
    ep = np.array(evicted_positions)
    return StepRecord(index, 0, 0.0, 0, 0, PruneEvent(ep.shape[-1], 0.0, 0, 0, ep))


def test_eviction_view_marks_all_some_and_kept():
    prompt = [0] + [ord(c) for c in "abcd"]   # positions 0..4
    out = [ord(c) for c in "xyz"]             # positions 5..7
    records = [StepRecord(0, out[0], 0.0, 5, 5),
               _record(1, [[2, 3], [2, 4]]),  # layer 0 evicts b, c; layer 1 evicts b, d
               _record(2, [[5], [5]])]        # both layers evict x
    view = eviction_view(CharTokenizer(), prompt, out, records, n_layers=2)
    assert view == [("<s>", None), ("a", None), ("b", EVICTED_ALL), ("c", EVICTED_SOME), ("d", EVICTED_SOME),
                    ("x", EVICTED_ALL), ("y", None), ("z", None)]
    assert evicted_layer_counts(records, 8, 2).tolist() == [0, 0, 2, 1, 1, 2, 0, 0]
    assert "2 were evicted from every layer, 2 from some" in eviction_summary(records, 8, 2)


def test_eviction_view_per_kv_head_counts_a_layer_by_its_heads():
    """[layers=2, kv_heads=2, n]: b gone from every head of every layer; c from one head of each
    layer (half of each); x from both heads of layer 0 only."""
    prompt = [0] + [ord(c) for c in "abcd"]
    out = [ord(c) for c in "xyz"]
    records = [StepRecord(0, out[0], 0.0, 5, 5),
               _record(1, [[[2, 3], [2, 4]], [[2, 3], [2, 4]]]),
               _record(2, [[[5], [5]], [[6], [7]]])]
    assert evicted_layer_counts(records, 8, 2).tolist() == [0, 0, 2, 1, 1, 1, 0.5, 0.5]
    view = dict(eviction_view(CharTokenizer(), prompt, out, records, n_layers=2))
    assert (view["b"], view["c"], view["x"], view["a"]) == (EVICTED_ALL, EVICTED_SOME, EVICTED_SOME, None)


def test_token_spans_keep_multibyte_characters_whole(gptoss_dir):
    tok = load_tokenizer(gptoss_dir)
    ids = tok.encode("déjà vu ✓", add_special_tokens=False)
    spans = token_spans(tok, ids)
    assert "".join(t for t, _ in spans) == "déjà vu ✓"
    assert sorted(p for _, ps in spans for p in ps) == list(range(len(ids)))
    assert all("\ufffd" not in t for t, _ in spans)


def test_parse_settings_accepts_page_values_and_rejects_bad_ones():
    ev, sa, n = parse_settings("knorm", "mask", 64.0, 8, 2, 4, 50, 0.7, 3)
    assert ev == EvictionConfig(policy="knorm", evict="mask", budget=64, recent_window=8, sink_tokens=2,
                                prune_interval=4)
    assert sa == SamplingConfig(temperature=0.7, seed=3) and n == 50
    for args, message in [((None, 8, 2, 4, 50, 0, 0), "budget is empty"),
                          ((12.5, 8, 2, 4, 50, 0, 0), "whole number"),
                          ((8, 8, 2, 4, 50, 0, 0), "must exceed sink tokens"),
                          ((64, -1, 2, 4, 50, 0, 0), "at least 0"),
                          ((64, 8, 2, 0, 50, 0, 0), "prune interval must be at least 1"),
                          ((64, 8, 2, 4, 0, 0, 0), "at least 1"),
                          ((64, 8, 2, 4, 10**6, 0, 0), "capped"),
                          ((64, 8, 2, 4, 50, 99, 0), "temperature"),
                          ((64, 8, 2, 4, 50, 0, float("nan")), "whole number")]:
        with pytest.raises(ValueError, match=message):
            parse_settings("knorm", "hard", *args)
    with pytest.raises(ValueError, match="unknown policy"):
        parse_settings("lfu", "hard", 64, 8, 2, 4, 50, 0, 0)


def test_pair_gives_each_run_what_it_gets_alone(gptoss_dir, prompt):
    """Interleaving changes nothing in either run: same tokens as two separate runs."""
    model, tok = load_model(gptoss_dir), load_tokenizer(gptoss_dir)
    cfg = EvictionConfig(policy="knorm", budget=20, recent_window=4, sink_tokens=2, prune_interval=3)
    pair = Pair(model, tok, prompt, cfg, SamplingConfig(), 40)
    order = list(pair.steps())
    assert order[:4] == [BASELINE, PRUNED, PRUNED, BASELINE]
    s = model.new_session()
    alone = {BASELINE: [r.token for r in generate(s, prompt, EvictionConfig(policy="none"), max_new_tokens=40)],
             PRUNED: [r.token for r in generate(s, prompt, cfg, max_new_tokens=40)]}
    for name, side in pair.sides.items():
        assert side.done and side.token_ids == alone[name]
        assert len(side.records) == order.count(name) == len(side.token_ids)
        assert side.text == tok.decode(side.token_ids, skip_special_tokens=True)
    assert any(r.prune for r in pair.pruned.records) and not any(r.prune for r in pair.baseline.records)
    table = pair.table()
    assert table["Run"].tolist() == [BASELINE, PRUNED, CHANGE]
    bound = max(len(prompt), cfg.budget + cfg.prune_interval - 1)  # the prompt is prefilled whole
    assert int(table.loc[1, "KV tokens"]) <= bound < int(table.loc[0, "KV tokens"])
    lat, kv = plot_frames(pair.sides)
    assert set(lat.dropna()["run"]) == set(kv.dropna()["run"]) == {BASELINE, PRUNED}
    assert len(lat.dropna()) == len(order) - 2 and len(kv.dropna()) == len(order)  # prefill: no latency point
    assert kv[kv.run == PRUNED]["KV tokens"].max() <= bound < kv[kv.run == BASELINE]["KV tokens"].max()


def test_pair_closed_early_stops_both_runs(gptoss_dir, prompt):
    pair = Pair(load_model(gptoss_dir), load_tokenizer(gptoss_dir), prompt,
                EvictionConfig(budget=20, recent_window=4, sink_tokens=2), SamplingConfig(), 500)
    steps = pair.steps()
    for _ in range(6):
        next(steps)
    steps.close()
    assert len(pair.baseline.records) == len(pair.pruned.records) == 3
    assert not pair.baseline.done and not pair.pruned.done


def test_pair_passes_on_the_engines_warnings(gptoss_dir, prompt):
    """gpt-oss's sliding window is 16 in the tiny model: a budget of 12 cannot keep it exact."""
    pair = Pair(load_model(gptoss_dir), load_tokenizer(gptoss_dir), prompt,
                EvictionConfig(budget=12, recent_window=4, sink_tokens=2), SamplingConfig(), 4)
    list(pair.steps())
    assert len(pair.notices) == 1 and "below the sliding window" in pair.notices[0]


def test_pair_can_let_the_pruned_run_lead(gptoss_dir, prompt):
    pair = Pair(load_model(gptoss_dir), load_tokenizer(gptoss_dir), prompt,
                EvictionConfig(budget=20, recent_window=4, sink_tokens=2), SamplingConfig(), 3, pruned_first=True)
    assert list(pair.steps()) == [PRUNED, BASELINE, BASELINE, PRUNED, PRUNED, BASELINE]


@pytest.mark.parametrize("budget, identical", [(200, True), (8, False)])
def test_pair_quality_columns(gptoss_dir, prompt, budget, identical):
    """After both runs, the table carries the quality cost: none with a budget above the sequence,
    some with a small one."""
    cfg = EvictionConfig(policy="knorm-seed", budget=budget, recent_window=2, sink_tokens=0, prune_interval=1)
    pair = Pair(load_model(gptoss_dir), load_tokenizer(gptoss_dir), prompt, cfg, SamplingConfig(), 30)
    list(pair.steps())
    assert pair.table().loc[2, "Token agreement"] == ""  # blank until measured
    q = pair.measure_quality()
    row = pair.table().loc[2]
    n = max(len(pair.baseline.token_ids), len(pair.pruned.token_ids))  # the count beside the share
    assert row["Token agreement"] == f"{q.agreement:.1%} ({round(q.agreement * n)} of {n})"
    assert row["ΔNLL (forced)"] == f"{q.delta_nll:+.3f}"
    assert row["Top-1 agreement (forced)"].endswith(f" of {len(pair.baseline.token_ids)})")
    if identical:
        assert (q.agreement, q.delta_nll, q.forced_top1_agreement) == (1.0, 0.0, 1.0)
    else:
        assert q.delta_nll != 0.0 and q.forced_top1_agreement < 1.0


def test_pair_runs_ov_genai_in_the_pruned_pane(llama_dir, prompt):
    """A choice another runtime runs (ov-genai) goes through its own pipeline; with a cache above the sequence it matches
    the baseline's tokens (f32 on both sides), and the table says what it cannot observe."""
    model = load_model(llama_dir, precision="f32")
    cfg = EvictionConfig(policy="ov-genai", budget=256, recent_window=32, sink_tokens=4)
    pair = Pair(model, load_tokenizer(llama_dir), prompt, cfg, SamplingConfig(), 20)
    list(pair.steps())
    assert pair.pruned.done and pair.pruned.token_ids == pair.baseline.token_ids
    assert pair.pruned.used["max_cache_size"] % 32 == 0
    q = pair.measure_quality()
    assert q.agreement == 1.0 and q.delta_nll is None
    row = pair.table().loc[2]
    assert row["Token agreement"] == "100.0% (20 of 20)" and row["ΔNLL (forced)"] == ""


def test_page_and_cli_tables_share_one_change_rule():
    """`infer --compare` prints the page's rows: same cells, same Change row."""
    from triattn.core.tables import RUN_HEADERS, markdown
    b, p, f = _pair(_records(_noisy(40, 10, 1, 7)), _records(_noisy(30, 9, 1, 8), kv=lambda i: 16, prune_at={4}))
    page = metrics_table(b, p, f)
    md = markdown(b, p, f, PRUNED, peak_mb=512.4).splitlines()
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in md[2:5]]
    assert cells == page[["Run", *RUN_HEADERS]].values.tolist()
    assert "Peak RSS: 512 MB (the process, both runs together" in md[-1]


def test_pair_peak_rss_is_the_comparisons_own(gptoss_dir, prompt):
    """own_peak: the peak over this comparison, not the process's past high-water mark (a large array
    held and freed before it does not count); without it, no figure that pretends to be the pair's."""
    from triattn.core.metrics import peak_rss_mb, rss_mb
    model = load_model(gptoss_dir)
    big = np.ones(400 * 2**20 // 8)  # 400 MB held, then freed: the process's high-water mark rises
    big[::4096] = 2.0
    del big
    before = peak_rss_mb()
    if before is None or not Path("/proc/self/clear_refs").exists():
        pytest.skip("this OS keeps no resettable high-water mark")
    cfg = EvictionConfig(policy="knorm", budget=16, recent_window=4, sink_tokens=2)
    pair = Pair(model, load_tokenizer(gptoss_dir), prompt, cfg, SamplingConfig(), 20, own_peak=True)
    list(pair.steps())
    assert rss_mb() - 50 <= pair.peak_mb < before - 300
    other = Pair(model, load_tokenizer(gptoss_dir), prompt, cfg, SamplingConfig(), 5)
    list(other.steps())
    assert other.peak_mb is None


def test_sizes_are_said_in_the_unit_read_at_a_glance():
    from triattn.core.tables import size_text
    assert [size_text(b) for b in (512, 1024, 7200 * 1024, 56160 * 1024, 3 * 2**30)] == [
        "0.5 KiB", "1.0 KiB", "7.0 MiB", "54.8 MiB", "3.0 GiB"]
