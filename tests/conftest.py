"""Tiny random-weight models, built once and reused (cached under .cache/test-models), each with its
transformers checkpoint in `pytorch/` so tests can compare against the PyTorch model; the CLI and
the web app run on them in subprocesses."""
import os
from pathlib import Path

import pytest

# The suite sets the environment it depends on: hub errors are tested as a machine without the hub
# meets them (a probe that fails), not as HF_HUB_OFFLINE words them; tests that want the offline mode
# set it themselves. Popped before anything imports huggingface_hub, which reads it once.
os.environ.pop("HF_HUB_OFFLINE", None)
ROOT = Path(__file__).resolve().parent.parent
MODELS = Path(os.environ.get("TRIATTN_TEST_MODELS", ROOT / ".cache" / "test-models"))


def _tiny(arch: str) -> Path:
    from triattn.openvino.tiny import make_tiny_model
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


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """`python app.py` in a subprocess on a free port (bound to 127.0.0.1, by option or by default)."""

    def __init__(self, args, cache_dir: Path, extra_env: dict | None = None, host: str | None = "127.0.0.1"):
        import subprocess
        import sys
        import time
        import urllib.request
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = {k: v for k, v in os.environ.items()
               if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SPACE_ID", "GRADIO_SERVER_NAME")}
        env.update(TRIATTN_CACHE=str(cache_dir), GRADIO_ANALYTICS_ENABLED="False", PYTHONWARNINGS="ignore",
                   **(extra_env or {}))
        self.log = cache_dir / f"app-{self.port}.log"
        bind = ["--host", host] if host else []  # None: the app's own default
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), *bind, "--port",
                                      str(self.port), *args], cwd=ROOT, env=env,
                                     stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.time() + 90
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app.py exited ({self.proc.returncode}):\n{self.log.read_text()}")
            try:
                urllib.request.urlopen(self.url, timeout=2)
                return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"app.py did not start in 90 s:\n{self.log.read_text()}")

    def runs_ended(self) -> int:
        """Comparisons the server has finished, stopped or dropped, and freed (its log says so)."""
        from triattn.web.ui import RUN_ENDED
        return self.log.read_text(errors="replace").count(RUN_ENDED)

    def wait_until(self, condition, what: str, timeout: float = 60):
        """Poll `condition()` until it holds (a server-side event seen from outside); fail after `timeout`."""
        import time
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.05)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except Exception:
            self.proc.kill()


BROKEN = {  # name -> what is wrong with a copy of the tiny gpt-oss export
    "garbage-xml": "openvino_model.xml is not XML",
    "truncated-xml": "openvino_model.xml cut short",
    "truncated-bin": "openvino_model.bin cut short",
    "foreign-bin": "openvino_model.bin of another model (llama)",
    "not-an-llm": "the IR is a valid one-op model, not a language model",
    "no-tokenizer": "no tokenizer files",
    "bad-config": "config.json is a JSON list",
}


def make_broken_model(kind: str, src: Path, other: Path, out: Path) -> Path:
    """A copy of the export at `src` spoiled as BROKEN[kind] says (`other`: a second export)."""
    import shutil
    shutil.copytree(src, out, ignore=shutil.ignore_patterns("pytorch", "*.npz"))
    xml, weights = out / "openvino_model.xml", out / "openvino_model.bin"
    if kind == "garbage-xml":
        xml.write_text("this is not an OpenVINO model\n")
    elif kind == "truncated-xml":
        xml.write_bytes(xml.read_bytes()[:len(xml.read_bytes()) // 3])
    elif kind == "truncated-bin":
        weights.write_bytes(weights.read_bytes()[:len(weights.read_bytes()) // 2])
    elif kind == "foreign-bin":
        shutil.copy(other / "openvino_model.bin", weights)
    elif kind == "not-an-llm":  # a valid IR of a one-op model
        import openvino as ov
        import openvino.opset13 as ops
        x = ops.parameter([1, 8], ov.Type.f32, name="x")
        ov.save_model(ov.Model([ops.relu(x)], [x], "relu"), xml)
    elif kind == "no-tokenizer":
        for f in ("tokenizer.json", "tokenizer_config.json"):
            (out / f).unlink()
    elif kind == "bad-config":
        (out / "config.json").write_text("[1, 2]")
    else:
        raise KeyError(kind)
    return out


@pytest.fixture(scope="session")
def broken_models(gptoss_dir, llama_dir, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("broken-models")
    return {k: make_broken_model(k, gptoss_dir, llama_dir, root / k) for k in BROKEN}


SECRET = "hf_triattnTestSecret0123456789"  # a fake token: it must never be printed


@pytest.fixture(scope="session")
def app_server(gptoss_dir, broken_models, tmp_path_factory):
    """Launched with --model-dir: the tiny gpt-oss model is the selected one; broken exports
    that pass the launch check (their files are all there) are offered too. HF_TOKEN is set to a
    fake secret, to check it is never shown."""
    extra = [a for k in ("garbage-xml", "truncated-bin", "foreign-bin", "not-an-llm", "no-tokenizer")
             for a in ("--model-dir", str(broken_models[k]))]
    server = AppServer(["--model-dir", str(gptoss_dir), *extra], tmp_path_factory.mktemp("app-cache"),
                       extra_env={"HF_TOKEN": SECRET})
    yield server
    server.stop()


@pytest.fixture(scope="session")
def default_app_server(tmp_path_factory):
    """Launched with no model and no address: the bundled SmolLM2-135M-Instruct, on the default address."""
    server = AppServer([], tmp_path_factory.mktemp("default-cache"), host=None)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium, headless, one per test module (tests/browser.py)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from browser import launch
    with sync_api.sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()
