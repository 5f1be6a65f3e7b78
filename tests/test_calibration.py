"""Calibration: statistics from the OpenVINO model equal PyTorch's; files find their model, and only it."""
import shutil

import numpy as np
import pytest

from triattn.core import calibration
from triattn.core.text import load_tokenizer

TEXT = calibration.DEFAULT_TEXT.read_text(encoding="utf-8")[:4000]


@pytest.fixture
def text_file(tmp_path):
    p = tmp_path / "sample.txt"
    p.write_text(TEXT, encoding="utf-8")
    return p


def _pytorch_stats(model_dir, ids, segment):
    import torch
    from transformers import AutoModelForCausalLM
    pt = AutoModelForCausalLM.from_pretrained(model_dir / "pytorch", dtype=torch.float32).eval()
    seen = {}
    for i, layer in enumerate(pt.model.layers):
        layer.self_attn.q_proj.register_forward_hook(
            lambda mod, args, out, i=i: seen.__setitem__(i, out[0].detach().numpy().astype(np.float64)))
    parts = []
    with torch.no_grad():
        for start in range(0, len(ids), segment):  # each segment its own pass, from position 0
            pt(torch.tensor(ids[start:start + segment])[None])
            parts.append(np.stack([seen[i] for i in range(len(seen))]))  # [layers, T, heads * D]
    head_dim, half = pt.config.head_dim, pt.config.head_dim // 2
    q = np.concatenate(parts, axis=1).reshape(len(parts[0]), len(ids), -1, head_dim)  # [layers, T, heads, D]
    bands = q[..., :half] + 1j * q[..., half:]
    return bands.mean(axis=1), np.abs(bands).mean(axis=1)


def test_openvino_statistics_equal_pytorch(model_dir, text_file, tmp_path):
    cal, path = calibration.calibrate(model_dir, text_file, max_tokens=300, output=tmp_path / "c.npz",
                                      precision="f32", segment=64, progress=False)  # 5 segments, the last partial
    ids = calibration.text_tokens(load_tokenizer(model_dir), text_file, 300)
    assert cal.meta["tokens"] == len(ids) == 300
    q_mean, q_abs = _pytorch_stats(model_dir, ids, 64)
    np.testing.assert_allclose(cal.q_mean, q_mean, atol=2e-6)
    np.testing.assert_allclose(cal.q_abs_mean, q_abs, atol=2e-6)
    assert np.abs(q_mean).min() < np.abs(q_abs).min()  # the two statistics differ (|E q| < E|q|)
    loaded = calibration.load(path)
    np.testing.assert_array_equal(loaded.q_mean, cal.q_mean)
    assert loaded.meta["fingerprint"] == calibration.fingerprint(model_dir)
    assert loaded.meta["model_dir"] == str(model_dir.resolve())


@pytest.fixture
def model_copy(gptoss_dir, tmp_path):
    d = tmp_path / "model"
    shutil.copytree(gptoss_dir, d, ignore=shutil.ignore_patterns("pytorch", calibration.FILENAME))
    return d


def test_files_belong_to_one_model(model_copy, text_file, monkeypatch, tmp_path):
    monkeypatch.setattr("triattn.core.calibration.CACHE", tmp_path / "cache")
    assert calibration.find(model_copy) is None
    _, path = calibration.calibrate(model_copy, text_file, max_tokens=50, progress=False)
    assert path == model_copy / calibration.FILENAME and calibration.find(model_copy) == path
    with open(model_copy / "config.json", "a") as f:
        f.write("\n")  # a different model now
    assert calibration.find(model_copy) is None
    monkeypatch.setattr(calibration.os, "access", lambda *a: False)  # a read-only model directory
    _, path = calibration.calibrate(model_copy, text_file, max_tokens=50, progress=False)
    assert path.parent == tmp_path / "cache" / "calibration" and calibration.find(model_copy) == path


def test_large_models_ask_for_the_command_small_ones_calibrate_themselves(model_copy, monkeypatch, tmp_path):
    monkeypatch.setattr("triattn.core.calibration.CACHE", tmp_path / "cache")
    monkeypatch.setattr(calibration, "DEFAULT_MAX_TOKENS", 64)
    monkeypatch.setattr(calibration, "AUTO_MAX_BYTES", 1000)
    with pytest.raises(calibration.CalibrationMissing, match=f"python -m triattn calibrate --model-dir {model_copy}"):
        calibration.load_or_make(model_copy)
    monkeypatch.setattr(calibration, "AUTO_MAX_BYTES", 10**9)
    cal = calibration.load_or_make(model_copy)
    assert cal.meta["tokens"] == 64 and calibration.find(model_copy) is not None


def test_unreadable_file_is_reported(tmp_path):
    bad = tmp_path / "x.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="cannot read the calibration file"):
        calibration.load(bad)


def test_calibrate_command(gptoss_dir, text_file, tmp_path, capsys):
    from triattn.cli import main
    out = tmp_path / "stats.npz"
    assert main(["calibrate", "--model-dir", str(gptoss_dir), "--text", str(text_file), "--max-tokens", "40",
                 "--output", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"{out}  (40 tokens, 4 layers x 4 query heads x 8 bands)")
    assert calibration.load(out).meta["tokens"] == 40
    assert main(["calibrate", "--model-dir", str(gptoss_dir), "--text", str(tmp_path / "none.txt")]) == 2
    assert "text file not found" in capsys.readouterr().err
