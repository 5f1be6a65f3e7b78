"""triattn eval: the task generators (answer in the context once, length within 2%, same seed same
task), containment scoring, the table's counts and marks, and reruns/resumes on a tiny model."""
import json
from collections import Counter
from pathlib import Path

import pytest

from triattn.core.text import load_tokenizer
from triattn.eval import report
from triattn.eval import run as evalrun
from triattn.eval.tasks import TASKS, make_task
from triattn.paths import ASSETS

SMOLLM = ASSETS / "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def tiny_tok(llama_dir):
    return load_tokenizer(llama_dir)


def _context(text: str) -> str:
    return text.rsplit("\n", 1)[0]  # the question is the message's last line


@pytest.mark.parametrize("length", [512, 1536])
@pytest.mark.parametrize("name", TASKS)
def test_generator_answer_once_and_length(tiny_tok, name, length):
    task = make_task(name, tiny_tok, length, index=3, seed=7)
    assert abs(task.tokens - length) <= 0.02 * length
    # the ids are the plain text with the answer prefix on the next line (this tokenizer has no chat template)
    assert list(task.prompt_ids) == tiny_tok.encode(task.text + "\n" + task.answer_prefix, add_special_tokens=False)
    context = _context(task.text)
    if name == "fwe":
        counts = Counter(w for w in context.split() if w != "....")
        others = max(c for w, c in counts.items() if w not in task.expected)
        assert len(task.expected) == 3 and all(counts[w] > others for w in task.expected)
    elif name == "vt":
        value = task.needles[0].split("= ")[1].rstrip(".")
        assert context.count(value) == 1
        assert [context.count(f"VAR {v} =") for v in task.expected] == [1] * 5
        # the chain: each variable is assigned the one before it
        for a, b in zip(task.expected, task.expected[1:]):
            assert context.count(f"VAR {b} = VAR {a}.") == 1
    else:
        for needle in task.needles:
            assert context.count(needle) == 1
        for value in task.expected:
            assert context.count(value) == 1
            assert f"is: {value}." in context
    for value in task.expected:  # an answer that only repeats the question finds nothing
        assert value.lower() not in (task.text.rsplit("\n", 1)[1] + task.answer_prefix).lower() or name == "vt"


def test_generator_in_chat_template():
    tok = load_tokenizer(SMOLLM)
    task = make_task("niah_multiquery", tok, 1024, index=0)
    assert abs(task.tokens - 1024) <= 0.02 * 1024
    ids = tok.apply_chat_template([{"role": "user", "content": task.text}], add_generation_prompt=True, tokenize=False)
    assert list(task.prompt_ids) == tok.encode(ids + task.answer_prefix, add_special_tokens=False)


def test_same_seed_same_task(tiny_tok):
    for name in TASKS:
        a, b = make_task(name, tiny_tok, 512, 1, seed=5), make_task(name, tiny_tok, 512, 1, seed=5)
        assert a == b
        assert make_task(name, tiny_tok, 512, 2, seed=5).text != a.text
        assert make_task(name, tiny_tok, 512, 1, seed=6).text != a.text


def test_bad_task_requests(tiny_tok):
    with pytest.raises(ValueError, match="unknown task"):
        make_task("nope", tiny_tok, 512)
    with pytest.raises(ValueError, match="could not fit"):
        make_task("niah_multiquery", tiny_tok, 200)


def test_score_containment():
    assert evalrun.score("The numbers are 1234567 and 42.", ["1234567", "7654321"]) == (0.5, False)
    assert evalrun.score("ABCDE, fghij", ["abcde", "FGHIJ"]) == (1.0, True)
    assert evalrun.score("", ["x"]) == (0.0, False)


def _settings(**kw):
    base = dict(model="m", precision="f32", device="CPU", tasks=("niah_single", "vt"), lengths=(512,), samples=2,
                seed=0, policies=("knorm", "streaming"), budgets=(64,), max_new_tokens={"niah_single": 6, "vt": 6},
                haystack=str(ASSETS / "text" / "python-reference-sample.txt"), run_uninformative=True,
                eviction={"recent_window": 8, "sink_tokens": 4})
    return evalrun.Settings(**{**base, **kw})


def _answer(task, policy, budget, i, ok):
    return {"task": task, "length": 512, "index": i, "policy": policy, "budget": budget, "all_found": ok,
            "found": 1.0 if ok else 0.5}


