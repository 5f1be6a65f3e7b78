"""prune-bench: runs a real prune event at gpt-oss-20b shapes and prints it beside its target (the
figures themselves are the benchmark's output, never asserted)."""
import json

import numpy as np
import pytest

from triattn.bench import prunebench


def test_prune_bench_prints_events_and_targets(cli, tmp_path):
    out = tmp_path / "pb.json"
    r = cli("prune-bench", "--policy", "triattention-head", "--tokens", "300", "2176", "--repeats", "1",
            "--output", out)
    assert r.returncode == 0, r.stderr
    assert "triattention-head (per KV head)" in r.stdout and "gpt-oss-20b shapes" in r.stdout
    row = next(line for line in r.stdout.splitlines() if line.startswith("| 2176 "))
    assert "| 2047 |" in row and "<= 40" in row  # issue 27's target on the paged pool, the default form
    assert "paged form: score + select + the paged pool's compaction" in r.stdout
    assert "pool (K and V, f32, whole blocks): 30 MiB at 300 tokens, 204 MiB at 2176 tokens" in r.stdout
    assert "growth 300 -> 2176 tokens" in r.stdout
    rows = json.loads(out.read_text())[0]["rows"]
    assert [(x["tokens"], x["kept"]) for x in rows] == [(300, 171), (2176, 2047)]
    # 24 layers x 8 KV heads x 64 dims x 4 bytes, K and V, in whole blocks of 32 tokens
    assert [x["pool_bytes"] for x in rows] == [24 * 2 * 8 * 64 * 4 * 32 * b for b in (10, 68)]
    assert all(len(x["decide_runs_s"]) == len(x["compact_runs_s"]) == 1 for x in rows)  # every event kept
    assert "not shown: 1 run (at least 5)" in row  # one event has no interval


def test_shapes_are_gpt_oss_20b():
    c = prunebench.GPT_OSS_20B
    shape = (c["num_hidden_layers"], c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"])
    assert shape == (24, 64, 8, 64)
    assert c["rope_theta"] == 150000.0 and c["rope_scaling"]["factor"] == 32.0
    assert c["layer_types"].count("sliding_attention") == 12
    assert prunebench.TARGETS == {"paged": {2176: 0.040, 8320: 0.160}, "stateful": {2176: 0.120, 8320: 0.500}}


def test_per_layer_variant_and_the_stateful_form_run_too(cli, tmp_path):
    r = cli("prune-bench", "--policy", "triattention", "--tokens", "300", "--repeats", "1", "--output", tmp_path / "p.json")
    assert r.returncode == 0 and "per layer" in r.stdout
    r = cli("prune-bench", "--policy", "knorm", "--tokens", "300", "2176", "--repeats", "1", "--form", "stateful",
            "--output", tmp_path / "s.json")
    assert r.returncode == 0, r.stderr
    assert "stateful form: score + select + the host K/V mirror's compaction" in r.stdout
    assert "<= 120" in next(line for line in r.stdout.splitlines() if line.startswith("| 2176 "))
    assert "pool (K and V" not in r.stdout
    bad = cli("prune-bench", "--policy", "none")
    assert bad.returncode == 2 and "does not score" in bad.stderr


def test_event_and_growth_are_medians_of_each_round():
    """Three rounds at two sizes: events 10+5, 12+6, 30+9 ms and 40+20, 50+22, 60+40 ms."""
    rows = [{"tokens": 300, "decide_runs_s": [0.010, 0.012, 0.030], "compact_runs_s": [0.005, 0.006, 0.009]},
            {"tokens": 1200, "decide_runs_s": [0.040, 0.050, 0.060], "compact_runs_s": [0.020, 0.022, 0.040]}]
    g = prunebench.growth({"rows": rows})
    ratios = sorted([60 / 15, 72 / 18, 100 / 39])  # each round's larger event over its smaller one
    assert (g["value"], g["lo"], g["hi"], g["n"]) == (ratios[1], ratios[0], ratios[2], 3)


@pytest.mark.parametrize("per_head", [False, True])
def test_the_timed_pool_cut_keeps_the_kept_tokens_rows(per_head):
    """The paged event's cache: a pool filled with the synthetic keys (as K and V), cut by a random
    keep as PagedSession.compact cuts it; every kept token's rows are where the pool says, checked
    against the keys themselves (small widths, one sliding-window layer)."""
    from triattn.core.store import TokenStore
    from triattn.openvino.pool import BLOCK
    cfg = {"sliding_window": 8, "layer_types": ["sliding_attention", "full_attention"]}
    rng = np.random.default_rng(3)
    keys = rng.standard_normal((2, 2, 70, 4)).astype(np.float32)
    cut = prunebench.CUTS["paged"](keys, cfg)
    store = TokenStore(2, 2, 4, True, cut.mirror, capacity=70, per_head=per_head)
    store.append(np.arange(70), keys)
    lanes = 2 if per_head else 1
    keep = np.zeros((2, lanes, 70), bool)
    for layer in range(2):
        for lane in range(lanes):
            keep[layer, lane, rng.choice(70, 30, replace=False)] = True
    cut.compact(store, keep if per_head else keep[:, 0])
    pool = cut.pool
    assert pool.n == store.n == 30
    for layer in range(2):
        for h in range(2):
            lane = h if per_head else 0
            kept = np.nonzero(keep[layer, lane])[0]  # positions, in order
            slots = pool.slots[layer, lane]
            for token, pos in enumerate(kept):
                blk, row = pool.tables[layer][slots[token] // BLOCK], slots[token] % BLOCK
                np.testing.assert_array_equal(pool.keys[layer][blk, h, row], keys[layer, h, pos])
                np.testing.assert_array_equal(pool.values[layer][blk, h, row], keys[layer, h, pos])
    # the sliding-window layer's newest 8 kept tokens sit in its last 8 slots, in position order
    assert pool.slots[0, 0, -8:].tolist() == list(range(22, 30))
