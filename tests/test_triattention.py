"""The TriAttention score against a plain loop, on a toy with a known answer, and its settings."""
import cmath
import math

import numpy as np
import pytest

from triattn.calibration import Calibration
from triattn.policies import ScoreContext, get_policy
from triattn.policies.triattention import TriAttentionSettings, head_scores, offsets
from triattn.rope import Rope, from_config

CONFIG = {"head_dim": 8, "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096,
          "rope_parameters": {"rope_type": "yarn", "rope_theta": 150000.0, "factor": 32.0, "beta_fast": 32.0,
                              "beta_slow": 1.0, "truncate": False, "original_max_position_embeddings": 4096}}


def _random(seed=0, layers=2, kv=2, group=2, length=7, dim=8):
    rng = np.random.default_rng(seed)
    keys = rng.normal(size=(layers, kv, length, dim)).astype(np.float32)
    positions = np.stack([np.sort(rng.choice(300, length, replace=False)) for _ in range(layers)])
    q_mean = rng.normal(size=(layers, kv * group, dim // 2)) + 1j * rng.normal(size=(layers, kv * group, dim // 2))
    q_abs = np.abs(q_mean) + rng.uniform(0.1, 1.0, size=q_mean.shape)
    return keys, positions, Calibration(q_mean, q_abs)


def _slow(keys, positions, query_position, cal, rope, offset_max):
    """The paper's formula, one head, key, band and offset at a time; un-rotation written out per band."""
    layers, kv, length, dim = keys.shape
    heads, half = cal.q_mean.shape[1], dim // 2
    ds = [2 ** i for i in range(64) if 2 ** i <= offset_max]
    raw = np.zeros((layers, heads, length))
    for layer in range(layers):
        for h in range(heads):
            g = h // (heads // kv)
            for t in range(length):
                p = int(positions[layer, t])
                total = 0.0
                for f in range(half):
                    w = float(rope.inv_freq[f])
                    rotated = complex(keys[layer, g, t, f], keys[layer, g, t, f + half]) / rope.attention_scaling
                    k = rotated * cmath.exp(-1j * w * p)  # pre-RoPE band
                    q = cal.q_mean[layer, h, f]
                    phi = cmath.phase(q) - cmath.phase(k)
                    trig = sum(abs(q) * abs(k) * math.cos(w * (query_position - p + d) + phi) for d in ds) / len(ds)
                    total += trig + (cal.q_abs_mean[layer, h, f] - abs(q)) * abs(k)
                raw[layer, h, t] = total
    combined = np.zeros((layers, length))
    for layer in range(layers):
        z = []
        for h in range(heads):
            mu = sum(raw[layer, h]) / length
            sd = math.sqrt(sum((x - mu) ** 2 for x in raw[layer, h]) / length)
            z.append([(x - mu) / sd for x in raw[layer, h]])
        for t in range(length):
            group_max = [max(z[h][t] for h in range(heads) if h // (heads // kv) == g) for g in range(kv)]
            combined[layer, t] = sum(group_max) / kv
    return raw, combined


@pytest.mark.parametrize("offset_max", [1, 100, 65536])
def test_vectorised_score_equals_loop(offset_max):
    keys, positions, cal = _random()
    rope = from_config(CONFIG)
    raw, combined = _slow(keys, positions, 310, cal, rope, offset_max)
    np.testing.assert_allclose(head_scores(keys, positions, 310, cal, [rope, rope], offset_max), raw,
                               rtol=1e-5, atol=1e-6)
    policy = get_policy("triattention")
    if offset_max == 65536:
        ctx = ScoreContext(query_position=310, model_config=CONFIG, calibration=cal)
        np.testing.assert_allclose(policy.score(keys, positions, ctx), combined, rtol=1e-5, atol=1e-6)
    assert np.ptp(combined, axis=1).min() > 0.5  # the scores do rank the keys


@pytest.mark.parametrize("offset_max", [1, 4])
def test_one_frequency_prefers_the_predicted_distance(offset_max):
    """One band, w = 2pi/32; query centre at angle alpha, every key at pre-RoPE angle beta. The
    offset-averaged term peaks where w D + alpha - beta + arg(mean_d e^{iwd}) = 0: there D = 8."""
    w, alpha = 2 * math.pi / 32, 0.3
    rope = Rope(np.array([w], np.float32))
    mean_phase = cmath.phase(np.mean([cmath.exp(1j * w * d) for d in offsets(offset_max)]))
    beta = alpha + 8 * w + mean_phase
    positions = np.arange(32)[None]  # distances 32 .. 1 from query position 32
    pre = np.tile([math.cos(beta), math.sin(beta)], (32, 1))[None, None]
    keys = rope.rotate(pre, positions[:, None, :])
    cal = Calibration(np.array([[[cmath.exp(1j * alpha)]]]), np.array([[[1.0]]]))
    scores = head_scores(keys, positions, 32, cal, [rope], offset_max)[0, 0]
    assert 32 - int(np.argmax(scores)) == 8
    assert scores.max() == pytest.approx(1.0 * abs(np.mean([cmath.exp(1j * w * d) for d in offsets(offset_max)])))


def test_offsets_and_settings():
    assert offsets(65536).tolist() == [2.0 ** i for i in range(17)]
    assert offsets(100).tolist() == [1, 2, 4, 8, 16, 32, 64]
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="offset_max"):
            TriAttentionSettings(offset_max=bad)


def test_needs_matching_calibration():
    keys, positions, cal = _random()
    policy = get_policy("triattention")
    with pytest.raises(ValueError, match="needs calibration"):
        policy.score(keys, positions, ScoreContext(query_position=310, model_config=CONFIG))
    with pytest.raises(ValueError, match="does not fit keys"):
        policy.score(keys[:1], positions[:1], ScoreContext(query_position=310, model_config=CONFIG, calibration=cal))

