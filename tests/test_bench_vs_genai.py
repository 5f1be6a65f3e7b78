"""`bench --vs-genai`: our full-cache loop against GenAI's LLMPipeline on the same folder (tiny
model, so the times mean nothing; what is tested is that both sides run each prompt, the ratios
are ours / GenAI's, and settings that do not apply are refused)."""
import json

from conftest import one_line


def test_vs_genai_times_both_sides_on_each_prompt(cli, llama_dir, tmp_path):
    out = tmp_path / "vs.json"
    r = cli("bench", "--vs-genai", "--model-dir", llama_dir, "--context-lengths", 200, "--runs", 1,
            "--max-new-tokens", 4, "--output", out, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [row["prompt_tokens"] for row in rows][1:] == [200]
    for row in rows:
        assert row["ttft_ratio"] == row["ours"]["ttft_ms"] / row["genai"]["ttft_ms"]
        assert row["tpot_ratio"] == row["ours"]["tpot_ms"] / row["genai"]["tpot_ms"]
        assert "genai_stateful" not in row  # the third side is perf's
    assert "TPOT ratio" in r.stdout and "Our baseline vs OpenVINO GenAI LLMPipeline" in r.stdout


def test_vs_genai_refuses_pruned_settings(cli, llama_dir):
    r = cli("bench", "--vs-genai", "--model-dir", llama_dir, "--targets")
    assert r.returncode == 2
    assert "--vs-genai times the baseline only" in one_line(r.stderr)
