"""Each policy's scores against a plain loop written without vectorisation."""
import math

import numpy as np
import pytest

from triattn.policies import ScoreContext, get_policy, list_policies


def _ctx(seed=0):
    return ScoreContext(query_position=50, seed=seed)


def _mean_norm_loop(keys):
    layers, heads, length, dim = keys.shape
    out = np.zeros((layers, length))
    for layer in range(layers):
        for t in range(length):
            total = 0.0
            for h in range(heads):
                total += math.sqrt(sum(float(keys[layer, h, t, d]) ** 2 for d in range(dim)))
            out[layer, t] = total / heads
    return out


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    keys = rng.normal(size=(3, 2, 7, 5)).astype(np.float32)
    pos = np.tile(np.arange(7), (3, 1))
    return keys, pos


def test_knorm_seed_is_mean_key_norm(data):
    keys, pos = data
    np.testing.assert_allclose(get_policy("knorm-seed").score(keys, pos, _ctx()), _mean_norm_loop(keys), rtol=1e-5)


def test_knorm_is_negative_mean_key_norm(data):
    keys, pos = data
    np.testing.assert_allclose(get_policy("knorm").score(keys, pos, _ctx()), -_mean_norm_loop(keys), rtol=1e-5)


def test_streaming_prefers_newer(data):
    keys, pos = data
    s = get_policy("streaming").score(keys, pos, _ctx())
    assert (np.diff(s, axis=1) > 0).all()


def test_random_is_seeded_and_layer_independent(data):
    keys, pos = data
    a = get_policy("random").score(keys, pos, _ctx(3))
    b = get_policy("random").score(keys, pos, _ctx(3))
    c = get_policy("random").score(keys, pos, _ctx(4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert (a == a[0]).all()
    shifted = get_policy("random").score(keys[:, :, 2:], pos[:, 2:], _ctx(3))  # same position, same score
    np.testing.assert_array_equal(shifted, a[:, 2:])


def test_registry_lists_baseline_first_and_rejects_unknown():
    names = list(list_policies())
    assert names[0] == "none" and {"knorm", "knorm-seed", "streaming", "random", "h2o", "tova", "snapkv", "genai-like"} <= set(names)
    with pytest.raises(ValueError, match="unknown policy 'lru'"):
        get_policy("lru")
