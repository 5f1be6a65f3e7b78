"""`perf`: every figure next to its target, in one run (tiny models, so the figures mean nothing
here; what is tested is that each is measured, in its own process, from the right runs)."""
import json
import re

import numpy as np
import pytest

from conftest import one_line


def test_perf_measures_every_mode_and_prints_each_figure(cli, llama_dir, gptoss_dir, tmp_path):
    out = tmp_path / "perf.json"
    r = cli("perf", "--model-dir", llama_dir, "--long-model", gptoss_dir, "--context", 300, "--budget", 64,
            "--chunk", 32, "--recent-window", 16, "--policy", "knorm", "--runs", 2, "--max-new-tokens", 6, "--output", out,
            "--plot", tmp_path / "fig", timeout=600)
    assert r.returncode == 0, r.stderr
    for line in ("1. Our baseline against OpenVINO GenAI", "2. Long context:", "chunked / baseline TPOT",
                 "limit ratio: chunked / baseline at 64 tokens", "chunked / baseline TTFT",
                 "chunked / baseline peak RSS", "ΔNLL chunked − whole then cut", "floor "):
        assert line in r.stdout
    got = json.loads(out.read_text())
    assert [row["prompt_tokens"] for row in got["vs_genai"]][1] == 2000
    # the long-context probes ran the form perf was asked for (the default: paged), and say so
    assert got["long"][str(gptoss_dir)]["form"] == "paged" and "cache form paged," in r.stdout
    # GenAI on the stateful model as well: what is left against it is our loop's own cost
    assert all(row["genai_stateful"]["tpot_ms"] > 0 and row["stateful_tpot_ratio"] > 0 for row in got["vs_genai"])
    assert "TPOT GenAI stateful (ms)" in r.stdout
    modes = got["long"][str(gptoss_dir)]["modes"]
    assert {k: len(v) for k, v in modes.items()} == {"baseline": 2, "chunked": 2, "whole then cut": 1,
                                                     "baseline at budget": 2}
    # 300 tokens: the baseline keeps them; whole-then-cut cuts to 63 after the prompt; chunked cuts
    # to 63 before each 32-token piece and keeps the last piece (12): 75, under the ceiling 64 + 16 - 1
    assert [modes[k][0]["kv_after_prefill"] for k in ("baseline", "whole then cut", "chunked")] == [300, 63, 75]
    assert modes["baseline at budget"][0]["kv_after_prefill"] == 64
    assert all("nll" in modes[k][0] for k in ("baseline", "whole then cut", "chunked"))
    assert all(a["peak_mb"] >= a["loaded_mb"] > 0 for v in modes.values() for a in v)
    figures = got["long"][str(gptoss_dir)]["figures"]
    assert [f["met"] is None for f in figures] == [False, False, False, False, True]
    # each figure: the median of each round's own ratio (of 2 rounds: their mean), min..max around it
    a, b = (r["tpot_ms"] / s["tpot_ms"] for r, s in zip(modes["baseline at budget"], modes["baseline"]))
    floor = figures[0]["floor_spread"]
    assert (floor["value"], floor["lo"], floor["hi"], floor["n"]) == pytest.approx(((a + b) / 2, min(a, b), max(a, b), 2))
    a, b = (r["ttft_s"] / s["ttft_s"] for r, s in zip(modes["chunked"], modes["baseline"]))
    assert figures[2]["value"] == pytest.approx((a + b) / 2) and figures[2]["spread"]["n"] == 2
    assert [f["verdict"] for f in figures[:4]] == ["not shown: 2 runs (at least 5)"] * 4
    assert all(a["precision"] == modes["baseline"][0]["precision"] for v in modes.values() for a in v)
    # the prefill profile: the budget's prompt whole, the first piece, a piece over the cut cache
    prof = got["long"][str(gptoss_dir)]["prefill"]
    assert [(f["tokens"], f["past"]) for f in prof.values()] == [(64, 0), (32, 0), (32, 63)]
    assert all(f["ms_per_token"] > 0 for f in prof.values()) and "Where the prefill's time goes" in r.stdout
    for name in ("genai", gptoss_dir.name):
        assert (tmp_path / f"fig-{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from triattn.bench.perfplot import plot_perf
    section = got["long"][str(gptoss_dir)]
    (drawn,) = plot_perf({"machine": got["machine"], "real_dims": {"300": section}}, tmp_path / "rd")
    assert drawn.name == "rd-real-dims.png" and drawn.stat().st_size > 0
    # a saved run prints as it printed when measured, without measuring again
    again = cli("perf", "--from", out, timeout=120)
    assert again.returncode == 0, again.stderr
    for section in ("1. Our baseline", "2. Long context"):
        assert r.stdout[r.stdout.index(section):].split("\n\n")[:4] == \
            again.stdout[again.stdout.index(section):].split("\n\n")[:4]


def test_perf_from_refuses_what_it_cannot_read(cli, tmp_path):
    r = cli("perf", "--from", tmp_path / "missing.json")
    assert r.returncode == 2 and "cannot read the perf results in" in one_line(r.stderr)
    r = cli("perf", "--skip-genai", "--plot", tmp_path / "no-such-folder" / "fig")
    assert r.returncode == 2 and "cannot write the output file" in one_line(r.stderr)
    (tmp_path / "other.json").write_text('{"runs": 2}')
    r = cli("perf", "--from", tmp_path / "other.json")
    assert r.returncode == 2 and "is not a file written by perf" in one_line(r.stderr)


def test_prefill_summary_is_what_attending_to_the_cut_cache_adds():
    from triattn.bench import prefill
    prof = {"whole prompt": {"tokens": 2048, "past": 0, "ms_per_token": 2.0},
            "first piece": {"tokens": 512, "past": 0, "ms_per_token": 1.5},
            "piece over the cut cache": {"tokens": 512, "past": 2047, "ms_per_token": 8.5}}
    assert prefill.summary(prof) == ("A piece over 2047 cached tokens costs 8.50 ms per token, 7.00 ms of it for "
                                     "attending to the cache; the whole prompt costs 2.00 ms per token.")


def test_perf_refuses_a_context_beyond_the_model(cli, gptoss_dir):
    r = cli("perf", "--model-dir", gptoss_dir, "--long-model", gptoss_dir, "--context", 5000, "--skip-genai")
    assert r.returncode == 2
    assert "fewer than --context 5000" in one_line(r.stderr)
    r = cli("perf", "--model-dir", gptoss_dir, "--long-model", gptoss_dir, "--context", 300, "--budget", 64)
    assert r.returncode == 2  # the default recent window (128) leaves the policy nothing to choose
    assert "must exceed sink tokens + recent window (4 + 128)" in one_line(r.stderr)


def test_a_baseline_the_machine_cannot_hold_is_reported_not_retried(monkeypatch):
    """At 16,384 tokens the gpt-oss bench model's whole prefill was killed by the out-of-memory
    killer here: the chunked run still runs, the figures that need the baseline say why they are
    missing, and neither the baseline nor whole-then-cut (the same whole prefill) is tried again."""
    from triattn.bench import longctx
    jobs = []

    forms = set()

    def fake_probe(job):
        jobs.append((job["tokens"], job["eviction"].get("prefill_chunk")))
        forms.add(job["form"])
        if job["tokens"] == 1000 and job["eviction"]["policy"] == "none":
            return {"failed": "killed by the system (out of memory)"}
        return {"ttft_s": 1.0, "tpot_ms": 10.0, "tokens": [1, 2], "kv_after_prefill": 63, "loaded_mb": 500.0,
                "peak_mb": 900.0, **({"nll": 2.0} if job["forced"] or job["own_nll"] else {})}

    monkeypatch.setattr(longctx, "probe", fake_probe)
    setup = longctx.LongSetup(context=1000, budget=64, chunk=128, recent_window=16, policy="knorm")
    got = longctx.measure("m", setup, runs=3, form="stateful")
    assert forms == {"stateful"}  # the form asked for reaches every probe's job
    assert jobs.count((1000, None)) == 1 and jobs.count((1000, 128)) == 3 and jobs.count((64, None)) == 3
    assert got["whole then cut"] == [{"failed": "not run: the baseline failed (killed by the system (out of "
                                                "memory)), and this run reads the whole prompt in one forward"}]
    rows = {r["what"]: r for r in longctx.figures(got, setup)}
    ttft = rows["chunked / baseline TTFT"]
    assert ttft["value"] is None and ttft["met"] is None
    assert ttft["note"].startswith("the baseline killed by the system (out of memory)")
    assert rows["limit ratio: chunked / baseline at 64 tokens"]["value"] == 1.0
    assert "chunked peaked at 900 MB" in rows["chunked / baseline peak RSS"]["note"]
    table = {r[0]: r for r in longctx.mode_rows(got)}
    assert table["baseline"][2] == "killed by the system (out of memory)"


def test_baselines_read_in_pieces_when_asked(monkeypatch):
    """--baseline-chunk: both baselines read their prompt in pieces (the same cache, one piece's
    working memory); the pruned runs are as before, and the section's title says so."""
    from triattn.bench import longctx, perfreport
    jobs = []

    def fake_probe(job):
        jobs.append((job["tokens"], job["eviction"]["policy"], job["eviction"].get("prefill_chunk")))
        return {"ttft_s": 1.0, "tpot_ms": 10.0, "tokens": [1, 2], "kv_after_prefill": 63, "loaded_mb": 500.0,
                "peak_mb": 900.0, **({"nll": 2.0} if job["forced"] or job["own_nll"] else {})}

    monkeypatch.setattr(longctx, "probe", fake_probe)
    setup = longctx.LongSetup(context=1000, budget=64, chunk=128, recent_window=16, policy="knorm", baseline_chunk=128)
    setup.check()
    longctx.measure("m", setup, runs=2, form="paged")
    assert sorted(set(jobs)) == [(64, "none", 128), (1000, "knorm", 0), (1000, "knorm", 128), (1000, "none", 128)]
    assert "pieces of 128 (the baselines too)" in perfreport.long_title("m", setup.__dict__, 2)
    assert "baselines" not in perfreport.long_title("m", {**setup.__dict__, "baseline_chunk": 0}, 2)


def test_a_child_process_reports_its_own_peak_not_its_parents():
    """ru_maxrss survives fork and exec: a small probe started by a large process would report the
    parent's size. peak_rss_mb reads the process's own high-water mark."""
    import subprocess
    import sys

    import numpy as np
    ballast = np.ones(400 * 2**20 // 8)  # 400 MB resident in this process
    code = "from triattn.core.metrics import peak_rss_mb; print(peak_rss_mb())"
    child = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert ballast.sum() > 0 and child < 300


def test_perf_from_the_saved_file_prints_every_figure_with_its_runs(cli):
    """The stateful form's saved perf run kept 2 runs a mode: every figure says so, none is called met."""
    r = cli("perf", "--from", "docs/data/perf-stateful-2runs.json", timeout=120)
    assert r.returncode == 0, r.stderr
    assert "out of memory" not in r.stdout and "killed (signal 9)" in r.stdout
    assert not re.search(r"\|\s+met\s+\|", r.stdout) and "not shown: 2 runs (at least 5)" in r.stdout
    assert r.stdout.count("n=2, 50%") >= 10 and "median of 2 runs; runs not saved" in r.stdout
    assert "precision f32 (KV cache f32)" not in r.stdout and "precision not recorded" in r.stdout


def test_a_probed_baseline_times_no_log_softmax_and_reads_its_nll_after(gptoss_dir):
    """The baseline's own NLL comes from teacher forcing after the timed run: the same number as the
    log-probabilities a generation reads off, computed here by hand from its logits."""
    from triattn.bench.probe import run_job
    from triattn.bench.plan import context_prompts
    from triattn.core.config import SamplingConfig, full_cache
    from triattn.core.engine import generate
    from triattn.core.text import load_tokenizer
    from triattn.openvino.model import load_model
    job = {"model_dir": str(gptoss_dir), "tokens": 64, "eviction": {"policy": "none"}, "max_new_tokens": 6,
           "own_nll": True}
    got = run_job(job)
    model = load_model(gptoss_dir, form="paged")  # a probe's default form, as every command's
    ids = context_prompts(load_tokenizer(gptoss_dir), [64], 6, model.info.max_context)[0].ids
    recs = list(generate(model.new_session(), ids, full_cache(), SamplingConfig(), 6, keep_logits=True))
    assert [r.token for r in recs] == got["tokens"]
    nll = []
    for r in recs:
        z = np.asarray(r.logits, np.float64).ravel()
        nll.append(np.log(np.exp(z - z.max()).sum()) + z.max() - z[r.token])
    assert got["nll"] == pytest.approx(float(np.mean(nll)), abs=1e-3)
    assert len(got["step_ms"]) == 5 and got["precision"] == model.precision


def test_a_probe_runs_the_form_it_is_asked_for(llama_dir):
    """A probe's job names the cache form on its command line: paged unless told, stateful when
    asked; a mask run on the paged form runs on its stateful twin and the answer says so."""
    from triattn.bench.probe import probe, run_job
    job = {"model_dir": str(llama_dir), "precision": "f32", "tokens": 48, "eviction": {"policy": "none"},
           "max_new_tokens": 3}
    paged = probe(job)  # a process of its own, as perf runs it
    assert paged["form"] == "paged" and "form_note" not in paged
    stateful = run_job({**job, "form": "stateful"})
    assert stateful["form"] == "stateful" and "form_note" not in stateful
    assert stateful["tokens"] == paged["tokens"]  # the tiny Llama: the two forms' greedy tokens agree
    mask = run_job({**job, "eviction": {"policy": "knorm", "evict": "mask", "budget": 32, "recent_window": 8}})
    assert mask["form"] == "paged" and mask["form_note"].startswith("mask runs on the stateful form")
    assert mask["kv_after_prefill"] == 48  # mask keeps every slot: the cut is in the mask, not the cache


def test_a_mode_without_figures_is_labelled_by_its_failure():
    """The long-context plot names why a bar is missing: a killed run is not one that never ran."""
    from triattn.bench.perfplot import _why_missing
    assert _why_missing([{"failed": "killed (signal 9), last peak RSS 23140 MB"}]) == "killed"
    assert _why_missing([{"failed": "killed by the system (out of memory)"}]) == "out of\nmemory"
    assert _why_missing([{"failed": "not run: the baseline could not read the whole prompt"}]) == "not run"
    assert _why_missing([]) == "not run"
