"""The soak command (a shortened run on the tiny model) and that the soak check does catch leaks."""
import json
import re

import numpy as np
import pytest

from triattn.openvino.model import load_model
from triattn.bench.soak import soak
from triattn.core.text import load_tokenizer

PROMPTS = ["def read_lines(path):", "class Stack:", "What are the advantages of OpenVINO?"]


def test_soak_command_memory_stays_flat(cli, gptoss_dir):
    r = cli("soak", "--model-dir", gptoss_dir, "--runs", 8, "--warmup", 3, "--max-new-tokens", 150,
            "--budget", 64, "--recent-window", 16, "--limit-mb", 50, "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["runs"] == 8 and res["ok"] and res["open_requests"] == 0
    assert res["tokens"] > 8 * 2 * 10  # both runs of every comparison generated
    lines = r.stderr.splitlines()
    assert sum(ln.startswith("warm-up ") for ln in lines) == 3 and sum(ln.startswith("run ") for ln in lines) == 8
    # the RSS the progress lines read after each comparison, against the growth the result states
    rss = [float(re.search(r"RSS ([0-9.]+) MB", ln).group(1)) for ln in lines if ln.startswith(("warm-up ", "run "))]
    assert res["growth_mb"] < 50 and abs(res["growth_mb"] - (rss[-1] - rss[2])) < 5
    tokens = sum(int(a) + int(b) for a, b in (re.search(r": (\d+) \+ (\d+) tokens", ln).groups()
                                              for ln in lines if ln.startswith("run ")))
    assert res["tokens"] == tokens  # the measured comparisons' tokens, both runs


@pytest.fixture(scope="module")
def model_and_tokenizer(gptoss_dir):
    return load_model(gptoss_dir), load_tokenizer(gptoss_dir)


def test_soak_fails_when_memory_grows(model_and_tokenizer):
    kept = []

    def leak(i, pair, rss):  # 16 MB that stays, every comparison
        kept.append(np.ones(2 * 2**20))
    res = soak(*model_and_tokenizer, PROMPTS, max_new_tokens=5, runs=4, warmup=1, limit_mb=30, on_run=leak)
    assert res.growth_mb > 30 and not res.ok and "FAILED" in res.summary()


def test_soak_fails_when_an_infer_request_is_left_open(model_and_tokenizer):
    model, tok = model_and_tokenizer
    kept = []
    res = soak(model, tok, PROMPTS, max_new_tokens=5, runs=2, warmup=1,
               on_run=lambda i, pair, rss: kept.append(model.new_session()))
    assert res.open_requests == 3 and not res.ok
    kept.clear()
    res = soak(model, tok, PROMPTS, max_new_tokens=5, runs=2, warmup=1)
    assert res.open_requests == 0 and res.ok


def test_soak_with_long_prompts_of_exact_lengths(cli, llama_dir):
    """--prompt-tokens: prompts of exactly N tokens, cut to the budget after prefill, taken in turn
    (the page's path: two sessions per comparison); memory stays flat and the peak is reported."""
    r = cli("soak", "--model-dir", llama_dir, "--prompt-tokens", 1500, 3000, "--runs", 4, "--warmup", 2,
            "--max-new-tokens", 8, "--budget", 64, "--limit-mb", 100, "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["ok"] and res["open_requests"] == 0 and res["peak_rss_mb"] >= res["rss_start_mb"]
    assert res["tokens"] == 4 * 2 * 8
