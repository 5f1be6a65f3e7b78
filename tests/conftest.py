"""Tiny random-weight models, built once and reused (cached under .cache/test-models), each with its
transformers checkpoint in `pytorch/` so tests can compare against the PyTorch model; the CLI and
the web app run on them in subprocesses."""
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


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """`python app.py` in a subprocess on 127.0.0.1 and a free port."""

    def __init__(self, args, cache_dir: Path):
        import subprocess
        import sys
        import time
        import urllib.request
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SPACE_ID")}
        env.update(TRIATTN_CACHE=str(cache_dir), GRADIO_ANALYTICS_ENABLED="False", PYTHONWARNINGS="ignore")
        self.log = cache_dir / f"app-{self.port}.log"
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port",
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

    def cpu_percent(self, seconds: float = 1.0) -> float:
        import psutil
        return psutil.Process(self.proc.pid).cpu_percent(interval=seconds)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except Exception:
            self.proc.kill()


@pytest.fixture(scope="session")
def app_server(gptoss_dir, tmp_path_factory):
    """Launched with --model-dir: the tiny gpt-oss model is the selected one."""
    server = AppServer(["--model-dir", str(gptoss_dir)], tmp_path_factory.mktemp("app-cache"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def default_app_server(tmp_path_factory):
    """Launched with no model: the bundled demo model."""
    server = AppServer([], tmp_path_factory.mktemp("default-cache"))
    yield server
    server.stop()
