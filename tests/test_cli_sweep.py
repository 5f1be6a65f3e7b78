"""`python -m triattn sweep` on the tiny model: every file written, grid complete, budgets validated."""
import csv
import json

from conftest import one_line


def test_sweep_writes_csv_json_and_plots(cli, gptoss_dir, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("def fibonacci(n): return the n-th number\nclass Stack: a list with push and pop\n")
    out = tmp_path / "sweep"
    r = cli("sweep", "--model-dir", gptoss_dir, "--budgets", "16", "24", "--policies", "knorm", "streaming",
            "--prompts", prompts, "--output", out, "--max-new-tokens", "12", "--recent-window", "4",
            "--sink-tokens", "2", "--prune-interval", "2")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(out / "sweep.csv")))
    assert sorted((int(x["budget"]), x["policy"], x["evict"]) for x in rows) == [
        (16, "knorm", "hard"), (16, "streaming", "hard"), (24, "knorm", "hard"), (24, "streaming", "hard")]
    for x in rows:
        assert 0.0 <= float(x["agreement"]) <= 1.0 and float(x["tpot_ms"]) > 0
        assert int(x["kv_decode_max"]) <= int(x["budget"]) + 2 - 1   # hard eviction: budget + interval - 1
    doc = json.loads((out / "sweep.json").read_text())
    assert len(doc["rows"]) == 4 and len(doc["quality"]) == 2 * 4 and len(doc["runs"]) == 2 * 5
    for png in ("quality.png", "tpot.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert "| 16     | knorm/hard" in r.stdout


def test_sweep_rejects_a_budget_below_window_plus_sinks(cli, gptoss_dir, tmp_path):
    r = cli("sweep", "--model-dir", gptoss_dir, "--budgets", "32", "12", "--recent-window", "8", "--sink-tokens",
            "4", "--output", tmp_path / "o")
    assert r.returncode == 2 and "budget 12 must exceed sink tokens + recent window (4 + 8)" in one_line(r.stderr)
    assert not (tmp_path / "o").exists()


def test_sweep_bad_numbers_and_policies(cli, gptoss_dir, tmp_path):
    for args, message in ((["--budgets", "x"], "expected a whole number"),
                          (["--policies", "lfu"], "invalid choice"),
                          (["--model-dir", tmp_path / "missing"], "model directory not found")):
        r = cli("sweep", "--model-dir", gptoss_dir, "--output", tmp_path / "o", *args)
        assert r.returncode == 2 and message in one_line(r.stderr)


def test_sweep_reports_agreement_on_the_paged_form_only(cli, llama_dir, tmp_path):
    """Per policy of our loop and budget: the top-k overlap and rank correlation with the next steps'
    attention, over a counted number of cut points; none for ov-genai (it scores nothing we see), and
    none on the stateful form, which says why in one line."""
    prompts = tmp_path / "p.txt"
    prompts.write_text("def fibonacci(n): return the n-th number\n")
    common = ["--model-dir", llama_dir, "--budgets", "24", "--prompts", prompts, "--max-new-tokens", "40",
              "--recent-window", "4", "--sink-tokens", "2", "--prune-interval", "4", "--agreement-steps", "8"]
    plot = tmp_path / "assets" / "agreement.png"
    plot.parent.mkdir()
    r = cli("sweep", *common, "--policies", "triattention", "ov-genai", "--output", tmp_path / "paged",
            "--agreement-plot", plot)
    assert r.returncode == 0, r.stderr
    rows = {x["policy"]: x for x in csv.DictReader(open(tmp_path / "paged" / "sweep.csv"))}
    tri = rows["triattention"]
    assert 0.0 <= float(tri["topk_overlap"]) <= 1.0 and -1.0 <= float(tri["rank_corr"]) <= 1.0
    # cuts where the 8 next steps fit in the run: the cache reaches 24 + 4 - 1 = 27 tokens, then every 4
    assert int(tri["agreement_events"]) > 0
    assert 0.0 < float(tri["chance_overlap"]) < 1.0
    assert rows["ov-genai"]["topk_overlap"] == "" and rows["ov-genai"]["agreement_events"] == ""
    doc = json.loads((tmp_path / "paged" / "sweep.json").read_text())
    row = next(x for x in doc["rows"] if x["policy"] == "triattention")
    lo, hi = row["topk_overlap_interval"]
    assert lo <= row["topk_overlap"] <= hi and doc["settings"]["agreement_steps"] == 8
    for png in (tmp_path / "paged" / "agreement.png", plot):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = cli("sweep", *common, "--policies", "knorm", "--form", "stateful", "--output", tmp_path / "stateful")
    assert r.returncode == 0, r.stderr
    assert "agreement with the attention paid not measured: only the paged cache form reports it" in r.stderr
    assert next(csv.DictReader(open(tmp_path / "stateful" / "sweep.csv")))["topk_overlap"] == ""
    assert not (tmp_path / "stateful" / "agreement.png").exists()
