"""Bad input to the CLI: every case is one line on stderr (file-descriptor level, so OpenVINO's own
output would show too), nothing on stdout, and exit status 2. Run in-process for speed; a few
cases also run as `python -m triattn` subprocesses."""
import re
import shutil

import pytest
from bad_input import CLI_CASES, fill
from conftest import BROKEN, SECRET, one_line

from triattn.core import calibration
from triattn.cli import main



def _run(capfd, *args):
    try:
        rc = main([str(a) for a in args])
    except SystemExit as e:  # argparse refusals
        rc = e.code
    out, err = capfd.readouterr()
    return rc, out, err


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_infer_bad_input(capfd, gptoss_dir, broken_models, case):
    """The shared bad-input matrix (bad_input.py), as the CLI takes it."""
    args = [fill(a, broken_models) for a in case.cli]
    model = [] if "--model-dir" in args else ["--model-dir", gptoss_dir]
    prompt = [] if "--prompt" in args else ["--prompt", "def f(x):"]
    rc, out, err = _run(capfd, "infer", *model, "--max-new-tokens", 5, *prompt, *args)
    assert rc == 2 and out == "" and (case.cli_message or case.message) in one_line(err), err


@pytest.mark.parametrize("kind, message", [
    ("garbage-xml", "is not an OpenVINO IR file"),
    ("truncated-xml", "cannot read the OpenVINO model"),
    ("truncated-bin", "Incorrect weights in bin file"),
    ("foreign-bin", "the .xml and .bin are from different exports"),
    ("not-an-llm", "is not a text-generation export"),
    ("no-tokenizer", "no tokenizer in"),
    ("bad-config", "does not describe a decoder LLM (not a JSON object)"),
])
def test_broken_model_directories(capfd, broken_models, kind, message):
    assert kind in BROKEN
    for command in (["infer", "--prompt", "hi", "--max-new-tokens", 3], ["calibrate"]):
        rc, out, err = _run(capfd, *command, "--model-dir", broken_models[kind])
        assert rc == 2 and out == "" and message in one_line(err), err


@pytest.mark.parametrize("remove, message", [
    (None, "model directory not found"),
    ("openvino_model.bin", "not an OpenVINO LLM export (missing openvino_model.bin)"),
    ("openvino_model.xml", "not an OpenVINO LLM export (missing openvino_model.xml)"),
    ("config.json", "not an OpenVINO LLM export (missing config.json)"),
])
def test_missing_or_partial_model_directory(capfd, gptoss_dir, tmp_path, remove, message):
    target = tmp_path / "model"
    if remove:
        shutil.copytree(gptoss_dir, target, ignore=shutil.ignore_patterns("pytorch", remove))
    rc, out, err = _run(capfd, "infer", "--prompt", "hi", "--model-dir", target)
    assert rc == 2 and out == "" and message in one_line(err), err


def test_triattention_on_a_large_uncalibrated_model_names_the_command(capfd, gptoss_dir, tmp_path, monkeypatch):
    model_dir = tmp_path / "model"
    shutil.copytree(gptoss_dir, model_dir, ignore=shutil.ignore_patterns("pytorch", "*.npz"))
    monkeypatch.setattr(calibration, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(calibration, "AUTO_MAX_BYTES", 0)  # every model counts as large
    rc, out, err = _run(capfd, "infer", "--prompt", "hi", "--model-dir", model_dir, "--policy", "triattention")
    assert rc == 2 and f"python -m triattn calibrate --model-dir {model_dir}" in one_line(err)


@pytest.mark.parametrize("args, message", [
    (["export", "--model-id", "../etc/passwd", "--output-dir", "{tmp}/x"], "not a model id"),
    (["export", "--model-id", "owner/na me", "--output-dir", "{tmp}/x"], "not a model id"),
    (["export", "--model-id", "triattn-tests/no-such-model-5c1e", "--output-dir", "{tmp}/x"],
     "cannot reach the model hub|not found on the hub"),
    (["soak", "--runs", "0"], "runs must be at least 1"),
    (["soak", "--limit-mb", "nan"], "--limit-mb must be a number >= 0"),
    (["bench", "--prompts", "{tmp}/none.txt"], "not found"),
    (["bench", "--budget", "5000", "--output", "{tmp}/r.json"], "above the model's context of 4096"),
    (["sweep", "--budgets", "5000", "--max-new-tokens", "3"], "above the model's context of 4096"),
])
def test_other_commands(capfd, gptoss_dir, tmp_path, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if args[0] != "export":
        args += ["--model-dir", str(gptoss_dir)]
    if args[0] == "sweep":
        args += ["--output", str(tmp_path / "sweep")]
    rc, out, err = _run(capfd, *args)
    assert rc == 2 and out == "" and re.search(message, one_line(err)), err


@pytest.mark.parametrize("args, message", [
    (["infer", "--prompt", "hi", "--model-dir", "{garbage-xml}"], "is not an OpenVINO IR file"),
    (["infer", "--prompt", "hi", "--model-dir", "{gpt}", "--budget", "5000"], "above the model's context"),
    (["export", "--model-id", "triattn-tests/no-such-model-5c1e", "--output-dir", "{tmp}/x"],
     "cannot reach the model hub|not found on the hub"),
])
def test_as_a_subprocess_with_a_token_in_the_environment(cli, gptoss_dir, broken_models, tmp_path, args, message):
    names = {"{garbage-xml}": str(broken_models["garbage-xml"]), "{gpt}": str(gptoss_dir), "{tmp}": str(tmp_path)}
    for k, v in names.items():
        args = [a.replace(k, v) for a in args]
    r = cli(*args, env_extra={"HF_TOKEN": SECRET})
    assert r.returncode == 2 and r.stdout == "" and re.search(message, one_line(r.stderr)), r.stderr
    assert SECRET not in r.stderr
