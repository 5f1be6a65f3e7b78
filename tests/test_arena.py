"""The arena without Gradio: N runs in turn, the leaderboard, expected answers, bad input."""
import threading

import numpy as np
import pytest

from triattn.core.answers import contains_answer, expected_for
from triattn.core.config import EvictionConfig, SamplingConfig
from triattn.core.engine import PruneEvent, StepRecord, generate
from triattn.core.interleave import interleave, rotate
from triattn.core.metrics import pair_figures
from triattn.core.tables import ANSWER, LEADERBOARD, Standing, leaderboard, leaderboard_rows
from triattn.core.text import load_tokenizer
from triattn.errors import Cancelled
from triattn.openvino.model import load_model
from triattn.web.arena import MAX_PRUNED, Arena, check_arena


def test_rotate_moves_the_lead_each_round_and_lets_longer_runs_finish():
    out = list(rotate({"a": iter([1, 2, 3]), "b": iter("xy"), "c": iter([9])}))
    # rounds: a b c, then b c a (c has ended), then c a b -> only a is left
    assert out == [("a", 1), ("b", "x"), ("c", 9), ("b", "y"), ("a", 2), ("a", 3)]
    leads = [out[0][0], out[3][0]]
    assert leads == ["a", "b"]


def test_rotate_of_two_is_the_pairs_order():
    two = {"a": iter(range(5)), "b": iter(range(5))}
    again = {"a": iter(range(5)), "b": iter(range(5))}
    assert list(rotate(two)) == list(interleave(again))


def test_rotate_gives_every_run_every_place_equally():
    names = list("abcde")
    out = [n for n, _ in rotate({n: iter(range(10)) for n in names})]
    rounds = [out[i:i + 5] for i in range(0, 50, 5)]
    for n in names:
        places = [r.index(n) for r in rounds]
        assert sorted(places) == sorted(list(range(5)) * 2)


def _records(times_ms, kv=lambda i: 300 + i, prune_at=()):
    out = [StepRecord(0, 1, 0.020, kv(0), kv(0))]
    for i, t in enumerate(times_ms, start=1):
        prune = PruneEvent(4, 0.002, kv(i) + 4, kv(i), np.zeros((1, 4), int)) if i in prune_at else None
        out.append(StepRecord(i, 1, t / 1000, kv(i), kv(i), prune))
    return out


def _noisy(n, ms, spread, seed):
    return list(np.random.default_rng(seed).uniform(ms - spread, ms + spread, n))


def _standing(name, nll, agree, base, run, answer=None):
    return Standing(name, agree, nll, "token #3", pair_figures(base, run, (1024, 1024)), 0.004, answer)


def test_leaderboard_ranks_by_delta_nll_then_agreement_with_paired_tpot_over_the_common_length():
    base = _records(_noisy(60, 10.0, 1.0, 0))
    fast = _records([t * 0.7 for t in _noisy(40, 10.0, 1.0, 0)], kv=lambda i: 64)   # 40 steps: shorter
    same = _records(_noisy(60, 10.0, 1.0, 1), kv=lambda i: 64)
    rows = leaderboard_rows([_standing("b", 0.20, 0.5, base, fast, False), _standing("a", None, 0.9, base, same),
                             _standing("c", 0.05, 0.4, base, same, True), _standing("d", 0.05, 0.8, base, same)])
    assert [r[1] for r in rows] == ["d", "c", "b", "a"]   # ΔNLL up, ties by agreement, unmeasured last
    assert [r[0] for r in rows] == ["1", "2", "3", "4"]
    cells = {r[1]: dict(zip(LEADERBOARD, r)) for r in rows}
    # fast: 30% less time per step over the 40 steps both made; the plain reference: sum ratio
    ref = sum(t / 1000 for t in [r.time_s * 1000 for r in fast[1:41]]) / sum(r.time_s for r in base[1:41]) - 1
    assert cells["b"]["TPOT change vs baseline"].startswith(f"{ref * 100:+.1f}%")
    assert cells["d"]["TPOT change vs baseline"].startswith("no difference")
    assert cells["b"]["KV while decoding"] == f"64 tokens ({(64 - 340) / 340 * 100:+.1f}%); 64.0 KiB"  # 1 KiB a token
    assert cells["b"]["ΔNLL (forced)"] == "+0.200" and cells["a"]["ΔNLL (forced)"] == "—"
    assert cells["c"][ANSWER] == "kept" and cells["b"][ANSWER] == "lost" and cells["a"][ANSWER] == ""
    assert cells["c"]["Prune time (ms)"] == "4.0"
    assert cells["d"]["Token agreement"] == "80.0%"  # no count given: none said


