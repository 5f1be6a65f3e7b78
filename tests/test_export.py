"""export: offline failures are fast and one line; ids are checked before any network use; the
optimum-intel conversion applies the requested weight format."""
import socket

import pytest
from conftest import one_line

from triattn.openvino.export import check_model_id, export_to_openvino, quantization_config


@pytest.fixture
def silent_hub():
    """A hub endpoint that accepts connections and never answers (a hanging network)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    s.setblocking(False)
    yield s
    s.close()


def test_unreachable_hub_fails_with_one_line(cli, silent_hub, tmp_path):
    """The hub never answers: the command gives up on its own (TRIATTN_HUB_TIMEOUT), not by the
    test's process timeout, with one line and nothing written."""
    r = cli("export", "--model-id", "OpenVINO/gpt-oss-20b-int4-ov", "--output-dir", tmp_path / "m",
            env_extra={"HF_ENDPOINT": f"http://127.0.0.1:{silent_hub.getsockname()[1]}", "TRIATTN_HUB_TIMEOUT": "2"})
    assert r.returncode == 2 and "cannot reach the model hub" in one_line(r.stderr)
    assert not (tmp_path / "m").exists()


def test_offline_mode_fails_with_one_line(cli, tmp_path):
    r = cli("export", "--model-id", "OpenVINO/gpt-oss-20b-int4-ov", "--output-dir", tmp_path / "m",
            env_extra={"HF_HUB_OFFLINE": "1"})
    assert r.returncode == 2 and "HF_HUB_OFFLINE" in one_line(r.stderr)


@pytest.mark.parametrize("model_id", ["a/b/c", "../x", "", "foo--bar", "x/.y", "org/name.", "a b/c"])
def test_malformed_ids_exit_2_without_network(cli, silent_hub, tmp_path, model_id):
    r = cli("export", "--model-id", model_id, "--output-dir", tmp_path / "m",
            env_extra={"HF_ENDPOINT": f"http://127.0.0.1:{silent_hub.getsockname()[1]}"})
    assert r.returncode == 2 and "not a model id" in one_line(r.stderr)
    with pytest.raises(BlockingIOError):  # nobody connected
        silent_hub.accept()


