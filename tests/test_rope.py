"""RoPE in NumPy against transformers: frequencies, scaling, rotation, and the exported models' keys."""
import json

import numpy as np
import pytest

from triattn.core import rope
from triattn.openvino.model import load_model

SCALINGS = {
    "default": dict(rope_theta=10000.0),
    "linear": dict(rope_theta=10000.0, rope_scaling={"rope_type": "linear", "factor": 4.0}),
    "dynamic": dict(rope_theta=10000.0, rope_scaling={"rope_type": "dynamic", "factor": 2.0}),
    "llama3": dict(rope_theta=500000.0, rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                      "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
    "yarn-gpt-oss": dict(rope_theta=150000.0, rope_scaling={"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0,
                                                           "beta_slow": 1.0, "truncate": False,
                                                           "original_max_position_embeddings": 64}),
    "yarn-truncated": dict(rope_theta=10000.0, rope_scaling={"rope_type": "yarn", "factor": 4.0,
                                                            "original_max_position_embeddings": 64}),
}


def _hf(kind):
    """(config.json dict as transformers 5 writes it, the same in the legacy format, transformers' rotary)."""
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
    cfg = LlamaConfig(hidden_size=64, num_attention_heads=2, head_dim=32, max_position_embeddings=512,
                      **SCALINGS[kind])
    saved = json.loads(cfg.to_json_string())
    legacy = {k: v for k, v in saved.items() if k != "rope_parameters"}
    params = dict(saved["rope_parameters"])
    legacy["rope_theta"] = params.pop("rope_theta")
    legacy["rope_scaling"] = params if params["rope_type"] != "default" else None
    return saved, legacy, LlamaRotaryEmbedding(cfg)


@pytest.mark.parametrize("kind", list(SCALINGS))
def test_frequencies_and_scaling_match_transformers(kind):
    saved, legacy, hf = _hf(kind)
    for cfg in (saved, legacy):
        r = rope.from_config(cfg)
        assert r.rope_type == kind.split("-")[0]
        np.testing.assert_allclose(r.inv_freq, hf.inv_freq.numpy(), rtol=1e-6)
        assert r.attention_scaling == pytest.approx(hf.attention_scaling, rel=1e-12)
    if kind.startswith("yarn"):
        assert r.attention_scaling > 1.1  # the factor un-rotation must divide out


@pytest.mark.parametrize("kind", list(SCALINGS))
def test_rotate_matches_transformers_and_unrotate_inverts_it(kind):
    import torch
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb
    saved, _, hf = _hf(kind)
    r = rope.from_config(saved)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 40, 32))  # [heads, T, head_dim]
    pos = rng.integers(0, 500, size=40)
    cos, sin = hf(torch.zeros(1), torch.tensor(pos)[None])
    expected, _ = apply_rotary_pos_emb(torch.tensor(x, dtype=torch.float32)[None], torch.zeros(1, 1, 40, 32), cos, sin)
    # float32 angles of hundreds of radians: an ulp of inv_freq moves them by ~1e-5 rad
    np.testing.assert_allclose(r.rotate(x, pos), expected[0].numpy(), atol=1e-4)
    np.testing.assert_allclose(r.unrotate(r.rotate(x, pos), pos), x, atol=1e-12)
    np.testing.assert_allclose(r.rotate(r.unrotate(x, pos), pos), x, atol=1e-12)
    assert np.abs(r.rotate(x, pos) - x).max() > 0.1


def test_unsupported_rope_is_refused():
    cfg = {"head_dim": 8, "rope_scaling": {"rope_type": "longrope", "factor": 2.0}, "max_position_embeddings": 64}
    with pytest.raises(ValueError, match="'longrope' is not supported"):
        rope.from_config(cfg)


def test_unrotated_model_keys_and_queries_equal_pytorch_projections(model_dir):
    """The exported graph's post-RoPE keys and queries, un-rotated, are the q_proj/k_proj outputs."""
    import torch
    from transformers import AutoModelForCausalLM
    m = load_model(model_dir, precision="f32", queries=True)
    ids = np.arange(3, 60)
    s = m.new_session()
    s.reset()
    _, k0, _ = s.forward(ids[:40], np.arange(40), np.ones(40))
    q0 = s.queries()
    _, k1, _ = s.forward(ids[40:], np.arange(40, len(ids)), np.ones(len(ids)))  # a second chunk, later positions
    keys, queries = np.concatenate([k0, k1], axis=2), np.concatenate([q0, s.queries()], axis=2)
    pt = AutoModelForCausalLM.from_pretrained(model_dir / "pytorch", dtype=torch.float32).eval()
    seen = {}
    for i, layer in enumerate(pt.model.layers):
        for name in ("q_proj", "k_proj"):
            getattr(layer.self_attn, name).register_forward_hook(
                lambda mod, args, out, key=(name, i): seen.__setitem__(key, out[0].detach().numpy()))
    with torch.no_grad():
        pt(torch.tensor(ids)[None])
    ropes = rope.layer_ropes(m.info.config, m.info.n_layers)
    pos = np.arange(len(ids))
    for i in range(m.info.n_layers):
        q_pre = seen[("q_proj", i)].reshape(len(ids), -1, m.info.head_dim).transpose(1, 0, 2)
        k_pre = seen[("k_proj", i)].reshape(len(ids), -1, m.info.head_dim).transpose(1, 0, 2)
        np.testing.assert_allclose(ropes[i].unrotate(queries[i], pos), q_pre, atol=2e-6)
        np.testing.assert_allclose(ropes[i].unrotate(keys[i], pos), k_pre, atol=2e-6)
        assert np.abs(queries[i] - q_pre).max() > 1e-2  # RoPE really was applied


def test_band_norms_are_each_bands_magnitude_and_survive_rotation():
    """band_norms against hypot of the two halves, written out here, on a shape whose rows are no
    multiple of anything; rotating the vectors leaves them unchanged."""
    x = np.random.default_rng(5).normal(size=(3, 7, 10)).astype(np.float32)
    np.testing.assert_allclose(rope.band_norms(x), np.hypot(x[..., :5], x[..., 5:]), rtol=1e-6)
    r = rope.Rope(np.array([0.5, 0.1, 0.02, 0.004, 0.001], np.float32))
    rotated = r.rotate(x, np.arange(7)[None, :] * 100).astype(np.float32)
    np.testing.assert_allclose(rope.band_norms(rotated), rope.band_norms(x), rtol=1e-4)
