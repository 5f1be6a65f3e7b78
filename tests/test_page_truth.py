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
                  "policy", control, catalog=Catalog([str(model_dir)]))
    return list(gen), control


def _done(outputs):
    """The output that ends the runs (panes, table, plots and eviction view; the quality follows)."""
    return next(o for o in outputs if isinstance(o[2], str) and o[2].startswith(("**Done", "**Stopped")))


def test_settings_refused_before_a_run_leave_the_last_results_and_say_so(gptoss_dir):
    _, control = _run(gptoss_dir, max_new=8)
    with pytest.raises(gr.Error):
        _run(gptoss_dir, prompt="   ", control=control)
    out = show_failure(control)
    assert "Not run: the prompt is empty" in out[2] and "from the run before" in out[2]
    assert all(o == gr.skip() for i, o in enumerate(out[:-1]) if i != 2)  # boxes, table, plots, view: as they were


def test_a_run_that_fails_midway_keeps_its_message_and_clears_the_old_results(gptoss_dir, monkeypatch):
    from triattn.web.ab import Pair
    _, control = _run(gptoss_dir, max_new=8)

    def broken(self):
        raise RuntimeError("the quality measurement broke")
    monkeypatch.setattr(Pair, "measure_quality", broken)
    with pytest.raises(gr.Error, match="generation failed: RuntimeError: the quality measurement broke"):
        _run(gptoss_dir, max_new=8, control=control)
    out = show_failure(control)
    assert "The run failed: generation failed" in out[2] and "Nothing below is from this run" in out[2]
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
    final = _done(outputs)
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
    # the stateful form counts its slots x its bytes per token (records without a count: the 10 given)
    assert m.kv_bytes_max_decode == model.kv_bytes_per_token * m.kv_tokens_max_decode
    for r in records:
        r.kv_bytes = r.kv_bytes_peak = None
    assert summarize(records, 10, 0.0, 0.0).kv_bytes_max_decode == 10 * m.kv_tokens_max_decode


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
    assert out[:9] == (gr.skip(),) * 9 and out[9].interactive is True  # nothing changes; Generate is ready


def test_done_is_shown_before_the_quality_cost_which_follows_in_the_table(gptoss_dir):
    outputs, _ = _run(gptoss_dir, max_new=30)
    done = _done(outputs)
    assert done[2].startswith("**Done after") and "Measuring the quality cost" in done[2]
    assert done[4].iloc[2]["ΔNLL (forced)"] == ""  # not measured yet when Done is shown
    last = outputs[-1]
    assert last[2].startswith("**Done after") and "Measuring" not in last[2]
    assert last[4].iloc[2]["ΔNLL (forced)"] != "" and last[0].value == done[0].value and last[7] == done[7]
    columns = list(last[4].columns)
    assert columns.index("ΔNLL (forced)") < columns.index("Tokens")  # the quality columns come first
    # Generate says a comparison runs from the first output to the last (a second click is not dropped unsaid)
    assert outputs[0][9].interactive is False and outputs[0][9].value.startswith("Running")
    assert last[9].interactive is True and last[9].value == "Generate"


def test_a_stop_while_the_prompt_is_read_ends_the_run_before_its_first_forward(gptoss_dir):
    control = RunControl()
    gen = compare("def read_lines(path):\n" * 200, str(gptoss_dir.resolve()), "CPU", "knorm", "hard", 64, 16, 4, 4,
                  40, 0.0, 0, "policy", control, catalog=Catalog([str(gptoss_dir)]))
    first = next(gen)
    assert first[2].startswith("Reading the prompt (") and "tokens)…" in first[2]
    control.request_stop()  # what Stop does while the prompt is read
    rest = list(gen)
    assert rest[-1][2].startswith("**Stopped") and rest[-1][0].value == "" and rest[-1][1].value == ""
    assert control.idle.is_set()


def test_the_pruned_label_says_how_far_the_cache_grows_past_its_budget(gptoss_dir):
    outputs, _ = _run(gptoss_dir, budget=64, max_new=10)
    assert "budget 64 tokens, cut back to it every 4 tokens (so it holds up to 67)" in _done(outputs)[1].label


def test_an_error_message_ends_its_sentence():
    from triattn.web.pagetext import error_status
    assert "pick an example.** Nothing below" in error_status("the prompt is empty: type one or pick an example")
    assert "..**" not in error_status("ends already.")
