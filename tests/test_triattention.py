"""The TriAttention score against a plain loop, on a toy with a known answer, and its settings."""
import cmath
import math

import numpy as np
import pytest

from triattn.core.calibration import Calibration
from triattn.policies import ScoreContext, get_policy
from triattn.policies.triattention import (PAPER_OFFSET_MAX, RopeTables, TriAttention, group_max_z, head_scores,
                                           offsets, rope_tables)
from triattn.core.rope import Rope, from_config

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


def _unrotated(keys, positions, query_position, cal, ropes, offset_max):
    """The previous vectorised form: un-rotate each key to pre-RoPE, then the formula, float64."""
    layers, kv, length, dim = keys.shape
    group = cal.q_mean.shape[1] // kv
    m = np.exp(1j * np.outer(offsets(offset_max), ropes[0].inv_freq.astype(np.float64))).mean(axis=0)
    out = np.empty((layers, cal.q_mean.shape[1], length))
    for i in range(layers):
        w = ropes[i].inv_freq.astype(np.float64)
        pre = ropes[i].unrotate(keys[i], positions[i][None, :])
        k = pre[..., :dim // 2] + 1j * pre[..., dim // 2:]
        z = np.conj(k) * np.exp(1j * (query_position - positions[i]).astype(np.float64)[:, None] * w)
        trig = np.real((cal.q_mean[i] * m).reshape(kv, group, -1) @ z.transpose(0, 2, 1))
        norm = (cal.q_abs_mean[i] - np.abs(cal.q_mean[i])).reshape(kv, group, -1) @ np.abs(k).transpose(0, 2, 1)
        out[i] = (trig + norm).reshape(-1, length)
    return out


def _ctx(cal, query_position=310, **kw):
    return ScoreContext(query_position=query_position, model_config=CONFIG, calibration=cal, **kw)


@pytest.mark.parametrize("offset_max", [1, 100, 65536])
def test_fast_form_equals_loop(offset_max):
    """Post-RoPE dot products (no un-rotation) against the paper's formula written as a loop."""
    keys, positions, cal = _random()
    rope = from_config(CONFIG)
    raw, combined = _slow(keys, positions, 310, cal, rope, offset_max)
    np.testing.assert_allclose(head_scores(keys, 310, cal, RopeTables.of([rope, rope], offset_max)), raw,
                               rtol=1e-4, atol=1e-4)
    if offset_max == 65536:
        layer = get_policy("triattention")
        np.testing.assert_allclose(layer.score(keys, positions, _ctx(cal)), combined, rtol=1e-4, atol=1e-4)
    assert np.ptp(combined, axis=1).min() > 0.5  # the scores do rank the keys


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_form_equals_unrotated_form_at_gpt_oss_shapes(seed):
    """head_dim 64, YaRN as gpt-oss configures it, 8 query heads per KV head, positions up to 1000:
    within 1e-4 of the score's scale (the forms differ only by the float32 rounding of RoPE angles)."""
    cfg = dict(CONFIG, head_dim=64, num_attention_heads=16, num_key_value_heads=2)
    keys, _, cal = _random(seed, layers=2, kv=2, group=8, length=64, dim=64)
    rng = np.random.default_rng(seed)
    positions = np.stack([np.sort(rng.choice(1000, 64, replace=False)) for _ in range(2)])
    rope = from_config(cfg)
    keys = np.stack([rope.rotate(keys[i], positions[i][None, :]) for i in range(2)]).astype(np.float32)
    slow = _unrotated(keys, positions, 1000, cal, [rope, rope], PAPER_OFFSET_MAX)
    fast = head_scores(keys, 1000, cal, RopeTables.of([rope, rope], PAPER_OFFSET_MAX))
    assert fast.dtype == np.float32
    np.testing.assert_allclose(fast, slow, atol=1e-4 * np.abs(slow).max())


def test_per_kv_head_is_the_mean_over_layers_of_the_group_max():
    """The reference's per-head rule: z-score per query head, max over the KV head's query heads,
    mean over layers; every layer gets the same [kv_heads, L] scores."""
    keys, positions, cal = _random(length=9)
    positions = np.repeat(positions[:1, None, :], 2, axis=1).repeat(2, axis=0)  # same tokens everywhere
    rope = from_config(CONFIG)
    raw, _ = _slow(keys, positions[:, 0], 310, cal, rope, PAPER_OFFSET_MAX)
    z = (raw - raw.mean(-1, keepdims=True)) / raw.std(-1, keepdims=True)
    want = z.reshape(2, 2, 2, -1).max(axis=2).mean(axis=0)
    got = get_policy("triattention-head").score(keys, positions, _ctx(cal))
    assert got.shape == (2, 2, 9)
    np.testing.assert_allclose(got, np.broadcast_to(want, got.shape), rtol=1e-4, atol=1e-4)
    only_second = get_policy("triattention-head").score(keys, positions, _ctx(cal, layers=np.array([False, True])))
    np.testing.assert_allclose(only_second[0], z[1].reshape(2, 2, -1).max(axis=1), rtol=1e-4, atol=1e-4)


def test_per_kv_head_refuses_layers_that_hold_different_tokens():
    keys, positions, cal = _random()
    per_head = np.repeat(positions[:, None, :], 2, axis=1)  # the two layers hold different positions
    with pytest.raises(ValueError, match="same tokens per KV head"):
        get_policy("triattention-head").score(keys, per_head, _ctx(cal))


@pytest.mark.parametrize("name", ["triattention", "triattention-head"])
def test_dead_and_pinned_slots_do_not_count_in_the_z_scores(name):
    """Scores of the competing slots are the same as if the other slots were not there at all."""
    keys, positions, cal = _random(length=10)
    positions = np.repeat(positions[:1], 2, axis=0)
    scored = np.ones((2, 10), bool)
    scored[:, [0, 4, 7]] = False
    policy = get_policy(name)
    if policy.per_kv_head:
        positions, scored = (np.repeat(a[:, None, :], 2, axis=1) for a in (positions, scored))
    full = policy.score(keys, positions, _ctx(cal, scored=scored))
    live = scored[(0,) * (scored.ndim - 1)]
    alone = policy.score(np.ascontiguousarray(keys[:, :, live]), positions[..., live], _ctx(cal))
    np.testing.assert_allclose(full[..., live], alone, rtol=1e-4, atol=1e-5)


def test_rope_tables_are_built_once_per_model():
    assert rope_tables(CONFIG, 2, PAPER_OFFSET_MAX) is rope_tables(dict(CONFIG), 2, PAPER_OFFSET_MAX)


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
    scores = head_scores(keys, 32, cal, RopeTables.of([rope], offset_max))[0, 0]
    assert 32 - int(np.argmax(scores)) == 8
    assert scores.max() == pytest.approx(1.0 * abs(np.mean([cmath.exp(1j * w * d) for d in offsets(offset_max)])))


def test_offsets_and_settings():
    assert offsets(65536).tolist() == [2.0 ** i for i in range(17)]
    assert offsets(100).tolist() == [1, 2, 4, 8, 16, 32, 64]
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="offset_max"):
            TriAttention(offset_max=bad)


