"""What keeps a long prompt from taking the process down or its memory up.

- `CompiledModel.release_memory()` corrupted the heap here twice (after decode steps, and on the
  page when one run cut its prompt while the other run's request was live): no module may call it.
- The logits are computed for the last position only: the graph slices the hidden states BEFORE
  the LM head, so a T-token prefill multiplies one row by the head, not T rows.
"""
import re
from pathlib import Path

import numpy as np

import triattn
from triattn.openvino.instrument import _lm_head, instrument
from triattn.openvino.model import read_info

PACKAGE = Path(triattn.__file__).resolve().parent


def test_no_module_releases_the_compiled_models_memory():
    calls = [f"{p.relative_to(PACKAGE)}:{n}" for p in PACKAGE.rglob("*.py")
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if re.search(r"\.release_memory\s*\(", line)]
    assert calls == []


def test_lm_head_multiplies_only_the_last_position(model_dir):
    """The head's input is [batch, 1, hidden] whatever the prompt length, and the logits output is
    [batch, 1, vocab]."""
    import openvino as ov
    model = ov.Core().read_model(Path(model_dir) / "openvino_model.xml")
    full = _lm_head(model).input_value(0).get_partial_shape()
    assert full[1].is_dynamic  # before: every position goes through the head
    model = instrument(model, read_info(model_dir).n_layers)
    head = _lm_head(model)
    assert head.input_value(0).get_partial_shape()[1].get_length() == 1
    assert model.output("logits").get_partial_shape()[1].get_length() == 1


def test_last_position_logits_match_a_full_forward(model_dir):
    """The sliced graph gives the same last-position logits as PyTorch's full forward."""
    torch = __import__("pytest").importorskip("torch")
    from transformers import AutoModelForCausalLM
    from triattn.openvino.model import LoadedModel
    ids = np.arange(3, 40)
    loaded = LoadedModel(model_dir, "CPU", "f32")
    s = loaded.new_session()
    s.reset()
    logits, _, _ = s.forward(ids, np.arange(ids.size), np.ones(ids.size, np.int64))
    s.close()
    ref = AutoModelForCausalLM.from_pretrained(Path(model_dir) / "pytorch", dtype=torch.float32)
    with torch.no_grad():
        expected = ref(torch.tensor(ids[None])).logits[0, -1].numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4)