def test_table_counts_and_not_informative():
    s = _settings(samples=4, policies=("knorm",))
    got = {}
    for i in range(4):
        for task, base_ok, pruned_ok in (("niah_single", True, i < 1), ("vt", i < 1, False)):
            for policy, budget, ok in (("none", None, base_ok), ("knorm", 64, pruned_ok)):
                got[evalrun.key(task, 512, i, policy, budget)] = _answer(task, policy, budget, i, ok)
    rows = {(r["task"], r["policy"]): r for r in report.rows(got, s)}
    assert (rows["niah_single", "none"]["k"], rows["niah_single", "knorm"]["k"]) == (4, 1)
    assert rows["niah_single", "knorm"]["baseline"] == 1.0 and rows["niah_single", "knorm"]["informative"]
    assert rows["vt", "none"]["k"] == 1 and not rows["vt", "knorm"]["informative"]
    assert rows["vt", "none"]["score"] == pytest.approx((1 + 0.5 * 3) / 4)
    table = report.markdown(report.rows(got, s), report.pooled(report.rows(got, s), s))
    marked = [line for line in table.splitlines() if report.NOT_INFORMATIVE in line]
    assert len(marked) == 2 and all(line.startswith("| vt |") for line in marked)
    pool = report.pooled(report.rows(got, s), s)
    assert [(r["policy"], r["k"], r["n"]) for r in pool] == [("none", 4, 4), ("knorm", 1, 4)]


@pytest.fixture(scope="module")
def tiny_f32(llama_dir):
    from triattn.openvino.model import load_model
    return load_model(llama_dir, "CPU", "f32"), load_tokenizer(llama_dir)


def test_rerun_same_answers_and_resume(tiny_f32, tmp_path, monkeypatch):
    model, tok = tiny_f32
    s = _settings()
    a = evalrun.evaluate(model, tok, s, tmp_path / "a")
    assert len(a) == 2 * 2 * 3  # tasks x samples x (baseline + 2 policies)
    b = evalrun.evaluate(model, tok, s, tmp_path / "b")
    strip = lambda d: {k: {f: v for f, v in x.items() if f != "time_s"} for k, x in d.items()}  # noqa: E731
    assert strip(a) == strip(b)
    # an interruption: five runs kept, the sixth cut mid-line; a rerun does only the seven missing
    lines = (tmp_path / "a" / evalrun.ANSWERS).read_text().splitlines()
    (tmp_path / "a" / evalrun.ANSWERS).write_text("\n".join(lines[:5]) + "\n" + lines[5][:30])
    ran = []
    real = evalrun.one_run
    monkeypatch.setattr(evalrun, "one_run", lambda *args, **kw: ran.append(1) or real(*args, **kw))
    c = evalrun.evaluate(model, tok, s, tmp_path / "a")
    assert len(ran) == 7 and strip(c) == strip(a)
    with pytest.raises(ValueError, match="other settings"):
        evalrun.evaluate(model, tok, _settings(seed=1), tmp_path / "a")


def test_uninformative_skipped(tiny_f32, tmp_path):
    model, tok = tiny_f32
    s = _settings(run_uninformative=False, tasks=("vt",), samples=1)
    got = evalrun.evaluate(model, tok, s, tmp_path)
    base = got[evalrun.key("vt", 512, 0, "none", None)]
    assert not base["all_found"]  # a random-weight model does not track variables
    assert set(got) == {evalrun.key("vt", 512, 0, "none", None)}


def test_cli_eval(cli, llama_dir, tmp_path):
    out = tmp_path / "ev"
    r = cli("eval", "--model-dir", llama_dir, "--precision", "f32", "--lengths", "512", "--samples", "1",
            "--tasks", "niah_single", "--policies", "streaming", "--budgets", "64", "--recent-window", "8",
            "--run-uninformative", "--output", out)
    assert r.returncode == 0, r.stderr
    data = json.loads((out / "eval.json").read_text())
    assert [(a["policy"], a["budget"]) for a in data["answers"]] == [("none", None), ("streaming", 64)]
    assert "| niah_single | 512 | streaming | 64 |" in (out / "table.md").read_text()
    assert (out / "command.txt").read_text().startswith("python -m triattn eval --model-dir")
    assert cli("eval", "--help").returncode == 0
    bad = cli("eval", "--model-dir", llama_dir, "--lengths", "9000", "--output", tmp_path / "x")
    assert bad.returncode == 2 and "exceed the model's context" in bad.stderr.strip().splitlines()[-1]
    assert len([ln for ln in bad.stderr.splitlines() if ln.strip()]) == 1


def test_example_for_the_page():
    from triattn.eval.tasks import example
    text, expected = example("niah_multivalue", 512)
    assert len(expected) == 4 and all(text.count(v) == 1 for v in expected)
    assert example("niah_multivalue", 512) == (text, expected)
