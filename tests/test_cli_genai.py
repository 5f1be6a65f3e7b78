"""The ov-genai policy through the commands: infer, bench and sweep on the tiny Llama."""
import csv
import json

from conftest import one_line

SMALL = ["--max-new-tokens", "40", "--budget", "64", "--recent-window", "16", "--sink-tokens", "2"]


def test_infer_json_shows_what_genai_used(cli, llama_dir):
    r = cli("infer", "--model-dir", llama_dir, "--prompt", "def f(x):", "--policy", "ov-genai", *SMALL,
            "--max-new-tokens", "150", "--genai-aggregation", "sum", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["eviction"]["policy"] == "ov-genai" and out["eviction"]["evict"] == "blocks"
    assert out["eviction"]["genai_aggregation"] == "sum"
    used = out["used"]
    assert (used["block_size"], used["start_size"], used["recent_size"], used["max_cache_size"]) == (32, 32, 32, 96)
    assert used["aggregation"] == "sum" and used["requested"]["budget"] == 64
    m = out["metrics"]
    assert len(out["token_ids"]) == m["new_tokens"] and m["prune_events"] is None and m["prune_time_s"] is None
    assert out["prompt_tokens"] + m["new_tokens"] > used["kv_bound_tokens"] >= m["kv_tokens_max"]


def test_infer_compare_prints_the_used_sizes(cli, llama_dir):
    r = cli("infer", "--model-dir", llama_dir, "--prompt", "class Stack:", "--policy", "ov-genai", *SMALL,
            "--compare")
    assert r.returncode == 0, r.stderr
    assert "=== ov-genai/blocks, budget 64 ===" in r.stdout and "| Change" in r.stdout
    assert "not available (this policy cannot be fed the baseline's tokens)" in r.stdout
    assert "Token agreement:" in r.stdout
    assert "max_cache_size 96 (budget 64)" in r.stdout


def test_infer_rejects_a_mechanism_for_ov_genai(cli, llama_dir):
    r = cli("infer", "--model-dir", llama_dir, "--prompt", "x", "--policy", "ov-genai", "--evict", "zero")
    assert r.returncode == 2 and "--evict does not apply to ov-genai" in one_line(r.stderr)
    r = cli("infer", "--model-dir", llama_dir, "--prompt", "x", "--policy", "ov-genai", "--prefill-chunk", "8")
    assert r.returncode == 2 and "ov-genai prefills its own way" in one_line(r.stderr)
    r = cli("infer", "--model-dir", llama_dir, "--prompt", "x", "--policy", "ov-genai", "--genai-aggregation", "max")
    assert r.returncode == 2 and "invalid choice" in one_line(r.stderr)


def test_bench_writes_ov_genai_and_knorm(cli, llama_dir, tmp_path):
    out = tmp_path / "r.json"
    r = cli("bench", "--model-dir", llama_dir, "--policy", "ov-genai", "knorm", "--evict", "hard", "zero",
            "--runs", "1", "--prune-interval", "4", *SMALL, "--output", out)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    names = ["baseline", "ov-genai/blocks", "knorm/hard", "knorm/zero"]   # one ov-genai mode: its own mechanism
    assert [m["name"] for m in doc["modes"]] == names
    genai_mode = doc["modes"][1]
    assert genai_mode["used"]["max_cache_size"] == 96 and genai_mode["used"]["kv_bytes_per_token"] > 0
    assert {x["mode"] for x in doc["runs"]} == set(names)
    for x in doc["runs"]:
        assert len(x["token_ids"]) == x["metrics"]["new_tokens"] > 0
        assert (x["metrics"]["prune_events"] is None) == (x["mode"] == "ov-genai/blocks")
    for q in doc["quality"]:
        assert 0.0 <= q["agreement"] <= 1.0
        assert (q["delta_nll"] is None) == (q["mode"] == "ov-genai/blocks")
    s = doc["summary"]["modes"]["ov-genai/blocks"]
    assert s["prune_events"] is None and s["quality"]["delta_nll"] is None and s["quality"]["agreement"] is not None
    row = next(ln for ln in r.stdout.splitlines() if ln.startswith("| ov-genai/blocks "))
    assert "–" in row and "| Change (ov-genai/blocks)" in r.stdout


def test_sweep_with_ov_genai(cli, llama_dir, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("def fibonacci(n):\n")
    r = cli("sweep", "--model-dir", llama_dir, "--budgets", "64", "96", "--policies", "ov-genai", "streaming",
            "--recent-window", "8", "--sink-tokens", "2", "--max-new-tokens", "40", "--prompts", prompts,
            "--output", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(tmp_path / "o" / "sweep.csv")))
    assert [(x["budget"], x["policy"], x["evict"]) for x in rows] == [
        ("64", "ov-genai", "blocks"), ("64", "streaming", "hard"), ("96", "ov-genai", "blocks"),
        ("96", "streaming", "hard")]
    for x in rows:
        assert (x["delta_nll"] == "") == (x["policy"] == "ov-genai") and x["agreement"] != ""
    assert (tmp_path / "o" / "quality.png").stat().st_size > 0
