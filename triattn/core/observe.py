"""Policies scored beside a full cache, against the attention the next queries paid (agreement.py).

One greedy run keeps every token (nothing is evicted, so the attention later queries pay to any
token is observable) on a session that reports attention (the paged form). At each point where a
pruned run of an `EvictionConfig` would cut (once the cache reaches budget + prune_interval - 1,
then every prune_interval steps), its policy scores the cache as it would there, over the tokens
that compete (not sinks, nor the recent window, nor a kept prompt); `steps` decode steps later, the
attention those tokens received in between ranks them too, and `event_agreement` compares the two.

Only layers of full attention are compared: a sliding-window layer's next queries cannot see the
older tokens at all (and under compaction it keeps its newest tokens, whatever the scores).
The prompt is read in two forwards, its last 32 tokens apart, so that a policy reading attention
sees what it would: the whole prompt's attention in `total`, the last 32 queries' in `window`.
Knows nothing of text: token ids in, numbers out.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .agreement import EventAgreement, event_agreement
from .attention import AttentionLog
from .config import EvictionConfig
from .selection import protected
from .store import TokenStore
from ..policies import ScoreContext

PROMPT_TAIL = 32  # the prompt's last tokens read apart (SnapKV's observation window)


def _competing(store: TokenStore, e: EvictionConfig, prompt_len: int) -> tuple[np.ndarray, int]:
    """(mask [n] of the tokens that compete at a cut, how many of them the cut keeps)."""
    pinned = prompt_len if e.keep_prompt else 0
    fixed = protected(store.positions[0], store.alive[0], max(e.sink_tokens, pinned), e.recent_window)
    return ~fixed, e.budget - 1 - int(fixed.sum())


def _scores(policy, store: TokenStore, e: EvictionConfig, ctx: ScoreContext) -> np.ndarray:
    """The policy's scores of every slot, [layers, n] or [layers, kv_heads, n] (per KV head)."""
    positions = store.positions
    if policy.per_kv_head:
        positions = np.broadcast_to(positions[:, None], (positions.shape[0], store.keys.shape[1], positions.shape[1]))
    pinned = ctx.prompt_len if e.keep_prompt else 0
    alive = np.ones(positions.shape, bool)
    ctx.scored = alive & (positions >= pinned) if pinned else alive
    return np.asarray(policy.score(store.keys, positions, ctx), np.float64)


def observe(session, info, prompt_ids: Sequence[int], evictions: Sequence[EvictionConfig], max_new_tokens: int,
            steps: int = 16, calibrations: Sequence | None = None, seed: int = 0) -> list[list[EventAgreement]]:
    """For each of `evictions` (policies of our loop), the agreement at each of its cut points of one
    greedy full-cache run of `prompt_ids` on `session`; cut points less than `steps` steps before the
    run's end are left out."""
    if not session.reports_attention:
        raise ValueError("agreement needs the attention the model paid, which only the paged cache form reports")
    prompt = np.asarray(prompt_ids, np.int64)
    policies = [e.policy_object() for e in evictions]
    calibrations = list(calibrations) if calibrations is not None else [p.prepare(info.model_dir) for p in policies]
    store = TokenStore(info.n_layers, info.kv_heads, info.head_dim, True, capacity=prompt.size + max_new_tokens + 1)
    log = AttentionLog(info.n_layers, PROMPT_TAIL)
    session.reset()
    session.reserve(prompt.size + max_new_tokens + 1)
    session.track_attention(True)

    def feed(tokens, positions, window):
        logits, keys, _ = session.forward(tokens, positions, None, False, True, copy=False, window=window)
        store.append(positions, keys)
        log.add(session.attention(), min(window, tokens.size))
        return logits

    head = max(0, prompt.size - PROMPT_TAIL)
    logits = None
    for start, end in ((0, head), (head, prompt.size)):
        if end > start:
            logits = feed(prompt[start:end], np.arange(start, end), end - start)
    results: list[list[EventAgreement]] = [[] for _ in evictions]
    pending = []  # (eviction index, step due, scores of the competing tokens, their mask, k, total at the cut)
    next_cut = [e.budget + e.prune_interval - 1 for e in evictions]
    eos = set(info.eos_token_ids)
    full = np.array([w == 0 for w in info.sliding_windows])
    full = full if full.any() else np.ones_like(full)  # a model of sliding windows only: every layer
    token = int(np.argmax(logits))
    for index in range(1, max_new_tokens):
        for i, (e, policy) in enumerate(zip(evictions, policies)):
            if store.n >= next_cut[i]:
                next_cut[i] = store.n + e.prune_interval
                mask, k = _competing(store, e, prompt.size)
                if 0 < k < int(mask.sum()):
                    ctx = ScoreContext(prompt.size + index - 1, seed, info.config, calibrations[i],
                                       prompt_len=prompt.size, attention=log, layers=full)
                    scores = _scores(policy, store, e, ctx)[full][..., mask]
                    pending.append((i, index + steps - 1, scores, mask, k, log.total.copy()))
        if token in eos:
            break
        logits = feed(np.array([token]), np.array([prompt.size + index - 1]), 1)
        token = int(np.argmax(logits))
        for item in [p for p in pending if p[1] == index]:
            i, _, scores, mask, k, before = item
            seen = (log.total[:, :before.shape[1]] - before)[full]  # what the `steps` queries since the cut paid
            observed = seen[:, mask] if scores.ndim == 2 else seen[:, None][..., mask]
            results[i].append(event_agreement(scores, observed, k))
            pending.remove(item)
    return results
