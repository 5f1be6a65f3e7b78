"""The decode loop on tiny exported models: exactness, true eviction, bounds, sampling."""
import warnings

import numpy as np
import pytest

from triattn.core.config import MECHANISMS, EvictionConfig, SamplingConfig
from triattn.core.engine import PromptTooLong, generate
from triattn.openvino.model import load_model
from triattn.policies import get_policy, pruning_policies

# the scorers of our decode loop on the stateful form; a choice another runtime runs (ov-genai) has its own
# tests (test_genai.py), and so do the policies that read attention, which only the paged form reports
# (test_attention_policies.py)
PRUNING = [p for p in pruning_policies() if get_policy(p).runtime == "loop" and not get_policy(p).reads_attention]
BASE = EvictionConfig(policy="none")


def tokens(session, prompt, cfg, n=40, **kw):
    return [r.token for r in generate(session, prompt, cfg, max_new_tokens=n, **kw)]


# a policy that keeps a token set per KV head runs with compaction only (config refuses the rest)
PAIRS = [(p, e) for p in PRUNING for e in MECHANISMS if e == "hard" or not get_policy(p).per_kv_head]


@pytest.mark.parametrize("policy, evict", PAIRS)
def test_budget_above_sequence_reproduces_baseline(model_dir, prompt, policy, evict):
    s = load_model(model_dir).new_session()
    base = tokens(s, prompt, BASE)
    cfg = EvictionConfig(policy=policy, evict=evict, budget=len(prompt) + 41, recent_window=4, sink_tokens=2,
                         prune_interval=1)
    assert tokens(s, prompt, cfg) == base


def _forced_logits(session, prompt, cfg, forced):
    recs = list(generate(session, prompt, cfg, force=forced, keep_logits=True))
    return np.stack([r.logits for r in recs]), recs


@pytest.mark.parametrize("prompt_len", [24, 60])
@pytest.mark.parametrize("policy", ["streaming", "random"])
def test_mask_and_hard_agree_and_zero_does_not(model_dir, policy, prompt_len):
    """Same kept tokens (layer-independent policies, recent window >= the sliding window of 16):
    compaction and masking give the same logits; the model card's zeroing does not. The 60-token
    prompt is cut by more than half at once, right after prefill."""
    prompt = [3 + i % 50 for i in range(prompt_len)]
    s = load_model(model_dir, precision="f32").new_session()
    forced = tokens(s, prompt, BASE, n=40)
    cfg = dict(policy=policy, budget=24, recent_window=16, sink_tokens=2, prune_interval=3)
    hard, hard_recs = _forced_logits(s, prompt, EvictionConfig(evict="hard", **cfg), forced)
    mask, mask_recs = _forced_logits(s, prompt, EvictionConfig(evict="mask", **cfg), forced)
    zero, _ = _forced_logits(s, prompt, EvictionConfig(evict="zero", **cfg), forced)
    full, _ = _forced_logits(s, prompt, BASE, forced)
    events = [(h.prune, m.prune) for h, m in zip(hard_recs, mask_recs) if h.prune is not None]
    assert len(events) >= 5
    for h, m in events:  # full-attention layers evicted the same positions
        assert h.evicted_positions[-1].tolist() == m.evicted_positions[-1].tolist()
    np.testing.assert_allclose(hard, mask, atol=1e-4)
    assert np.abs(hard - full).max() > 1e-3, "eviction had no effect; the test would prove nothing"
    assert np.abs(zero - mask).max() > 1e-3