def test_leaderboard_gives_agreement_with_its_count_and_a_stopped_run_did_not_reach_the_answer():
    base = _records(_noisy(30, 10, 1, 0))
    s = Standing("s", 2 / 7, None, "token #3", pair_figures(base, base, (1024, 1024)), None, False, 7, True)
    row = dict(zip(LEADERBOARD, leaderboard_rows([s])[0]))
    assert row["Token agreement"] == "28.6% (2 of 7)"
    assert row[ANSWER] == "not reached (stopped)"
    assert dict(zip(LEADERBOARD, leaderboard_rows([_standing("t", None, 0.5, base, base, False)])[0]))[ANSWER] == "lost"
    assert list(leaderboard([_standing("a", 0.1, 1, base, base)]).columns) == LEADERBOARD


def test_leaderboard_says_too_few_tokens_for_a_short_run():
    base, short = _records(_noisy(30, 10, 1, 0)), _records(_noisy(3, 10, 1, 1))
    row = dict(zip(LEADERBOARD, leaderboard_rows([_standing("s", 0.1, 1.0, base, short)])[0]))
    assert row["TPOT change vs baseline"] == "too few tokens"


def test_expected_answers_are_found_beside_the_examples_and_checked_case_insensitively():
    from triattn.web.choices import example_prompts
    prompts = example_prompts()
    lighthouse = next(p for p in prompts if "lighthouse" in p)
    orchard = next(p for p in prompts if "orchard" in p)
    assert expected_for(lighthouse) == ("Pepper",)
    assert expected_for(orchard) == ("Elena Varga",)
    needles = [p for p in prompts if "special magic numbers" in p]
    assert len(needles) >= 3
    for p in needles:
        (number,) = expected_for(p)
        assert f"is: {number}." in p  # the needle is in the haystack
    assert expected_for("What is two and two?") == ()
    assert contains_answer("The dog was called PEPPER.", ("Pepper",)) is True
    assert contains_answer("The dog had no name.", ("Pepper",)) is False
    assert contains_answer("Elena was there", ("Elena Varga",)) is False
    assert contains_answer("anything", ()) is None


def _cfg(policy, budget=20, evict="hard"):
    return EvictionConfig(policy=policy, evict=evict, budget=budget, recent_window=4, sink_tokens=2)


def test_bad_arenas_get_one_clear_line():
    with pytest.raises(ValueError, match="at least one pruning policy"):
        check_arena([])
    with pytest.raises(ValueError, match="baseline"):
        check_arena([_cfg("knorm"), EvictionConfig(policy="none")])
    with pytest.raises(ValueError, match=f"at most {MAX_PRUNED}"):
        check_arena([_cfg("knorm", b) for b in (20, 24, 28, 32, 36)])
    with pytest.raises(ValueError, match="twice"):
        check_arena([_cfg("knorm"), _cfg("knorm")])


def test_arena_runs_each_run_as_it_runs_alone(gptoss_dir, prompt):
    model, tok = load_model(gptoss_dir), load_tokenizer(gptoss_dir)
    cfgs = [_cfg("knorm"), _cfg("streaming"), _cfg("random", evict="mask"), _cfg("knorm", budget=12)]
    arena = Arena(model, tok, prompt, cfgs, SamplingConfig(), 30, expected=("def",))
    order = list(arena.steps())
    names = arena.names
    assert names[0] == "baseline" and len(names) == 5
    assert order[:5] == names and order[5:10] == names[1:] + names[:1]
    s = model.new_session()
    for name, cfg in zip(names, [EvictionConfig(policy="none")] + cfgs):
        side = arena.sides[name]
        alone = [r.token for r in generate(s, prompt, cfg, max_new_tokens=30)]
        assert side.done and side.token_ids == alone
    arena.measure_quality()
    rows = leaderboard_rows(arena.standings())
    assert sorted(r[1] for r in rows) == sorted(names[1:])
    nll = [arena.quality[r[1]].delta_nll for r in rows]
    assert nll == sorted(nll)
    for r in rows:
        assert dict(zip(LEADERBOARD, r))[ANSWER] == ("kept" if "def" in arena.sides[r[1]].text.lower() else "lost")
    lat, kv = arena.plots()
    assert list(dict.fromkeys(kv.dropna()["run"])) == names
    assert "Expected answer" in arena.headline()


