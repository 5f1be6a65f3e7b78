"""prune-bench: runs a real prune event at gpt-oss-20b shapes and prints it beside its target (the
figures themselves are the benchmark's output, never asserted)."""
import json

from triattn.bench import prunebench


def test_prune_bench_prints_events_and_targets(cli, tmp_path):
    out = tmp_path / "pb.json"
    r = cli("prune-bench", "--policy", "triattention-head", "--tokens", "300", "2176", "--repeats", "1",
            "--output", out)
    assert r.returncode == 0, r.stderr
    assert "triattention-head (per KV head)" in r.stdout and "gpt-oss-20b shapes" in r.stdout
    row = next(line for line in r.stdout.splitlines() if line.startswith("| 2176 "))
    assert "| 2047 |" in row and "<= 120" in row
    assert "growth 300 -> 2176 tokens" in r.stdout
    rows = json.loads(out.read_text())[0]["rows"]
    assert [(x["tokens"], x["kept"]) for x in rows] == [(300, 171), (2176, 2047)]
    assert all(len(x["decide_runs_s"]) == len(x["compact_runs_s"]) == 1 for x in rows)  # every event kept
    assert "not shown: 1 run (at least 5)" in row  # one event has no interval


def test_shapes_are_gpt_oss_20b():
    c = prunebench.GPT_OSS_20B
    shape = (c["num_hidden_layers"], c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"])
    assert shape == (24, 64, 8, 64)
    assert c["rope_theta"] == 150000.0 and c["rope_scaling"]["factor"] == 32.0
    assert c["layer_types"].count("sliding_attention") == 12
    assert prunebench.TARGETS == {2176: 0.120, 8320: 0.500}


def test_per_layer_variant_runs_too(cli, tmp_path):
    r = cli("prune-bench", "--policy", "triattention", "--tokens", "300", "--repeats", "1", "--output", tmp_path / "p.json")
    assert r.returncode == 0 and "per layer" in r.stdout
    bad = cli("prune-bench", "--policy", "none")
    assert bad.returncode == 2 and "does not score" in bad.stderr


def test_event_and_growth_are_medians_of_each_round():
    """Three rounds at two sizes: events 10+5, 12+6, 30+9 ms and 40+20, 50+22, 60+40 ms."""
    rows = [{"tokens": 300, "decide_runs_s": [0.010, 0.012, 0.030], "compact_runs_s": [0.005, 0.006, 0.009]},
            {"tokens": 1200, "decide_runs_s": [0.040, 0.050, 0.060], "compact_runs_s": [0.020, 0.022, 0.040]}]
    g = prunebench.growth({"rows": rows})
    ratios = sorted([60 / 15, 72 / 18, 100 / 39])  # each round's larger event over its smaller one
    assert (g["value"], g["lo"], g["hi"], g["n"]) == (ratios[1], ratios[0], ratios[2], 3)
