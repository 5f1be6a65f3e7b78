"""`bench --vs-genai`: our full-cache loop against GenAI's LLMPipeline on the same folder (tiny
model, so the times mean nothing; what is tested is that both sides run each prompt, the ratios
are ours / GenAI's, and settings that do not apply are refused)."""
import json

import pytest

from conftest import one_line


def test_vs_genai_times_both_sides_on_each_prompt(cli, llama_dir, tmp_path):
    out = tmp_path / "vs.json"
    r = cli("bench", "--vs-genai", "--model-dir", llama_dir, "--context-lengths", 200, "--runs", 2,
            "--max-new-tokens", 5, "--output", out, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [row["prompt_tokens"] for row in rows][1:] == [200]
    for row in rows:
        ours, genai = row["runs"]["ours"], row["runs"]["genai"]
        assert len(ours) == len(genai) == 2 and all(len(x["steps_ms"]) == x["new_tokens"] - 1 for x in ours + genai)
        for key in ("ttft", "tpot"):
            # each round's own ratio, then the median of two (their mean), written out by hand
            a, b = (o[f"{key}_ms"] / g[f"{key}_ms"] for o, g in zip(ours, genai))
            s = row[f"{key}_ratio_spread"]
            assert (s["value"], s["lo"], s["hi"], s["n"]) == pytest.approx(((a + b) / 2, min(a, b), max(a, b), 2))
            assert row[f"{key}_verdict"] == "not shown: 2 runs (at least 5)"
        # a run's TPOT is the median gap between its tokens (4 gaps: the mean of the middle two)
        gaps = sorted(ours[0]["steps_ms"])
        assert ours[0]["tpot_ms"] == pytest.approx((gaps[1] + gaps[2]) / 2)
        assert "genai_stateful" not in row  # the third side is perf's
    assert "TPOT ratio [interval] runs" in r.stdout and "Our baseline vs OpenVINO GenAI LLMPipeline" in r.stdout
    assert "n=2, 50%" in r.stdout and "default precision for both" in r.stdout


def test_vs_genai_refuses_pruned_settings(cli, llama_dir):
    r = cli("bench", "--vs-genai", "--model-dir", llama_dir, "--targets")
    assert r.returncode == 2
    assert "--vs-genai times the baseline only" in one_line(r.stderr)
