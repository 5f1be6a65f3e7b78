"""`python -m triattn infer` end to end through a subprocess."""
import json
import os
import re
import subprocess
import sys

import pytest

from triattn.core.config import DEFAULT_PREFILL_CHUNK

ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}


def cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "triattn", *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV)


def test_infer_json_has_the_documented_fields(gptoss_dir):
    r = cli("infer", "--model-dir", str(gptoss_dir), "--prompt", "def f(x):", "--max-new-tokens", "40",
            "--budget", "20", "--recent-window", "4", "--sink-tokens", "2", "--prune-interval", "3",
            "--policy", "knorm-seed", "--evict", "mask", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["token_ids"]) == out["metrics"]["new_tokens"] and isinstance(out["text"], str)
    assert out["eviction"] == {"policy": "knorm-seed", "evict": "mask", "budget": 20, "recent_window": 4,
                               "sink_tokens": 2, "prune_interval": 3, "keep_prompt": False,
                               "prefill_chunk": DEFAULT_PREFILL_CHUNK, "prompt_select": "policy"}
    for key in ("ttft_s", "tpot_ms", "throughput_tok_s", "latency_s", "new_tokens", "prune_events", "prune_time_s",
                "kv_tokens_max", "kv_tokens_final", "kv_bytes_max", "rss_delta_mb"):
        assert key in out["metrics"]
    if out["metrics"]["new_tokens"] + out["prompt_tokens"] > 22:
        assert out["metrics"]["prune_events"] > 0


def test_infer_streams_text_then_summary(gptoss_dir):
    r = cli("infer", "--model-dir", str(gptoss_dir), "--prompt", "class Stack:", "--max-new-tokens", "12")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() and "TPOT" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args, message", [
    (["--model-dir", "/nonexistent/model"], "model directory not found"),
    (["--budget", "abc"], "expected a whole number"),
    (["--budget", "-4"], "expected a number >= 0"),
    (["--policy", "lfu"], "invalid choice"),
    (["--budget", "8", "--recent-window", "8"], "must exceed sink tokens"),
    (["--max-new-tokens", "0"], "max_new_tokens must be at least 1"),
    (["--max-new-tokens", "100000"], "capped"),
])
def test_bad_arguments_exit_2_with_one_line(gptoss_dir, args, message):
    base = ["infer", "--prompt", "x", "--model-dir", str(gptoss_dir)]
    r = cli(*base, *args)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.strip().splitlines() if ln]
    assert len(lines) == 1 and message in lines[0], r.stderr


def test_not_an_llm_export(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    r = cli("infer", "--model-dir", str(tmp_path), "--prompt", "x")
    assert r.returncode == 2 and "not an OpenVINO LLM export" in r.stderr


def test_infer_compare_json_has_baseline_and_quality(gptoss_dir):
    common = ["infer", "--model-dir", str(gptoss_dir), "--prompt", "def f(x):", "--max-new-tokens", "30",
              "--budget", "16", "--recent-window", "4", "--sink-tokens", "2", "--prune-interval", "2", "--json"]
    r = cli(*common, "--compare", "--policy", "streaming")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    plain = json.loads(cli(*common, "--policy", "none").stdout)
    assert out["baseline"]["token_ids"] == plain["token_ids"] and out["baseline"]["text"] == plain["text"]
    pruned = json.loads(cli(*common, "--policy", "streaming").stdout)
    assert out["token_ids"] == pruned["token_ids"]
    q = out["quality"]
    base, mine = out["baseline"]["token_ids"], out["token_ids"]
    # by hand: a position agrees when both runs have a token there and it is the same; a position only
    # one run reached disagrees
    longest = max(len(base), len(mine))
    differ = [i for i in range(longest) if i >= len(base) or i >= len(mine) or base[i] != mine[i]]
    assert q["agreement"] == pytest.approx(1 - len(differ) / longest)
    assert q["first_divergence"] == (differ[0] if differ else None)
    assert {"first_divergence", "delta_nll", "ppl_ratio", "forced_top1_agreement"} <= set(q)


def test_infer_compare_prints_both_texts_and_a_change_row(gptoss_dir):
    r = cli("infer", "--model-dir", str(gptoss_dir), "--prompt", "class Stack:", "--max-new-tokens", "20",
            "--budget", "16", "--recent-window", "4", "--sink-tokens", "2", "--compare")
    assert r.returncode == 0, r.stderr
    assert "=== baseline (full cache) ===" in r.stdout and "=== knorm/hard, budget 16 ===" in r.stdout
    assert "| Change" in r.stdout and "Token agreement:" in r.stdout and "Outputs diverge at:" in r.stdout


def test_infer_compare_states_a_speed_direction_only_with_its_interval(gptoss_dir):
    """The verdict under the table follows the TPOT cell of its Change row: a direction only when the
    paired interval excludes 0, else no measurable difference; too few tokens said as such."""
    for n, budget in (("60", "16"), ("4", "4")):
        r = cli("infer", "--model-dir", str(gptoss_dir), "--prompt", "class Stack:", "--max-new-tokens", n,
                "--budget", budget, "--recent-window", "2", "--sink-tokens", "1", "--prune-interval", "2", "--compare")
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        header = next(ln for ln in lines if ln.startswith("| Run"))
        change = next(ln for ln in lines if ln.startswith("| Change"))
        cells = dict(zip([c.strip() for c in header.strip("|").split("|")],
                         [c.strip() for c in change.strip("|").split("|")]))
        tpot, verdict = cells["TPOT (ms)"], next(ln for ln in lines if ln.startswith("Pruned vs baseline"))
        assert cells["TTFT (ms)"] == cells["Latency (s)"] == "not compared"
        if tpot == "too few tokens":
            assert "too few decoded tokens to compare time per token" in verdict
        elif tpot.startswith("no difference"):
            assert "no measurable difference in time per token" in verdict
        else:
            word = "lower" if tpot.startswith("-") else "higher"
            assert re.search(rf"time per token \d+% {word} \(95% interval", verdict), (tpot, verdict)
    assert tpot == "too few tokens"  # the 4-token run


def test_infer_help_says_the_runs_interleave():
    r = cli("infer", "--help")
    assert "interleaved" in r.stdout and "first" not in r.stdout.split("--compare", 1)[1].split("--json")[0]


def test_infer_compare_needs_a_pruning_policy(gptoss_dir):
    r = cli("infer", "--model-dir", str(gptoss_dir), "--prompt", "x", "--policy", "none", "--compare")
    assert r.returncode == 2 and "--compare needs a pruning --policy" in r.stderr


def test_absent_gpu_falls_back_to_cpu_with_a_notice(gptoss_dir):
    """The model card's `--device GPU` with automatic fallback; unknown names are still refused."""
    r = cli("infer", "--model-dir", str(gptoss_dir), "--prompt", "x", "--max-new-tokens", "3", "--device", "GPU",
            "--json")
    assert r.returncode == 0 and "device GPU is not available here" in r.stderr and "using CPU" in r.stderr
    assert json.loads(r.stdout)["device"] == "CPU"