def test_refuses_an_output_dir_that_is_not_an_export(cli, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    r = cli("export", "--model-id", "OpenVINO/x", "--output-dir", tmp_path, env_extra={"HF_HUB_OFFLINE": "1"})
    assert r.returncode == 2 and "is not an OpenVINO export" in one_line(r.stderr)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_good_ids_pass():
    assert check_model_id("OpenVINO/gpt-oss-20b-int4-ov") == "OpenVINO/gpt-oss-20b-int4-ov"
    assert check_model_id("gpt2") == "gpt2"


def test_quantization_config_per_format():
    assert quantization_config("fp16", "x/y") is None
    assert quantization_config("int8", "x/y") == {"bits": 8, "sym": False}
    assert quantization_config("int4", "x/y")["bits"] == 4
    # optimum's own recipe for gpt-oss: int4 experts, int8 attention and router
    assert set(quantization_config("int4", "openai/gpt-oss-20b")) == {"quantization_config1", "quantization_config2"}


def test_int4_conversion_of_a_local_checkpoint(tmp_path):
    import openvino as ov
    import torch
    from transformers import AutoModelForCausalLM

    from triattn.core.config import EvictionConfig
    from triattn.core.engine import generate
    from triattn.openvino.model import load_model
    from triattn.openvino.tiny import build_config, train_tokenizer

    src = tmp_path / "hf"
    tok = train_tokenizer(512, src)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(build_config("llama", "tiny", len(tok), tok)).save_pretrained(src)
    export_to_openvino(src, tmp_path / "ov", "int4")
    ir = ov.Core().read_model(tmp_path / "ov" / "openvino_model.xml")
    types = {op.get_element_type().get_type_name() for op in ir.get_ops() if op.get_type_name() == "Constant"}
    assert "u4" in types, types
    tokens = [r.token for r in generate(load_model(tmp_path / "ov").new_session(), [3, 4, 5],
                                        EvictionConfig(policy="none"), max_new_tokens=5)]
    assert len(tokens) >= 1 and all(0 <= t < len(tok) for t in tokens)
    assert not (tmp_path / "ov.partial").exists()
    assert sorted(p.name for p in (tmp_path / "ov").glob("openvino_*.xml")) == [
        "openvino_detokenizer.xml", "openvino_model.xml", "openvino_tokenizer.xml"]


def test_exports_hold_a_working_openvino_tokenizer(model_dir, tmp_path):
    """The builder (through export_to_openvino) writes openvino_tokenizer/detokenizer.xml, and they
    encode and decode like the transformers tokenizer."""
    import numpy as np
    import openvino as ov
    import openvino_tokenizers  # noqa: F401  (registers the tokenizer ops)
    from transformers import AutoTokenizer

    from triattn.openvino.export import missing_ov_tokenizer
    assert missing_ov_tokenizer(model_dir) == []
    text = "def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1)  # ünïcode"
    core = ov.Core()
    ids = core.compile_model(model_dir / "openvino_tokenizer.xml", "CPU")([text])["input_ids"][0].tolist()
    assert ids == AutoTokenizer.from_pretrained(model_dir).encode(text, add_special_tokens=False)
    detok = core.compile_model(model_dir / "openvino_detokenizer.xml", "CPU")
    assert list(detok(np.array([ids], np.int64)).values())[0].tolist() == [text]
    (tmp_path / "openvino_detokenizer.xml").write_text("<net/>")
    assert missing_ov_tokenizer(tmp_path) == ["openvino_tokenizer.xml"]


def test_smollm2_from_the_hub_gets_the_bundled_models_settings(monkeypatch, tmp_path):
    """The hub conversion of HuggingFaceTB/SmolLM2-135M-Instruct uses the recipe the offline build
    used for assets/smollm2-135m-instruct (checked without a network: the hub and optimum are stubbed)."""
    import json

    from triattn.openvino import export
    from triattn.core.runs import ENGLISH_MODEL
    q = quantization_config("int4", export.SMOLLM2)
    assert (q["bits"], q["sym"], q["group_size"], q["quant_method"], q["scale_estimation"]) == (4, False, 32, "awq", True)
    assert q["num_samples"] == len(q["dataset"]) > 10 and all(isinstance(t, str) for t in q["dataset"])
    shipped = json.loads((ENGLISH_MODEL / "openvino_config.json").read_text())["quantization_config"]
    assert shipped["dataset"] == q["dataset"] and shipped["default_config"]["quant_method"] == "awq"
    import openvino as ov
    int4 = [op for op in ov.Core().read_model(ENGLISH_MODEL / "openvino_model.xml").get_ops()
            if op.get_type_name() == "Constant" and op.get_element_type().get_type_name() == "u4"]
    weights = [op for op in int4 if not op.get_friendly_name().endswith("zero_point")]
    assert len(weights) == 210 and all(list(op.get_output_shape(0))[-1] == 32 for op in weights)  # groups of 32
    seen = {}
    monkeypatch.setattr(export, "hub_files", lambda model_id: ["config.json", "model.safetensors"])
    monkeypatch.setattr(export, "export_to_openvino", lambda src, out, fmt: seen.update(src=src, fmt=fmt))
    export.export_model(export.SMOLLM2, tmp_path / "out")
    assert seen == {"src": export.SMOLLM2, "fmt": "int4"}
    assert json.loads((ENGLISH_MODEL / "triattn.json").read_text()) == export.RECIPES[export.SMOLLM2]["settings"]


def test_precision_setting_of_a_model_folder(tmp_path):
    from triattn.openvino.settings import model_precision, write_settings
    assert model_precision(tmp_path) == "default"
    write_settings(tmp_path, {"precision": "f32"})
    assert model_precision(tmp_path) == "f32" and model_precision(tmp_path, "default") == "default"
    (tmp_path / "triattn.json").write_text("{not json")
    assert model_precision(tmp_path) == "default"
