"""Safety rules that hold for the whole code base: code shipped with a model never runs, and secret
tokens from the environment never reach a message."""
import re

import pytest
from conftest import ROOT

from triattn.errors import SECRET_VARS, reason, redact


def _sources():
    return [ROOT / "app.py", *sorted((ROOT / "triattn").rglob("*.py"))]


def test_remote_code_is_never_trusted():
    uses = [(p.name, m.group(0)) for p in _sources()
            for m in re.finditer(r"trust_remote_code\s*=\s*[^,)\s]+", p.read_text(encoding="utf-8"))]
    assert uses and all(value.endswith("=False") for _, value in uses), uses
    for p in _sources():  # not passed on through **kwargs built from input either
        assert "trust_remote_code" not in p.read_text(encoding="utf-8").replace("trust_remote_code=False", ""), p


@pytest.mark.parametrize("var", SECRET_VARS)
def test_secrets_are_redacted_from_messages(monkeypatch, var):
    secret = "hf_abcdefSECRET123"
    monkeypatch.setenv(var, secret)
    assert redact(f"401 for token {secret} at hub") == "401 for token *** at hub"
    assert secret not in reason(RuntimeError(f"Exception from x.cpp:1:\nbad token {secret}\n"))


def test_reason_keeps_the_telling_line():
    ov = RuntimeError("Exception from src/inference/src/cpp/core.cpp:84:\nCheck 'x' failed at y.cpp:900:\n"
                      "Incorrect weights in bin file!\n\n")
    assert reason(ov) == "Incorrect weights in bin file!"
    assert reason(ImportError("\n requires the protobuf library\nsee docs\n")) == "requires the protobuf library"
    assert reason(KeyError()) == "KeyError" and len(reason(ValueError("x" * 500))) == 200
