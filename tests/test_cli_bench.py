"""`python -m triattn bench` end to end on the tiny model: tables, JSON, long-context mode, errors."""
import json

import pytest
from conftest import one_line

SMALL = ["--runs", "1", "--max-new-tokens", "12", "--budget", "16", "--recent-window", "4", "--sink-tokens", "2",
         "--prune-interval", "2"]


@pytest.fixture
def prompts_file(tmp_path):
    f = tmp_path / "prompts.txt"
    f.write_text("def fibonacci(n): return the n-th number\n\nclass Stack: a list with push and pop\n")
    return f


def test_bench_tables_and_json(cli, gptoss_dir, prompts_file, tmp_path):
    out = tmp_path / "r.json"
    r = cli("bench", "--model-dir", gptoss_dir, "--prompts", prompts_file, *SMALL, "--policy", "knorm-seed",
            "streaming", "--evict", "hard", "zero", "--output", out)
    assert r.returncode == 0, r.stderr
    pruned = ["knorm-seed/hard", "knorm-seed/zero", "streaming/hard", "streaming/zero"]
    assert r.stdout.startswith("machine: ")
    for heading in ("Avg Latency (s)", "TPOT (ms/tok, median [interval] runs)", "Throughput (tok/s)", "Mem Δ (MB)", "Agreement",
                    "Per-prompt detail"):
        assert heading in r.stdout
    for m in pruned:
        assert f"| Change ({m})" in r.stdout
    doc = json.loads(out.read_text())
    assert [m["name"] for m in doc["modes"]] == ["baseline"] + pruned
    assert len(doc["prompts"]) == 2
    # interleaved: for each prompt, every mode in turn
    assert [(x["prompt"], x["mode"]) for x in doc["runs"]] == [(p, m) for p in range(2) for m in ["baseline"] + pruned]
    for x in doc["runs"]:
        assert len(x["step_times_s"]) == x["metrics"]["new_tokens"] == len(x["token_ids"])
    assert any(x["metrics"]["prune_events"] > 0 for x in doc["runs"] if x["mode"] != "baseline")
    assert {(q["prompt"], q["mode"]) for q in doc["quality"]} == {(p, m) for p in range(2) for m in pruned}
    for q in doc["quality"]:
        assert 0.0 <= q["agreement"] <= 1.0 and 0.0 <= q["forced_top1_agreement"] <= 1.0
        assert {"first_divergence", "delta_nll", "ppl_ratio"} <= set(q)
    assert set(doc["summary"]["change"]) == set(pruned)
    assert doc["summary"]["modes"]["streaming/hard"]["quality"]["prompts"] == 2
    for key in ("cpu", "cores_logical", "device", "precision", "openvino", "model_dir"):
        assert doc["machine"][key]


def test_bench_context_lengths(cli, gptoss_dir, tmp_path):
    out = tmp_path / "c.json"
    r = cli("bench", "--model-dir", gptoss_dir, "--context-lengths", "64", "128", "--budget", "32", "--runs", "1",
            "--max-new-tokens", "12", "--recent-window", "4", "--sink-tokens", "2", "--prune-interval", "2",
            "--output", out)
    assert r.returncode == 0, r.stderr
    assert "Limit ratio" in r.stdout and "| 64 " in r.stdout and "| 128 " in r.stdout
    doc = json.loads(out.read_text())
    assert [p["tokens"] for p in doc["prompts"]] == [64, 128, 32]   # plus the baseline at context = budget
    rows, ref = doc["context"]["rows"], doc["context"]["baseline_at_budget_tpot_ms"]
    assert [row["context"] for row in rows] == [64, 128]
    # one run each: a run's TPOT is the median of its decode steps' times, taken here from the raw steps
    tpot = {(x["prompt"], x["mode"]): 1000 * _median(x["step_times_s"][1:]) for x in doc["runs"]}
    assert ref == pytest.approx(tpot[(2, "baseline")])
    for p, row in enumerate(rows):
        assert row["ratio"] == pytest.approx(tpot[(p, "knorm/hard")] / tpot[(p, "baseline")])
        assert row["limit_ratio"] == pytest.approx(tpot[(p, "knorm/hard")] / tpot[(2, "baseline")])
        assert row["kv_decode_bytes"] <= row["kv_bound_bytes"]    # hard eviction keeps the cache bounded
        assert 0.0 < row["prune_share"] < 1.0
    runs_at_budget = [x for x in doc["runs"] if x["prompt"] == 2]
    assert [x["mode"] for x in runs_at_budget] == ["baseline"]