@pytest.mark.parametrize("evict", list(MECHANISMS))
def test_cache_bounded_and_sinks_and_recent_kept(model_dir, prompt, evict):
    cfg = EvictionConfig(policy="knorm", evict=evict, budget=30, recent_window=5, sink_tokens=3, prune_interval=4)
    s = load_model(model_dir).new_session()
    recs = list(generate(s, prompt, cfg, max_new_tokens=60, force=list(range(5, 65))))
    ceiling = cfg.budget + cfg.prune_interval - 1
    assert max(r.kv_live for r in recs) == ceiling
    events = [r for r in recs if r.prune is not None]
    assert len(events) >= 5
    for r in events:
        newest_cached = len(prompt) + r.index - 2  # the token fed at this step is not cached yet
        assert r.prune.kv_after == cfg.budget - 1 and r.kv_live == cfg.budget
        assert r.prune.evicted_positions.min() >= cfg.sink_tokens
        assert r.prune.evicted_positions.max() <= newest_cached - cfg.recent_window
    if evict == "hard":
        assert max(r.kv_len for r in recs) == ceiling and s.cache_len() == recs[-1].kv_len <= ceiling
    else:  # the state keeps every slot
        assert s.cache_len() == len(prompt) + len(recs) - 1


def test_layers_choose_differently_under_compaction(gptoss_dir, prompt):
    cfg = EvictionConfig(policy="knorm", evict="hard", budget=20, recent_window=2, sink_tokens=1, prune_interval=2)
    recs = list(generate(load_model(gptoss_dir).new_session(), prompt, cfg, max_new_tokens=20,
                         force=list(range(5, 25))))
    ev = next(r.prune for r in recs if r.prune is not None).evicted_positions
    assert len({tuple(row) for row in ev[1::2]}) > 1 or not np.array_equal(ev[0], ev[1])


def test_key_and_value_outputs_equal_cache_contents(model_dir, prompt):
    """The extra outputs are what the cache holds: exactly in f32 mode, and bit for bit after the
    rounding to the cache's f16 in the default mode (so compaction can write the cache from them)."""
    for precision, cache_dtype in (("f32", np.float32), ("default", np.float16)):
        m = load_model(model_dir, precision=precision)
        assert m.kv_precision.bitwidth == np.dtype(cache_dtype).itemsize * 8
        s = m.new_session()
        s.reset()
        _, k0, v0 = s.forward(prompt, np.arange(len(prompt)), np.ones(len(prompt)), values=True)
        _, k1, v1 = s.forward([7], [len(prompt)], np.ones(len(prompt) + 1), values=True)
        keys, values = (np.stack(x) for x in s.read_kv())
        for cached, new in ((keys, (k0, k1)), (values, (v0, v1))):
            mirrored = np.concatenate(new, axis=2).astype(cache_dtype).astype(np.float32)
            np.testing.assert_array_equal(cached, mirrored)


def test_sliding_layers_keep_their_newest_tokens_contiguously(gptoss_dir, prompt):
    """Under compaction a sliding-window layer (even layers here) evicts only its oldest tokens,
    whatever the policy says and even with a recent window (4) below the window (16), so the slots
    the layer's window covers hold exactly the tokens the full cache would show it."""
    cfg = EvictionConfig(policy="knorm-seed", evict="hard", budget=20, recent_window=4, sink_tokens=0,
                         prune_interval=2)
    recs = list(generate(load_model(gptoss_dir).new_session(), prompt, cfg, force=list(range(5, 35))))
    for r in recs:
        if r.prune is not None:
            sliding = r.prune.evicted_positions[0::2]
            oldest = np.arange(sliding.shape[1]) + sliding.min()
            assert (np.sort(sliding, axis=1) == oldest).all()


