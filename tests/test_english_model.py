"""The bundled SmolLM2-135M-Instruct: it answers, its tokenizers agree and round-trip, it runs at the
precision its folder names, it ships its calibration, and with a budget that holds the whole
sequence every policy reproduces the baseline token for token."""
import json

import numpy as np
import pytest

from triattn.core.config import EvictionConfig
from triattn.policies import list_policies
from triattn.core.runs import ENGLISH_MODEL, run
from triattn.core.text import encode_prompt, load_tokenizer

TEXTS = ["The capital of France is Paris.",
         "  Two leading spaces,\ttabs,\n\nblank lines and a trailing space ",
         "In 1969, 3 astronauts flew 384,400 km; π ≈ 3.14159.",
         "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
         "Café, naïve, Straße, 東京, Москва, emoji 🙂."]
FRANCE = "What is the capital of France?"


@pytest.fixture(scope="module")
def model_and_tok():
    from triattn.openvino.model import load_model
    return load_model(ENGLISH_MODEL, form="paged"), load_tokenizer(ENGLISH_MODEL)


def test_it_is_bundled_small_and_licensed():
    from triattn.openvino.model import read_info
    info = read_info(ENGLISH_MODEL)
    assert (info.model_type, info.n_layers, info.kv_heads, info.q_heads) == ("llama", 30, 3, 9)
    assert info.eos_token_ids == (2,)
    assert sum(f.stat().st_size for f in ENGLISH_MODEL.iterdir() if f.is_file()) <= 100e6
    assert "Apache License" in (ENGLISH_MODEL / "LICENSE").read_text()
    assert "SmolLM2" in (ENGLISH_MODEL / "NOTICE").read_text()


def test_answers_the_capital_of_france(model_and_tok):
    model, tok = model_and_tok
    result = run(model, tok, encode_prompt(tok, FRANCE), EvictionConfig(policy="none"), max_new_tokens=32)
    assert "Paris" in result.text, result.text
    assert result.token_ids[-1] == tok.eos_token_id, "the answer should end the turn with <|im_end|>"


def test_runs_at_the_precision_its_folder_names(model_and_tok):
    from triattn.openvino.settings import model_precision
    model, _ = model_and_tok
    assert json.loads((ENGLISH_MODEL / "triattn.json").read_text())["precision"] == "f32"
    assert model_precision(ENGLISH_MODEL) == model.precision == "f32"
    assert model_precision(ENGLISH_MODEL, "default") == "default"


def test_tokenizer_round_trips_and_matches_its_backend(model_and_tok):
    _, tok = model_and_tok
    assert tok.eos_token == tok.pad_token == "<|im_end|>" and tok.eos_token_id == 2
    for text in TEXTS:
        ids = tok.encode(text)
        assert ids == tok.backend_tokenizer.encode(text).ids
        assert tok.decode(ids) == text
        assert 0 not in ids, "a space or newline encoded as <|endoftext|>"
    assert tok.encode("Hello")[0] != tok.bos_token_id, "no BOS token is added"
    chat = encode_prompt(tok, FRANCE)
    assert tok.decode(chat).startswith("<|im_start|>system\n") and tok.decode(chat).endswith("<|im_start|>assistant\n")


def test_openvino_tokenizer_matches_transformers(model_and_tok):
    import openvino as ov
    import openvino_tokenizers  # noqa: F401  (registers the tokenizer ops)
    _, tok = model_and_tok
    core = ov.Core()
    enc = core.compile_model(ENGLISH_MODEL / "openvino_tokenizer.xml", "CPU")
    dec = core.compile_model(ENGLISH_MODEL / "openvino_detokenizer.xml", "CPU")
    for text in TEXTS:
        ids = enc([text])["input_ids"][0].tolist()
        assert ids == tok.encode(text), text
        assert list(dec(np.array([ids], np.int64)).values())[0].tolist() == [text]


def test_ships_its_calibration_so_no_click_calibrates():
    from triattn.core import calibration
    path = calibration.find(ENGLISH_MODEL)
    assert path is not None and path.parent == ENGLISH_MODEL
    assert "python-reference-sample" in str(calibration.load(path).meta["text"])


# ov-genai-rkv refuses to run with this GenAI (tests/test_genai_modes.py checks its refusal)
@pytest.mark.parametrize("policy", [p for p in list_policies() if p not in ("none", "ov-genai-rkv")])
def test_a_budget_that_holds_everything_changes_nothing(model_and_tok, policy):
    model, tok = model_and_tok
    ids = encode_prompt(tok, "Explain photosynthesis in simple words.")
    new = 24
    # ov-genai's reference is GenAI itself with a cache far larger than the run: its paged-attention
    # kernel parts from our stateful model's numbers here (new token 16, even at f32, whatever the budget)
    reference = EvictionConfig(policy="ov-genai", budget=4096) if policy == "ov-genai" else EvictionConfig(policy="none")
    base = run(model, tok, ids, reference, max_new_tokens=new)
    budget = 32 * (1 + (len(ids) + new) // 32)  # whole blocks, so ov-genai needs no rounding up
    pruned = run(model, tok, ids, EvictionConfig(policy=policy, budget=budget), max_new_tokens=new)
    assert pruned.token_ids == base.token_ids and len(base.token_ids) == new
