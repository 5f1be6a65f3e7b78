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


def test_shapes_are_gpt_oss_20b():
    c = prunebench.GPT_OSS_20B
    shape = (c["num_hidden_layers"], c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"])
    assert shape == (24, 64, 8, 64)
    assert c["rope_theta"] == 150000.0 and c["rope_scaling"]["factor"] == 32.0
    assert c["layer_types"].count("sliding_attention") == 12
    assert prunebench.TARGETS == {2176: 0.120, 8320: 0.500}


def test_per_layer_variant_runs_too(cli):
    r = cli("prune-bench", "--policy", "triattention", "--tokens", "300", "--repeats", "1")
    assert r.returncode == 0 and "per layer" in r.stdout
    bad = cli("prune-bench", "--policy", "none")
    assert bad.returncode == 2 and "does not score" in bad.stderr