def test_one_cancel_stops_every_run(gptoss_dir, prompt):
    arena = Arena(load_model(gptoss_dir), load_tokenizer(gptoss_dir), prompt, [_cfg("knorm"), _cfg("streaming")],
                  SamplingConfig(), 500)
    steps = arena.steps()
    for _ in range(6):
        next(steps)
    arena.cancel()
    with pytest.raises(Cancelled):
        for _ in steps:
            pass
    assert not any(s.done for s in arena.sides.values())
    assert all(len(s.records) < 500 for s in arena.sides.values())
    assert all(arena.stopped(n) for n in arena.names)
    assert "ΔNLL not measured: the runs were stopped" in arena.headline()


def test_cli_arena_prints_the_leaderboard_and_writes_both_reports(gptoss_dir, cli, tmp_path):
    import json
    base = ["infer", "--model-dir", str(gptoss_dir), "--prompt", "def f(x):", "--max-new-tokens", "16",
            "--budget", "20", "--recent-window", "4", "--sink-tokens", "2", "--compare"]
    r = cli(*base, "--policy", "knorm", "streaming", "random", "--report", tmp_path / "r.json")
    assert r.returncode == 0, r.stderr
    for name in ("=== baseline ===", "=== knorm/hard@20 ===", "=== streaming/hard@20 ===", "| Rank"):
        assert name in r.stdout
    rec = json.loads((tmp_path / "r.json").read_text())
    assert [run["name"] for run in rec["runs"]] == ["baseline", "knorm/hard@20", "streaming/hard@20", "random/hard@20"]
    assert len(rec["leaderboard"]["rows"]) == 3 and rec["versions"]["openvino"]
    nll = [float(row[LEADERBOARD.index("ΔNLL (forced)")]) for row in rec["leaderboard"]["rows"]]
    assert nll == sorted(nll)
    assert set(rec["kv_tokens"]) == {run["name"] for run in rec["runs"]}
    r = cli(*base, "--policy", "knorm", "streaming", "--report", tmp_path / "r.html")
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "r.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "<script" not in page and "http" not in page.split("<body>")[0]


@pytest.mark.parametrize("policies, message", [(["knorm", "none"], "baseline"),
                                                (["knorm", "streaming", "random", "triattention", "knorm-seed"],
                                                 "at most 4")])
def test_cli_bad_arena_gets_one_line(gptoss_dir, cli, policies, message):
    from tests.conftest import one_line
    r = cli("infer", "--model-dir", str(gptoss_dir), "--prompt", "x", "--compare", "--budget", "20",
            "--recent-window", "4", "--sink-tokens", "2", "--policy", *policies)
    assert r.returncode == 2 and message in one_line(r.stderr)


def test_cli_report_needs_html_or_json(gptoss_dir, cli, tmp_path):
    from tests.conftest import one_line
    r = cli("infer", "--model-dir", str(gptoss_dir), "--prompt", "x", "--compare", "--policy", "knorm", "--budget",
            "20", "--recent-window", "4", "--sink-tokens", "2", "--report", tmp_path / "r.txt")
    assert r.returncode == 2 and ".html or .json" in one_line(r.stderr)


def test_page_arena_inputs_become_configs_or_one_line():
    from triattn.web.arenaui import arena_evictions, run_choices
    values = [v for _, v in run_choices()]
    assert "none" in values and "ov-genai / blocks" in values and "triattention-head / mask" not in values
    got = arena_evictions(["knorm / hard", "streaming / mask"], "64, 128", 32, 16, 4, 8)
    assert [(e.policy, e.evict, e.budget) for e in got] == [("knorm", "hard", 64), ("streaming", "mask", 64),
                                                            ("knorm", "hard", 128), ("streaming", "mask", 128)]
    assert [e.budget for e in arena_evictions(["knorm / hard"], "", 96, 16, 4, 8)] == [96]
    for runs, budgets, message in (([], "", "at least one pruning policy"), (["none"], "", "baseline"),
                                   (["knorm / hard", "none"], "", "baseline"),
                                   (["knorm / hard", "random / hard", "streaming / hard"], "64 128", "at most 4"),
                                   (["knorm / hard"], "64, lots", "whole numbers")):
        with pytest.raises(ValueError, match=message):
            arena_evictions(runs, budgets, 64, 16, 4, 8)