def test_needs_matching_calibration():
    keys, positions, cal = _random()
    policy = get_policy("triattention")
    with pytest.raises(ValueError, match="needs calibration"):
        policy.score(keys, positions, ScoreContext(query_position=310, model_config=CONFIG))
    with pytest.raises(ValueError, match="does not fit keys"):
        policy.score(keys[:1], positions[:1], _ctx(cal))



@pytest.mark.parametrize("per_head", [False, True])
def test_group_max_z_holds_float64_precision_over_a_large_offset(per_head):
    """Scores 1e4 apart from their spread, over 5,000 tokens, some not scored: the in-place float32
    z-scores and group max match a float64 computation written out here."""
    rng = np.random.default_rng(3)
    raw = (1e4 + rng.normal(size=(2, 3, 5000))).astype(np.float32)
    scored = rng.random((2, 5000) if per_head else 5000) > 0.2
    mask = np.broadcast_to(scored.reshape(-1, 1, 5000), raw.shape)
    x = raw.astype(np.float64)
    mu = np.where(mask, x, 0).sum(-1, keepdims=True) / mask.sum(-1, keepdims=True)
    sd = np.sqrt(np.where(mask, (x - mu) ** 2, 0).sum(-1, keepdims=True) / mask.sum(-1, keepdims=True))
    want = ((x - mu) / sd).max(axis=1)
    np.testing.assert_allclose(group_max_z(raw.copy(), scored), want, atol=1e-3)


@pytest.mark.parametrize("name", ["triattention", "triattention-head"])
def test_band_norms_kept_by_the_store_give_the_same_scores(name):
    """ScoreContext.key_rows (each key followed by its |k_f|, written out here) replace the norms
    taken from the keys."""
    keys, positions, cal = _random(length=11, group=4)
    positions = np.repeat(positions[:1], 2, axis=0)
    policy = get_policy(name)
    if policy.per_kv_head:
        positions = np.repeat(positions[:, None, :], 2, axis=1)
    norms = np.sqrt(keys[..., :4].astype(np.float64) ** 2 + keys[..., 4:] ** 2).astype(np.float32)
    rows = np.concatenate([keys, norms], axis=-1)
    cfg = dict(CONFIG, num_attention_heads=8)
    got = policy.score(rows[..., :8], positions, ScoreContext(310, model_config=cfg, calibration=cal, key_rows=rows))
    want = policy.score(keys, positions, ScoreContext(310, model_config=cfg, calibration=cal))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    rope = from_config(cfg)
    np.testing.assert_allclose(head_scores(keys, 310, cal, RopeTables.of([rope, rope], 64), key_rows=rows),
                               head_scores(keys, 310, cal, RopeTables.of([rope, rope], 64)), rtol=1e-5, atol=1e-5)
