"""The performance targets: figures from synthetic bench summaries, and `bench --targets` end to end."""
import json

import pytest
from conftest import one_line

from triattn.bench import targets


def _stats(tpot, share=0.0, kv=0):
    return {"tpot_ms": tpot, "prune_share": share, "kv_decode_max": kv}


def _results(card_tpots, long_tpots, card_kv=140, long_kv=280):
    """card_tpots: (baseline, pruned); long_tpots: (baseline at 2048, pruned at 2048, baseline at 256)."""
    modes = lambda b, i: [{"name": "baseline", "budget": b, "prune_interval": i},
                          {"name": "knorm/hard", "budget": b, "prune_interval": i}]
    card = {"modes": modes(128, 16), "summary": {"modes": {"baseline": _stats(card_tpots[0]),
                                                           "knorm/hard": _stats(card_tpots[1], 0.004, card_kv)}}}
    b, p, ref = long_tpots
    long = {"modes": modes(256, 32),
            "summary": {"cells": [{"prompt": 0, "mode": "baseline", **_stats(b)},
                                  {"prompt": 0, "mode": "knorm/hard", **_stats(p, 0.01, long_kv)},
                                  {"prompt": 1, "mode": "baseline", **_stats(ref)}]},
            "context_rows": [{"ratio": p / b, "limit_ratio": p / ref, "prune_share": 0.01, "ref_tpot_ms": ref,
                              "baseline_tpot_ms": b}]}
    return card, long


def test_figures_meet_and_miss_their_targets():
    """Card 40.0 -> 40.4 ms (1.01, met); long 50 -> 41 ms (0.82, met) against 40 ms at the budget
    (limit 1.025, met; floor 0.80); KV 140 x 2 bytes against (128 + 16) x 2."""
    memory = {"before_mb": 1000.0, "baseline_mb": 2400.0, "pruned_mb": 1250.0}
    rows = targets.figures(*_results((40.0, 40.4), (50.0, 41.0, 40.0)), memory, bpt=2)
    by = {(r["figure"], r["what"][:10]): r for r in rows}
    assert [r["figure"] for r in rows] == ["1", "2", "2", "3", "3", "4", "4", "4"]
    assert rows[0]["value"] == pytest.approx(1.01) and rows[0]["met"]
    assert rows[1]["value"] == pytest.approx(0.82) and rows[1]["met"] and "floor 0.80" in rows[1]["note"]
    assert rows[2]["value"] == pytest.approx(1.025) and rows[2]["met"]
    assert rows[5]["value"] == 280 and rows[5]["target"] == 288 and rows[5]["met"]
    assert rows[-1]["met"] is None and rows[-1]["value"] == 1250.0 and rows[-1]["target"] == 2400.0
    assert by[("3", "card scena")]["met"]

    missed = targets.figures(*_results((40.0, 41.2), (50.0, 44.0, 40.0), card_kv=145), memory, bpt=2)
    assert [r["met"] for r in missed[:3]] == [False, False, False]  # 1.03, 0.88, 1.10
    assert missed[5]["met"] is False  # 145 tokens > 144
    table = targets.table(missed)
    assert table.count(" NO |") == 4 and "floor 0.80" in table


def test_bench_targets_end_to_end(cli, llama_dir, tmp_path):
    out = tmp_path / "t.json"
    r = cli("bench", "--model-dir", llama_dir, "--targets", "--runs", "1", "--output", out, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Performance targets (knorm/hard" in r.stdout and "Card scenario" in r.stdout and "Long context" in r.stdout
    doc = json.loads(out.read_text())
    assert [f["figure"] for f in doc["figures"]] == ["1", "2", "2", "3", "3", "4", "4", "4"]
    assert [p["tokens"] for p in doc["long"]["prompts"]] == [2048, 256]
    assert len(doc["card"]["prompts"]) == 3
    for f in doc["figures"][5:7]:  # KV stays bounded whatever the machine's speed
        assert f["met"], f
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
