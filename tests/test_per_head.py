"""A token set per KV head under compaction, and the prompt kept whole, on tiny exported models.

The plain reference keeps the cache as one list of (position, key, value) per layer and KV head,
drops what the engine's prune events name, and writes the whole cache before every step: the
engine's compaction must give the same logits."""
import numpy as np
import pytest

from triattn.core.config import EvictionConfig
from triattn.core.engine import generate
from triattn.openvino.model import load_model

BASE = EvictionConfig(policy="none")


def _plain_per_head(session, prompt, forced, events):
    """Logits of a decode whose cache is rebuilt from per-(layer, head) lists at every step.
    events: step index -> evicted positions [layers, kv_heads, n], applied before that step."""
    session.reset()
    logits, k, v = session.forward(prompt, np.arange(len(prompt)), np.ones(len(prompt)), values=True)
    lanes = {(l, h): [(p, k[l, h, p], v[l, h, p]) for p in range(len(prompt))]
             for l in range(k.shape[0]) for h in range(k.shape[1])}
    out = [logits]
    for i in range(1, len(forced)):
        for step in (0, i) if i == 1 else (i,):  # the prompt's cut (record 0) lands before step 1
            if step in events:
                for (l, h), lane in lanes.items():
                    gone = set(events[step][l, h].tolist())
                    lanes[(l, h)] = [t for t in lane if t[0] not in gone]
        shape = (k.shape[0], k.shape[1], len(lanes[(0, 0)]), k.shape[3])
        keys, values = np.empty(shape, np.float32), np.empty(shape, np.float32)
        for (l, h), lane in lanes.items():
            keys[l, h] = [t[1] for t in lane]
            values[l, h] = [t[2] for t in lane]
        session.write_kv(keys, values)
        position = len(prompt) + i - 1
        logits, k, v = session.forward([forced[i - 1]], [position], np.ones(shape[2] + 1), values=True)
        for (l, h), lane in lanes.items():
            lane.append((position, k[l, h, 0], v[l, h, 0]))
        out.append(logits)
    return np.stack(out)


@pytest.mark.parametrize("prompt_len", [24, 60])
def test_per_head_compaction_equals_a_cache_built_directly(model_dir, prompt_len):
    prompt = [3 + i % 50 for i in range(prompt_len)]
    model = load_model(model_dir, precision="f32")
    s = model.new_session()
    forced = [r.token for r in generate(s, prompt, BASE, max_new_tokens=30)]
    cfg = EvictionConfig(policy="triattention-head", budget=24, recent_window=16, sink_tokens=2, prune_interval=3)
    recs = list(generate(s, prompt, cfg, force=forced, keep_logits=True))
    events = {r.index: r.prune.evicted_positions for r in recs if r.prune is not None}
    assert len(events) >= 5
    ev = next(iter(events.values()))
    assert ev.ndim == 3 and ev.shape[:2] == (model.info.n_layers, model.info.kv_heads)
    full = [l for l, w in enumerate(model.info.sliding_windows) if w == 0]
    assert any(len({tuple(e[l, h]) for h in range(e.shape[1])}) > 1 for e in events.values() for l in full), \
        "every KV head evicted the same tokens: the test would prove nothing"
    for e in events.values():  # the reference rule: a KV head keeps the same tokens in every full layer
        assert all(np.array_equal(e[l], e[full[0]]) for l in full)
    plain = _plain_per_head(load_model(model_dir, precision="f32").new_session(), prompt, forced, events)
    np.testing.assert_allclose(np.stack([r.logits for r in recs]), plain, atol=1e-4)


def test_sliding_layers_stay_contiguous_per_head(gptoss_dir, prompt):
    cfg = EvictionConfig(policy="triattention-head", budget=20, recent_window=4, sink_tokens=0, prune_interval=2)
    recs = list(generate(load_model(gptoss_dir).new_session(), prompt, cfg, force=list(range(5, 35))))
    events = [r.prune.evicted_positions for r in recs if r.prune is not None]
    assert events
    for ev in events:
        for sliding in ev[0::2].reshape(-1, ev.shape[-1]):  # even layers slide: their oldest go
            assert (np.sort(sliding) == np.arange(len(sliding)) + sliding.min()).all()


def test_kept_prompt_is_never_evicted(model_dir, prompt):
    cfg = EvictionConfig(policy="triattention-head", budget=40, recent_window=0, sink_tokens=0, prune_interval=5,
                         keep_prompt=True)
    recs = list(generate(load_model(model_dir).new_session(), prompt, cfg, force=list(range(5, 65))))
    events = [r.prune for r in recs if r.prune is not None]
    assert len(events) >= 5
    assert min(e.evicted_positions.min() for e in events) >= len(prompt)
    assert max(r.kv_live for r in recs) == cfg.budget + cfg.prune_interval - 1
    assert all(e.kv_after == cfg.budget - 1 for e in events)
    too_small = EvictionConfig(policy="triattention-head", budget=len(prompt), recent_window=0, sink_tokens=0,
                               keep_prompt=True)
    with pytest.raises(ValueError, match="kept whole"):
        next(generate(load_model(model_dir).new_session(), prompt, too_small))


@pytest.mark.parametrize("keep_prompt", [False, True])
def test_per_head_budget_above_sequence_reproduces_baseline(model_dir, prompt, keep_prompt):
    s = load_model(model_dir).new_session()
    base = [r.token for r in generate(s, prompt, BASE, max_new_tokens=40)]
    cfg = EvictionConfig(policy="triattention-head", budget=len(prompt) + 41, recent_window=0, sink_tokens=0,
                         prune_interval=1, keep_prompt=keep_prompt)
    assert [r.token for r in generate(s, prompt, cfg, max_new_tokens=40)] == base