def test_bench_arena_prints_the_median_ratio_of_alternating_repeats(gptoss_dir, cli, tmp_path):
    import json
    import statistics
    out = tmp_path / "arena.json"
    r = cli("bench", "--arena", "--model-dir", gptoss_dir, "--policy", "knorm", "--budget", "20", "--recent-window",
            "4", "--sink-tokens", "2", "--max-new-tokens", "12", "--runs", "5", "--output", out, timeout=600)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert len(res["repeats"]) == 5 and res["run"] == "knorm/hard@20"
    ratios = [x["arena"] / x["pair"] for x in res["repeats"]]
    assert res["ratio"]["value"] == pytest.approx(statistics.median(ratios))
    assert res["ratio"]["lo"] == pytest.approx(min(ratios)) and res["ratio"]["hi"] == pytest.approx(max(ratios))
    assert res["met"] == (0.95 <= min(ratios) and max(ratios) <= 1.05)
    assert "in an arena of 5 runs / in an A/B pair" in r.stdout and "target: within 5%" in r.stdout


def _fake_setting(kind, clock, trace, slow_after_switch=40.0):
    """A stand-in for Arena or Pair whose steps take 10 ms (the arena's 11 ms: `kind` sets it), and
    40 ms more for a run's first step after the other setting has stepped (what a turn's first step
    may pay). Every step is appended to `trace` as (kind, run)."""
    from types import SimpleNamespace

    from triattn.core.tables import BASELINE, PRUNED

    class Fake:
        def __init__(self, model, tok, ids, cfgs, sampling, max_new, **kw):
            runs = [BASELINE, "knorm/hard@64", "a", "b", "c"] if kind == "arena" else [BASELINE, PRUNED]
            self.sides = {r: SimpleNamespace(records=[]) for r in runs}
            self.baseline, self.pruned = self.sides[BASELINE], self.sides[runs[1]]
            self.max_new = max_new

        def steps(self):
            last = {}
            for _ in range(self.max_new):
                for run, side in self.sides.items():
                    switched = last.get(run) is not None and clock[0] - last[run] > len(self.sides)
                    ms = (11.0 if kind == "arena" else 10.0) + (slow_after_switch if switched else 0.0)
                    side.records.append(SimpleNamespace(index=len(side.records), time_s=ms / 1000))
                    clock[0] += 1
                    last[run] = clock[0]
                    trace.append((kind, run))
                    yield run
    return Fake


def test_bench_arena_advances_both_settings_in_turns_and_leaves_out_each_turns_first_step(monkeypatch):
    """Arena and pair alive at once, in turns of `turn` steps of the measured run:
        arena: 4 rounds of 5 runs | pair: 4 rounds of 2 | arena: 4 rounds | pair ...
    A run's first step of each turn (slow here: 50 ms) is not timed, so the figures are the steps'
    own: 11 ms in the arena, 10 ms in the pair."""
    from triattn.bench import arena as bench_arena
    clock, trace = [0], []
    monkeypatch.setattr(bench_arena, "Arena", _fake_setting("arena", clock, trace))
    monkeypatch.setattr(bench_arena, "Pair", _fake_setting("pair", clock, trace))
    cfgs = bench_arena.configs("knorm", 64, 16, 4)
    got = bench_arena.one_repeat(None, None, [1], cfgs, None, 12, arena_first=True, turn=4)
    kinds = [k for k, _ in trace]
    blocks = [kinds[0]] + [b for a, b in zip(kinds, kinds[1:]) if a != b]
    assert blocks[:6] == ["arena", "pair"] * 3  # then the arena's last round ends (the runs after the measured one)
    assert blocks[6:] in ([], ["arena"])
    assert kinds.count("arena") == 60 and kinds.count("pair") == 24
    assert got == {"arena": pytest.approx(11.0), "arena_baseline": pytest.approx(11.0),
                   "pair": pytest.approx(10.0), "pair_baseline": pytest.approx(10.0)}
    trace.clear()
    bench_arena.one_repeat(None, None, [1], cfgs, None, 12, arena_first=False, turn=4)
    assert trace[0][0] == "pair"


def test_bench_arena_counts_a_turns_first_step_when_it_is_timed():
    """The check above can fail: timing every step lets the slow first steps of turns in."""
    from types import SimpleNamespace

    from triattn.bench import arena as bench_arena
    recs = [SimpleNamespace(index=i, time_s=t / 1000) for i, t in enumerate([99, 10, 50, 10, 50, 10])]
    assert bench_arena._tpot_ms(recs, {0, 2, 4}) == pytest.approx(10.0)
    assert bench_arena._tpot_ms(recs, set()) == pytest.approx(26.0)
