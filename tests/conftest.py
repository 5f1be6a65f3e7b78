"""Tiny random-weight models, built once and reused (cached under .cache/test-models), each with its
transformers checkpoint in `pytorch/` so tests can compare against the PyTorch model."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODELS = Path(os.environ.get("TRIATTN_TEST_MODELS", ROOT / ".cache" / "test-models"))


def _tiny(arch: str) -> Path:
    from triattn.tiny import make_tiny_model
    out = MODELS / f"{arch}-tiny"
    if not (out / "openvino_model.xml").is_file() or not (out / "pytorch" / "config.json").is_file():
        make_tiny_model(out, arch, "tiny", seed=0, keep_source=True)
    return out


@pytest.fixture(scope="session")
def gptoss_dir():
    return _tiny("gpt-oss")


@pytest.fixture(scope="session")
def llama_dir():
    return _tiny("llama")


@pytest.fixture(scope="session", params=["gpt-oss", "llama"])
def model_dir(request):
    return _tiny(request.param)


@pytest.fixture(scope="session")
def prompt():
    return list(range(3, 27))  # 24 tokens


@pytest.fixture(scope="session")
def cli():
    """Run `python -m triattn ...` in a subprocess; returns the CompletedProcess."""
    import subprocess
    import sys
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}

    def run(*args, timeout=180, env_extra=None):
        return subprocess.run([sys.executable, "-m", "triattn", *map(str, args)], capture_output=True, text=True,
                              timeout=timeout, env={**env, **(env_extra or {})}, cwd=ROOT)
    return run


def one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln]
    assert len(lines) == 1, stderr
    return lines[0]