def test_warns_only_when_budget_below_sliding_window(gptoss_dir, prompt):
    s = load_model(gptoss_dir).new_session()
    with pytest.warns(UserWarning, match="sliding window"):
        list(generate(s, prompt, EvictionConfig(policy="knorm", budget=15, recent_window=2), max_new_tokens=3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # budget = window (16) is exact: no warning
        list(generate(s, prompt, EvictionConfig(policy="knorm", budget=16, recent_window=2), max_new_tokens=3))


def test_sampling_is_seeded_and_shared_between_runs(model_dir, prompt):
    s = load_model(model_dir).new_session()
    hot = SamplingConfig(temperature=1.5, top_p=0.95, top_k=50, seed=11)
    a = tokens(s, prompt, BASE, sampling=hot)
    assert a == tokens(s, prompt, BASE, sampling=hot)
    assert a != tokens(s, prompt, BASE, sampling=SamplingConfig(temperature=1.5, top_p=0.95, top_k=50, seed=12))
    big = EvictionConfig(policy="knorm", budget=200, recent_window=4)
    assert tokens(s, prompt, big, sampling=hot) == a
    assert a != tokens(s, prompt, BASE)  # sampling really happened


def test_stops_at_eos_and_rejects_bad_prompts(gptoss_dir, prompt):
    m = load_model(gptoss_dir)
    eos = m.info.eos_token_ids[0]
    s = m.new_session()
    recs = list(generate(s, prompt, BASE, max_new_tokens=50, force=None, logprobs=True))
    assert len(recs) == 50 or recs[-1].token == eos
    with pytest.raises(ValueError, match="empty"):
        list(generate(s, [], BASE))
    with pytest.raises(PromptTooLong, match="context"):
        list(generate(s, [5] * m.info.max_context, BASE, max_new_tokens=10))


def test_long_prompt_is_cut_once_with_the_prefill(gptoss_dir):
    """A 60-token prompt with budget 20: record 0 carries the cut (its time is in TTFT), and the
    first decode step then attends to exactly the budget."""
    cfg = EvictionConfig(policy="knorm", budget=20, recent_window=16, sink_tokens=2, prune_interval=4)
    recs = list(generate(load_model(gptoss_dir).new_session(), [3 + i % 50 for i in range(60)], cfg,
                         force=list(range(5, 15))))
    assert recs[0].prune is not None and recs[0].prune.kv_before == 60 and recs[0].kv_len == 19
    assert recs[1].prune is None and recs[1].kv_len == 20


def test_sliding_window_counts_slots_and_includes_the_query(gptoss_dir):
    """Why a budget of W keeps a sliding layer exact: with the query at slot 30 and W = 16, the
    layer sees slots 15..30 (W slots, the query's own included). Perturbing K/V of the sliding
    layers at slot 14 changes nothing; at slot 15 it does.

        slot   ... 13 14 | 15 16 ... 29 | 30
                  unseen |   cached, seen | query
    """
    m = load_model(gptoss_dir, precision="f32")
    window = max(m.info.sliding_windows)
    sliding = [i for i, w in enumerate(m.info.sliding_windows) if w]
    s, n = m.new_session(), 30
    prompt = [3 + i % 50 for i in range(n)]

    def next_logits(slot=None):
        s.reset()
        s.forward(prompt, np.arange(n), np.ones(n))
        if slot is not None:
            keys, values = s.read_kv()
            for layer in sliding:
                keys[layer][:, slot] += 5.0
                values[layer][:, slot] += 5.0
            s.write_kv(keys, values)
        return s.forward([7], [n], np.ones(n + 1))[0]

    ref = next_logits()
    assert np.array_equal(next_logits(n - window), ref)
    assert np.abs(next_logits(n - window + 1) - ref).max() > 1e-3


def test_prefill_in_pieces_gives_the_whole_prefills_logits(model_dir):
    """A baseline's 60-token prompt fed 7 tokens at a time (the last piece 4) gives the same cache
    as one forward: the same forced logits. (A pruning run evicts between pieces:
    test_chunked_prefill.py.)"""
    m = load_model(model_dir, "CPU", "f32")
    prompt, forced = [3 + i % 50 for i in range(60)], list(range(5, 25))
    whole, _ = _forced_logits(m.new_session(), prompt, BASE, forced)
    recs = list(generate(m.new_session(), prompt, EvictionConfig(policy="none", prefill_chunk=7), force=forced,
                         keep_logits=True))
    np.testing.assert_allclose(np.stack([r.logits for r in recs]), whole, atol=2e-4)
