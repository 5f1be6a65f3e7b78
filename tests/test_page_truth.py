"""What the page says, from its handlers (no server): a failed run's message stays and its panes are
cleared, policy none is refused, engine warnings come once in plain words and never reach the log,
ov-genai's block-rounded sizes and unreported evictions, the decode-time KV figure and the prompt's cut."""
import warnings

import pytest

gr = pytest.importorskip("gradio")

from triattn.web.choices import Catalog  # noqa: E402
from triattn.core.config import EvictionConfig, SamplingConfig  # noqa: E402
from triattn.core.engine import generate  # noqa: E402
from triattn.core.metrics import summarize  # noqa: E402
from triattn.openvino.model import load_model  # noqa: E402
from triattn.web.pagetext import plain_notice  # noqa: E402
from triattn.web.ui import RunControl, compare, show_failure  # noqa: E402


def _run(model_dir, policy="knorm", budget=64, prompt="def read_lines(path):", max_new=40, control=None):
    control = control or RunControl()
    recent, sinks = (16, 4) if budget > 20 else (2, 1)
    gen = compare(prompt, str(model_dir.resolve()), "CPU", policy, "hard", budget, recent, sinks, 4, max_new, 0.0, 0,
                  control, catalog=Catalog([str(model_dir)]))
    return list(gen), control


def test_a_failed_run_keeps_its_message_and_clears_the_old_results(gptoss_dir):
    _, control = _run(gptoss_dir, max_new=8)
    with pytest.raises(gr.Error):
        _run(gptoss_dir, prompt="   ", control=control)
    out = show_failure(control)
    assert "The run failed: the prompt is empty" in out[2] and "Nothing below is from this run" in out[2]
    assert out[0].value == "" and out[1].value == "" and "failed" in out[0].label
    assert out[4].empty and out[5].visible is False and out[6].visible is False and out[7] == []


def test_policy_none_is_refused_not_labelled_pruned(gptoss_dir):
    with pytest.raises(gr.Error, match="policy none keeps every token, so it is the baseline itself"):
        _run(gptoss_dir, policy="none")


def test_the_sliding_window_warning_comes_once_in_plain_words_and_not_in_the_log(gptoss_dir):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outputs, _ = _run(gptoss_dir, budget=8)  # the tiny gpt-oss model's sliding window is 16
    assert not [w for w in caught if "sliding window" in str(w.message)]
    final = outputs[-1][2]
    assert final.count("Note: this model's local-attention layers look at the last 16 tokens") == 1
    assert "set the budget to 16 or more" in final and "compaction" not in final


def test_plain_notice_keeps_other_messages():
    assert plain_notice("something else") == "Note: something else"


def test_genai_shows_the_sizes_it_used_and_says_evictions_are_not_reported(llama_dir):
    outputs, _ = _run(llama_dir, policy="ov-genai", budget=8, max_new=30)
    final = outputs[-1]
    assert "used as whole blocks of" in final[1].label and "cache " in final[1].label
    assert final[7] == [] and "not reported" in final[8] and "never" not in final[8]


def test_decode_kv_and_the_prompt_cut(llama_dir, prompt):
    model = load_model(llama_dir)
    records = list(generate(model.new_session(), prompt, EvictionConfig(policy="knorm", budget=8, recent_window=2,
                                                                          sink_tokens=1, prune_interval=4),
                            SamplingConfig(), 20))
    m = summarize(records, 10, 0.0, 0.0)
    assert m.prompt_cut is not None and m.prompt_cut[0] >= len(prompt) and m.prompt_cut[1] <= 8
    assert m.kv_tokens_max >= len(prompt) and m.kv_tokens_max_decode <= 8 + 4
    assert m.kv_bytes_max_decode == 10 * m.kv_tokens_max_decode


def test_infer_says_when_nothing_was_pruned(cli, llama_dir):
    r = cli("infer", "--model-dir", llama_dir, "--prompt", "def f(x):", "--max-new-tokens", "5", "--budget", "200",
            "--compare")
    assert r.returncode == 0, r.stderr
    assert "nothing was pruned in the pruned run" in r.stdout and "never over the budget of 200" in r.stdout
    r = cli("infer", "--model-dir", llama_dir, "--prompt", "def f(x):", "--max-new-tokens", "40", "--budget", "16",
            "--recent-window", "4", "--sink-tokens", "2")
    assert r.returncode == 0, r.stderr
    assert "nothing was pruned" not in r.stdout + r.stderr


def test_bench_says_when_a_mode_pruned_nothing(cli, llama_dir, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("def fibonacci(n):\n")
    r = cli("bench", "--model-dir", llama_dir, "--prompts", prompts, "--runs", "1", "--max-new-tokens", "6",
            "--budget", "200", "--policy", "knorm", "--output", tmp_path / "r.json")
    assert r.returncode == 0, r.stderr
    assert "note: nothing was pruned in mode knorm/hard" in r.stdout
    assert "the outputs never differed" in r.stdout  # its "First div." is not a divergence


def test_every_example_is_offered_once():
    from triattn.web.choices import example_prompts
    prompts = example_prompts()
    shown = [p.strip().splitlines()[0][:60] for p in prompts]  # what the example buttons show
    assert len(set(shown)) == len(shown), [s for s in shown if shown.count(s) > 1]


def test_a_stopped_run_is_not_shown_as_failed():
    out = show_failure(RunControl())  # no error recorded: Stop or a closed tab ended the run
    assert out == (gr.skip(),) * 9  # nothing changes
