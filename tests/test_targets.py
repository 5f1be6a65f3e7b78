"""The performance targets: figures from synthetic bench summaries, and `bench --targets` end to end."""
import json

import pytest
from conftest import one_line

from triattn.bench import targets


def _run(r, prompt, mode, tpot, decode=1.0, prune=0.0):
    return {"run": r, "prompt": prompt, "mode": mode, "metrics": {"tpot_ms": tpot},
            "decode_time_s": decode, "decode_prune_time_s": prune}


def _results(card, long, share=0.01):
    """card: per round (baseline, pruned) TPOT of prompt 0; long: per round (baseline at 2048,
    pruned at 2048, baseline at 256). Every pruned run spends `share` of its decode pruning."""
    modes = lambda b, i: [{"name": "baseline", "budget": b, "prune_interval": i},
                          {"name": "knorm/hard", "budget": b, "prune_interval": i}]
    c_runs = [x for r, (b, p) in enumerate(card) for x in (_run(r, 0, "baseline", b),
                                                            _run(r, 0, "knorm/hard", p, 2.0, 2.0 * share))]
    l_runs = [x for r, (b, p, ref) in enumerate(long) for x in (
        _run(r, 0, "baseline", b), _run(r, 0, "knorm/hard", p, 1.0, share), _run(r, 1, "baseline", ref))]
    return {"modes": modes(128, 16), "runs": c_runs}, {"modes": modes(256, 32), "runs": l_runs}


MEMORY = {"before_mb": 1000.0, "baseline_mb": 2400.0, "pruned_mb": 1250.0}


def test_figures_are_medians_of_each_rounds_ratio_with_their_interval():
    """Five rounds; each figure is the median of the rounds' own ratios, min..max its 93.8% interval."""
    card = [(40.0, 40.0), (40.0, 40.2), (50.0, 50.0), (40.0, 40.4), (40.0, 40.3)]  # ratios 1, 1.005, 1, 1.01, 1.0075
    long = [(50.0, 41.0, 40.0), (50.0, 40.0, 40.0), (60.0, 48.0, 50.0), (50.0, 41.0, 41.0), (50.0, 40.5, 40.0)]
    rows = targets.figures(*_results(card, long), MEMORY)
    assert [r["figure"] for r in rows] == ["1", "2", "2", "3", "3", "4"]
    one = rows[0]["spread"]
    assert (one["value"], one["lo"], one["hi"], one["n"]) == pytest.approx((1.005, 1.0, 1.01, 5))
    assert one["level"] == pytest.approx(0.9375, abs=1e-3) and rows[0]["verdict"] == "met"  # 1.01 <= 1.02
    # long ratios 0.82, 0.80, 0.80, 0.82, 0.81: median 0.81, all within 0.85
    assert (rows[1]["value"], rows[1]["spread"]["hi"], rows[1]["verdict"]) == pytest.approx((0.81, 0.82, "met"))
    assert "floor 0.800 [0.800–0.833] n=5" in rows[1]["note"]  # 40/50, 40/50, 50/60, 41/50, 40/50
    # limit ratios 1.025, 1.0, 0.96, 1.0, 1.0125: median 1.0, top 1.025 within 1.05
    assert rows[2]["value"] == pytest.approx(1.0) and rows[2]["verdict"] == "met"
    assert rows[3]["value"] == pytest.approx(0.01) and rows[3]["verdict"] == "met"
    assert rows[-1]["verdict"] is None and rows[-1]["value"] == 1250.0 and rows[-1]["target"] == 2400.0
    assert not any("KV bytes" in r["what"] for r in rows)  # a count the engine bounds itself cannot fail


def test_a_target_is_met_only_when_the_whole_interval_lies_within_it():
    noisy = [(40.0, 38.0), (40.0, 44.0), (40.0, 40.0), (40.0, 42.0), (40.0, 39.0)]  # 0.95 .. 1.10, median 1.0
    rows = targets.figures(*_results(noisy, [(50.0, 50.0, 40.0)] * 5, share=0.05), MEMORY)
    assert rows[0]["value"] == pytest.approx(1.0) and rows[0]["verdict"] == "not shown at this noise"
    assert rows[0]["met"] is False
    assert rows[1]["verdict"] == "missed"  # 1.0 in every round, above 0.85
    assert rows[2]["verdict"] == rows[3]["verdict"] == "missed"  # 1.25; 5% of decode in every round
    few = targets.figures(*_results(noisy[:2], [(50.0, 40.0, 40.0)] * 2), MEMORY)
    assert few[1]["verdict"] == "not shown: 2 runs (at least 5)"
    table = targets.table(rows)
    assert "not shown at this noise" in table and table.count(" missed |") == 4 and "n=5, 94%" in table


def test_bench_targets_end_to_end(cli, llama_dir, tmp_path):
    out = tmp_path / "t.json"
    r = cli("bench", "--model-dir", llama_dir, "--targets", "--runs", "1", "--output", out, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Performance targets (knorm/hard" in r.stdout and "Card scenario" in r.stdout and "Long context" in r.stdout
    doc = json.loads(out.read_text())
    assert [f["figure"] for f in doc["figures"]] == ["1", "2", "2", "3", "3", "4"]
    assert [p["tokens"] for p in doc["long"]["prompts"]] == [2048, 256]
    assert len(doc["card"]["prompts"]) == 3
    # one round a run index and prompt: a spread of 3 card prompts, of the one long prompt
    assert [f["spread"]["n"] for f in doc["figures"][:5]] == [3, 1, 1, 3, 1]
    assert "Median [interval] runs, level" in r.stdout and "default precision" in r.stdout
    assert {m["name"] for m in doc["card"]["modes"]} == {"baseline", "knorm/hard"}
    assert {"before_mb", "baseline_mb", "pruned_mb"} <= set(doc["memory"])
    # step-interleaved: the runs overlap, so no run has a memory delta of its own
    assert all(x["metrics"]["rss_delta_mb"] is None for x in doc["card"]["runs"])


@pytest.mark.parametrize("extra", [["--budget", "64"], ["--context-lengths", "512"], ["--evict", "mask"],
                                   ["--policy", "knorm", "streaming"], ["--policy", "none"]])
def test_bench_targets_refuses_settings_it_fixes(cli, llama_dir, tmp_path, extra):
    r = cli("bench", "--model-dir", llama_dir, "--targets", *extra, "--output", tmp_path / "t.json")
    assert r.returncode == 2
    assert "--targets" in one_line(r.stderr)