@pytest.mark.parametrize("args, message", [
    (["--model-dir", "/nonexistent/model"], "model directory not found"),
    (["--runs", "two"], "expected a whole number"),
    (["--runs", "0"], "runs must be at least 1"),
    (["--policy", "lfu"], "invalid choice"),
    (["--evict", "drop"], "invalid choice"),
    (["--policy", "none"], "at least one pruning policy"),
    (["--budget", "8", "--recent-window", "8"], "must exceed sink tokens"),
    (["--prompts", "/nonexistent/prompts.txt"], "prompts file not found"),
    (["--output", "/nonexistent/dir/r.json"], "cannot write the output file"),
    (["--context-lengths", "64", "--max-new-tokens", "100000"], "capped"),
])
def test_bench_bad_arguments(cli, gptoss_dir, args, message):
    r = cli("bench", "--model-dir", gptoss_dir, *args)
    assert r.returncode == 2 and message in one_line(r.stderr)


def test_bench_context_longer_than_the_model(cli, gptoss_dir, tmp_path):
    r = cli("bench", "--model-dir", gptoss_dir, "--context-lengths", "4090", "--max-new-tokens", "50",
            "--output", tmp_path / "x.json")
    assert r.returncode == 2 and "exceed the model's context" in one_line(r.stderr)


def test_not_an_llm_export(cli, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    for cmd in (["bench"], ["sweep", "--output", tmp_path / "o"]):
        r = cli(*cmd, "--model-dir", tmp_path)
        assert r.returncode == 2 and "not an OpenVINO LLM export" in one_line(r.stderr)


def test_bench_steps_interleaved_with_plot(cli, gptoss_dir, tmp_path):
    out, png = tmp_path / "s.json", tmp_path / "ctx.png"
    r = cli("bench", "--model-dir", gptoss_dir, "--context-lengths", "64", "128", "--budget", "32", "--runs", "2",
            "--max-new-tokens", "12", "--recent-window", "4", "--prune-interval", "2", "--evict", "hard", "mask",
            "--interleave", "steps", "--plot", png, "--output", out)
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    doc = json.loads(out.read_text())
    assert doc["settings"]["interleave"] == "steps"
    # each run index visits every length; its modes and the baseline at context = budget (prompt 2)
    # ran together, so every length has that baseline measured beside it
    assert [(x["run"], x["prompt"], x["group"]) for x in doc["runs"]][:4] == [(0, 0, 0)] * 3 + [(0, 2, 0)]
    assert len(doc["runs"]) == 2 * 2 * (3 + 1)
    refs = {g: [1000 * _median(x["step_times_s"][1:]) for x in doc["runs"] if x["prompt"] == 2 and x["group"] == g]
            for g in (0, 1)}
    for row in doc["context"]["rows"]:
        group = [64, 128].index(row["context"])
        assert row["ref_tpot_ms"] == pytest.approx(sum(refs[group]) / 2)  # the median of two runs: their mean
    assert all(x["metrics"]["rss_delta_mb"] is None for x in doc["runs"])
    assert all(len(x["token_ids"]) == 12 for x in doc["runs"])
    assert "| 64 " in r.stdout and "knorm/mask" in r.stdout


def test_bench_plot_needs_context_lengths(cli, gptoss_dir, tmp_path):
    r = cli("bench", "--model-dir", gptoss_dir, "--plot", tmp_path / "x.png", "--output", tmp_path / "r.json")
    assert r.returncode == 2 and "--context-lengths" in one_line(r.stderr)


def _median(xs):
    """The middle value, or the mean of the middle two: written out, not the code's own."""
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2
