"""bench.execute: step-interleaved runs produce exactly what whole runs produce, per mode and prompt."""
import pytest

from triattn.bench import plan as bench
from triattn.core.config import SamplingConfig
from triattn.openvino.model import load_model
from triattn.core.text import load_tokenizer


def test_step_interleaving_changes_no_token(llama_dir):
    model, tok = load_model(llama_dir), load_tokenizer(llama_dir)
    modes = bench.make_modes(["knorm", "streaming"], ["hard", "mask"], [24], 4, 2, 4)
    plan = bench.prompt_plan([bench.Prompt("a", list(range(3, 33))), bench.Prompt("b", list(range(40, 50)))], modes)
    calib = bench.calibrations(model, modes)
    out = {}
    for how in ("runs", "steps"):
        raw, tokens = bench.execute(model, tok, plan, SamplingConfig(), 30, 2, calib, interleave=how)
        out[how] = (sorted((x["run"], x["prompt"], x["mode"], tuple(x["token_ids"])) for x in raw), tokens)
        assert any(x["metrics"]["prune_events"] for x in raw)
    assert out["runs"] == out["steps"]
    with pytest.raises(ValueError, match="interleave"):
        bench.execute(model, tok, plan, SamplingConfig(), 4, 1, calib, interleave="tokens")
