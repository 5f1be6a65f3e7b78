"""Chunked prefill with eviction between pieces (EvictionConfig.prefill_chunk).

A pruning run applies its decode rule between pieces, so no forward attends to more than
`budget - 1 + piece` tokens. With streaming (same kept positions in every layer), on the tiny Llama:

    prompt positions 0..59, pieces of 16, budget 20, 2 sink tokens
    piece  0..15  attends to  0..15                       (16)
    piece 16..31  attends to  0..31                       (32: 16 tokens needed no cut)
    cut to 19:    0, 1, 15..31
    piece 32..47  attends to  0, 1, 15..31 + 32..47        (19 + 16)
    cut to 19:    0, 1, 31..47
    piece 48..59  attends to  0, 1, 31..47 + 48..59        (19 + 12), then the usual cut after prefill

Compaction, masking and a plain loop written here on the session (forward, keep, write) give the
same logits.
"""
import numpy as np
import pytest

from triattn.core.config import DEFAULT_PREFILL_CHUNK, EvictionConfig
from triattn.core.engine import generate
from triattn.core.metrics import summarize
from triattn.openvino.model import load_model

PROMPT = [3 + i % 50 for i in range(60)]
FORCED = list(range(5, 25))
CFG = dict(policy="streaming", budget=20, recent_window=8, sink_tokens=2, prune_interval=1)


class Spy:
    """A session that records how many tokens each forward attends to (its mask's ones)."""

    def __init__(self, session):
        self._s, self.attended = session, []

    def forward(self, ids, positions, mask, *a, **kw):
        self.attended.append((len(ids), int(np.sum(mask))))
        return self._s.forward(ids, positions, mask, *a, **kw)

    def __getattr__(self, name):
        return getattr(self._s, name)


def _forced(session, cfg, chunk):
    cfg = EvictionConfig(**{**cfg.as_dict(), "prefill_chunk": chunk})
    recs = list(generate(session, PROMPT, cfg, force=FORCED, keep_logits=True))
    return np.stack([r.logits for r in recs]), recs


def _plain_streaming(session, chunk, budget, sinks):
    """The same run written directly: feed a piece, keep sinks + the newest, write, go on."""
    keys = values = positions = None
    session.reset()
    for start in range(0, len(PROMPT), chunk):
        if positions is not None and positions.size + 1 > budget:
            keep = np.r_[np.arange(sinks), np.arange(positions.size - (budget - 1 - sinks), positions.size)]
            keys, values, positions = keys[:, :, keep], values[:, :, keep], positions[keep]
            session.write_kv(keys, values)
        piece = np.array(PROMPT[start:start + chunk])
        pos = np.arange(start, start + piece.size)
        n = 0 if positions is None else positions.size
        logits, k, v = session.forward(piece, pos, np.ones(n + piece.size, np.int64), values=True)
        keys = k if keys is None else np.concatenate([keys, k], axis=2)
        values = v if values is None else np.concatenate([values, v], axis=2)
        positions = pos if positions is None else np.r_[positions, pos]
    return logits


def test_each_piece_attends_to_at_most_budget_plus_piece(gptoss_dir):
    cfg = EvictionConfig(policy="knorm", budget=20, recent_window=16, sink_tokens=2, prefill_chunk=16)
    spy = Spy(load_model(gptoss_dir, "CPU", "f32").new_session())
    recs = list(generate(spy, PROMPT, cfg, max_new_tokens=5))
    # no interval is waited for between pieces: 32 and 35 are cut to 19 before the next piece;
    # the 31 left after the last piece are within the decode rule's ceiling (20 + 32 - 1)
    assert [(t, a) for t, a in spy.attended if t > 1] == [(16, 16), (16, 32), (16, 35), (12, 31)]
    cut = recs[0].prune
    assert (cut.kv_before, cut.kv_after, cut.evicted, recs[0].kv_len) == (60, 31, 29, 31)
    assert cut.kv_peak == 35  # the most the cache held before a cut
    assert len(set(cut.evicted_positions[-1].tolist())) == 29
    metrics = summarize(recs, 1, 0.0, 0.0)
    assert metrics.kv_tokens_max == 35 and metrics.prompt_cut == (60, 31)


@pytest.mark.parametrize("chunk", [16, 7])
def test_compaction_equals_masking_and_a_plain_loop(llama_dir, chunk):
    m = load_model(llama_dir, "CPU", "f32")
    hard, recs = _forced(m.new_session(), EvictionConfig(evict="hard", **CFG), chunk)
    mask, _ = _forced(m.new_session(), EvictionConfig(evict="mask", **CFG), chunk)
    whole, _ = _forced(m.new_session(), EvictionConfig(evict="hard", **CFG), 0)
    np.testing.assert_allclose(hard, mask, atol=1e-4)
    np.testing.assert_allclose(hard[0], _plain_streaming(m.new_session(), chunk, 20, 2), atol=1e-4)
    assert np.abs(hard[0] - whole[0]).max() > 1e-3, "pieces evicted nothing; the test would prove nothing"
    assert recs[0].prune.kv_before == 60 and recs[0].kv_len == 19


def test_budget_above_the_prompt_evicts_nothing_between_pieces(model_dir):
    cfg = EvictionConfig(policy="knorm", budget=100, recent_window=16, sink_tokens=2)
    m = load_model(model_dir, "CPU", "f32")
    whole, _ = _forced(m.new_session(), cfg, 0)
    pieces, recs = _forced(m.new_session(), cfg, 7)
    assert recs[0].prune is None
    np.testing.assert_allclose(pieces, whole, atol=2e-4)


def test_pruning_runs_read_in_pieces_by_default_and_the_baseline_whole():
    assert EvictionConfig(policy="knorm").prefill_chunk == DEFAULT_PREFILL_CHUNK
    assert EvictionConfig(policy="none").prefill_chunk == 0
    assert EvictionConfig(policy="ov-genai").prefill_chunk == 0
    assert "prefill_chunk" not in EvictionConfig(policy="ov-genai").as_dict()
    with pytest.raises(ValueError, match="ov-genai prefills its own way"):
        EvictionConfig(policy="ov-genai", prefill_chunk=64)
    with pytest.raises(ValueError, match="prefill_chunk must be at least 0"):
        EvictionConfig(policy="knorm", prefill_chunk=-1)


def test_a_prompt_the_budget_holds_is_read_whole(llama_dir):
    """Nothing would be cut, so pieces would only take the slower path of a forward with a past."""
    spy = Spy(load_model(llama_dir, "CPU", "f32").new_session())
    list(generate(spy, PROMPT, EvictionConfig(policy="knorm", budget=100, recent_window=16, prefill_chunk=7),
                  max_new_tokens=3))
    assert spy.attended[0] == (60, 60)
