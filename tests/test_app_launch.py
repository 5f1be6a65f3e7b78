"""`python app.py` launch options: address, port, browser, Space settings, bad model folders."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("triattn_app", ROOT / "app.py")
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)


@pytest.fixture
def env(monkeypatch):
    for k in ("GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT", "SPACE_ID", "DISPLAY", "WAYLAND_DISPLAY", "DEVICE"):
        monkeypatch.delenv(k, raising=False)
    return monkeypatch


def test_defaults_bind_this_machine_only(env):
    a = app.parse_args([])
    assert a.host == "127.0.0.1" and a.port is None and not a.share and a.model_dir == [] and a.device == "CPU"


def test_gradio_env_vars_and_flags(env):
    env.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    env.setenv("GRADIO_SERVER_PORT", "7999")
    env.setenv("DEVICE", "GPU")
    a = app.parse_args([])
    assert (a.host, a.port, a.device) == ("0.0.0.0", 7999, "GPU")
    a = app.parse_args(["--host", "127.0.0.1", "--port", "8001", "--share", "--model-dir", "a", "--model-dir", "b"])
    assert (a.host, a.port, a.share, a.model_dir) == ("127.0.0.1", 8001, True, ["a", "b"])


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="a desktop always has a browser there")
def test_browser_opens_only_with_a_display_and_never_on_a_space(env):
    assert not app.wants_browser(app.parse_args([]))
    env.setenv("DISPLAY", ":0")
    assert app.wants_browser(app.parse_args([]))
    assert not app.wants_browser(app.parse_args(["--no-browser"]))
    env.setenv("SPACE_ID", "someone/triattn")
    assert not app.wants_browser(app.parse_args([]))


def test_a_missing_model_dir_is_one_line_and_exit_2(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "app.py"), "--model-dir", str(tmp_path / "nope")],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"error: model directory not found: {tmp_path / 'nope'}"]


def test_absent_device_or_partial_model_dir_is_one_line_and_exit_2(gptoss_dir, tmp_path):
    import shutil
    partial = tmp_path / "partial"
    shutil.copytree(gptoss_dir, partial, ignore=shutil.ignore_patterns("pytorch", "openvino_model.bin"))
    for args, message in ((["--device", "no-such-device"], "error: device 'NO-SUCH-DEVICE' is not available here"),
                          (["--model-dir", str(partial)], "(missing openvino_model.bin)")):
        r = subprocess.run([sys.executable, str(ROOT / "app.py"), *args], capture_output=True, text=True,
                           timeout=120, cwd=ROOT)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and message in lines[0], r.stderr


def test_the_default_address_is_this_machine_only(default_app_server):
    import psutil
    listening = [c.laddr for c in psutil.Process(default_app_server.proc.pid).net_connections("inet")
                 if c.status == psutil.CONN_LISTEN]
    assert listening and all(addr.ip == "127.0.0.1" for addr in listening), listening
