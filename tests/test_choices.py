"""What the page offers: prompts, labels, models, and model fetching errors."""
import pytest

from triattn.web.choices import (DEFAULT, Catalog, example_prompts, fetch_hub_model, fetch_model, launch_device,
                             load_big_model_steps, mechanism_choices, model_notice, policy_choices)
from triattn.core.config import MECHANISMS
from triattn.openvino.model import ModelError
from triattn.policies import list_policies
from triattn.core.runs import DEMO_MODEL, ENGLISH_MODEL

CARD_PROMPTS = ["Explain the difference between MoE and dense transformer architectures.",
                "Write a Python function that returns the n-th Fibonacci number.",
                "What are the advantages of OpenVINO?"]


def test_example_prompts_come_from_every_file(tmp_path):
    prompts = example_prompts()
    assert prompts[:3] == CARD_PROMPTS and "def fibonacci(n):" in prompts and "class Stack:" in prompts
    assert len(prompts) == len(set(prompts))
    passages = [p for p in prompts if len(p) > 4000]
    assert len(passages) >= 2 and all(p.count("\n\n") > 5 for p in passages)
    (tmp_path / "b.txt").write_text("second\n\nfirst\n")
    (tmp_path / "a.txt").write_text("first\n  \nalso first\n")
    (tmp_path / "c.txt").write_text("one\nprompt\n---\n\nanother\n---\n")
    assert example_prompts(tmp_path) == ["first", "also first", "second", "one\nprompt", "another"]


def test_policy_and_mechanism_labels_explain_each_choice():
    """Every pruning policy is offered, none that the page would refuse (the baseline's own), and no
    label names a command-line flag."""
    offered = [v for _, v in policy_choices()]
    assert offered == [n for n in list_policies() if n != "none"] and "ov-genai" in offered
    for (label, name) in policy_choices():
        assert label.startswith(f"{name} — ") and "--" not in label and len(label) > len(name) + 10


def test_switching_to_the_python_model_brings_a_python_example(tmp_path):
    """An English example gives way to the Python model's first example, and back; a prompt the visitor
    typed stays whatever the model."""
    from triattn.web.choices import prompt_for_model
    demo, english = str(DEMO_MODEL.resolve()), DEFAULT
    python_first = example_prompts(files=("python.txt",))[0]
    assert prompt_for_model(demo, CARD_PROMPTS[0]) == python_first
    assert prompt_for_model(demo, "") == python_first
    assert prompt_for_model(english, python_first) == CARD_PROMPTS[0]
    assert prompt_for_model(english, CARD_PROMPTS[1]) == CARD_PROMPTS[1]  # already an English example
    assert prompt_for_model(demo, "my own words") == "my own words"
    assert prompt_for_model(str(tmp_path), CARD_PROMPTS[0]) == CARD_PROMPTS[0]  # not a bundled model
    labels = dict((v, lab) for lab, v in mechanism_choices())
    assert set(labels) == set(MECHANISMS)
    assert "not a true eviction" in labels["zero"] and "not a true eviction" not in labels["hard"]


def test_catalog_selects_the_first_model_dir_and_checks_it(gptoss_dir, tmp_path):
    cat = Catalog([str(gptoss_dir)])
    assert cat.preferred == str(gptoss_dir.resolve()) and DEFAULT in dict((v, lab) for lab, v in cat.choices())
    assert cat.resolve(cat.preferred) == gptoss_dir.resolve()
    gone = tmp_path / "gone"
    gone.mkdir()
    value = cat.add(gone)
    gone.rmdir()
    with pytest.raises(ModelError, match="model directory not found"):
        cat.resolve(value)
    with pytest.raises(ModelError, match="unknown model choice"):
        cat.resolve("/somewhere/else")
    assert Catalog().preferred == DEFAULT


def test_the_menu_offers_the_english_model_then_the_gpt_oss_demo_model(gptoss_dir):
    choices = Catalog([str(gptoss_dir)]).choices()
    assert choices[0] == ("SmolLM2-135M-Instruct: writes English", DEFAULT)
    assert choices[1] == ("gpt-oss architecture: sliding windows and sinks, writes Python", str(DEMO_MODEL.resolve()))
    assert choices[2][1] == str(gptoss_dir.resolve()) and len(choices) == 3
    assert Catalog().resolve(DEFAULT) == ENGLISH_MODEL
    assert "gpt-oss-family demo model" in model_notice(str(DEMO_MODEL.resolve()))


def test_default_model_notice_says_what_it_is():
    text = model_notice(DEFAULT)
    assert "SmolLM2-135M-Instruct" in text and "English" in text
    assert "OpenVINO/gpt-oss-20b-int4-ov" in text and "python app.py --model-dir models/gpt-oss-20b" in text
    assert load_big_model_steps() in text


def test_fetch_model_opens_local_folders(gptoss_dir, tmp_path):
    assert fetch_model(f"  {gptoss_dir}  ") == gptoss_dir
    with pytest.raises(ModelError, match="model directory not found"):
        fetch_model(str(tmp_path / "nope"))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="not an OpenVINO LLM export"):
        fetch_model(str(tmp_path))


@pytest.mark.parametrize("name, message", [
    ("", "enter a Hugging Face model id"),
    ("not a repo id!", "not a model id"),
    # no such repo: offline and online alike this cannot be fetched
    ("triattn-tests/no-such-model-5c1e", "cannot reach the model hub|not found on the hub"),
])
def test_fetch_model_errors_are_one_line(name, message):
    with pytest.raises(ModelError, match=message) as e:
        fetch_model(name)
    assert "\n" not in str(e.value)


def test_the_hub_box_takes_ids_only_and_checks_them_before_any_network(gptoss_dir, monkeypatch):
    import triattn.openvino.export
    probes = []
    monkeypatch.setattr(triattn.openvino.export, "hub_files", lambda name: probes.append(name) or [])
    for name in (str(gptoss_dir), str(gptoss_dir.relative_to(gptoss_dir.parent.parent.parent)), "./model",
                 "../model", "~/model", "a/b/c", "C:\\models\\x", "\\\\server\\share"):
        with pytest.raises(ModelError, match="is not a Hugging Face model id|not a model id"):
            fetch_hub_model(name)
    for name in ("not an id!", "owner/na me", "a--b/c", "x" * 97):
        with pytest.raises(ModelError, match="not a model id"):
            fetch_hub_model(name)
    assert probes == []
    # an id that also names a folder here is looked up on the hub, never opened from disk
    with pytest.raises(ModelError, match="holds no OpenVINO export"):
        fetch_hub_model("tests/fixtures")
    assert probes == ["tests/fixtures"]


def test_launch_device_refuses_an_absent_device_except_on_a_space():
    assert launch_device("cpu", on_space=False) == ("CPU", None)
    with pytest.raises(ModelError, match="device 'NO-SUCH-DEVICE' is not available here; choose one of: CPU"):
        launch_device("no-such-device", on_space=False)
    device, warning = launch_device("no-such-device", on_space=True)
    assert device == "CPU" and "not available here" in warning and warning.endswith("using CPU")
