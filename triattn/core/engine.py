"""The decode loop: prefill, then one token per step, pruning the cache by the configured schedule.

It knows nothing of text and nothing of particular policies or mechanisms: it yields one
`StepRecord` per generated token. Record 0 is the prefill (its time is the time to first token).

Schedule: after a decode step the cache holds at most `budget + prune_interval - 1` live tokens.
When the next step would pass that, the live tokens are cut to `budget - 1`, so that with the new
token the step attends to exactly `budget`. A prompt longer than that is cut right after prefill,
and the cut counts in record 0 (time to first token), not in the decode steps.

Chunked prefill: with `eviction.prefill_chunk` (the default for pruning runs), the prompt is fed in
pieces. A pruning run cuts its cache to `budget - 1` before each piece (no interval is waited for),
so each piece attends to at most `budget - 1 + piece` tokens and a long
prompt's prefill grows linearly with its length instead of quadratically (the idea of evicting
while reading the prompt, as in SnapKV/H2O-style streaming prefill; GenAI evicts nothing during
prefill). The cuts between pieces are one prune event of record 0. A pruning run whose prompt
would not be cut at all reads it whole (pieces after the first take the plugin's slower path of
a forward with a past cache, for nothing); a baseline fed in pieces has the same cache as one fed
whole.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from .attention import AttentionLog
from .config import EvictionConfig, SamplingConfig, check_max_new_tokens
from .mechanisms import get_mechanism
from ..policies import ScoreContext
from ..policies.attention import QUERY_SELECT as QUERY_AWARE
from .sampling import Sampler, log_softmax
from .prune import choose_keep
from .store import TokenStore


@dataclass
class PruneEvent:
    evicted: int                  # tokens evicted per layer
    time_s: float
    kv_before: int                # live tokens per layer before and after
    kv_after: int
    evicted_positions: np.ndarray  # [layers, evicted] absolute positions ([layers, kv_heads, evicted] per KV head)
    kv_peak: int | None = None    # most live tokens held during the event's span, when not kv_before
                                  # (a prompt cut between chunks: kv_before is the whole prompt)


@dataclass
class StepRecord:
    index: int          # 0 = the token that prefill produced
    token: int
    time_s: float       # wall time of this step, pruning included
    kv_len: int         # slots in the KV state after the step (physical)
    kv_live: int        # tokens the step attended to (= kv_len unless mask/zero)
    prune: PruneEvent | None = None
    logprob: float | None = None  # log p(token), when asked for
    top1: int | None = None       # the model's argmax at this step, when asked for
    logits: np.ndarray | None = None  # the step's logits, when asked for
    kv_bytes: int | None = None       # bytes the cache holds after the step (session.cache_bytes())
    kv_bytes_peak: int | None = None  # the most it held during the step (a prompt before its cut)
                                      # None (another runtime): kv_len x bytes per token


class PromptTooLong(ValueError):
    pass


def check_request(info, prompt_tokens: int, eviction: EvictionConfig, max_new_tokens: int) -> None:
    """Refuse what the model cannot do, with a message for the user, before any work is done."""
    if prompt_tokens < 1:
        raise ValueError("the prompt is empty")
    if eviction.prunes and eviction.budget > info.max_context:
        raise ValueError(f"budget ({eviction.budget} tokens) is above the model's context of {info.max_context} "
                         f"tokens; choose at most {info.max_context}")
    if eviction.prunes and eviction.keep_prompt and prompt_tokens > eviction.budget - 1:
        raise ValueError(f"the prompt ({prompt_tokens} tokens) is kept whole, so the budget ({eviction.budget}) "
                         f"must exceed it; raise the budget or let the prompt be pruned")
    if prompt_tokens + max_new_tokens > info.max_context:
        raise PromptTooLong(f"prompt ({prompt_tokens} tokens) + {max_new_tokens} new tokens exceed the model's "
                            f"context of {info.max_context}")


def generate(session, prompt_ids: Sequence[int], eviction: EvictionConfig,
             sampling: SamplingConfig = SamplingConfig(), max_new_tokens: int = 200,
             force: Sequence[int] | None = None, logprobs: bool = False,
             keep_logits: bool = False, calibration=None) -> Iterator[StepRecord]:
    """Run one generation on `session` (its cache is reset first).

    force: feed these tokens instead of sampling (teacher forcing); records then carry the forced
    token, its log-probability and the model's own argmax. Stops at EOS, or after max_new_tokens.
    logprobs / keep_logits: attach log p(token) and argmax / the raw logits to each record.
    """
    info = session.model.info
    prompt = np.asarray(prompt_ids, np.int64)
    limit = len(force) if force is not None else check_max_new_tokens(max_new_tokens)
    check_request(info, prompt.size, eviction, limit)
    policy, mech, recency = _plan(info, eviction)
    if mech.needs_attention_mask:  # the paged form has no attention mask: its session hands over a stateful one
        session = session.with_attention_mask()
    query_aware = policy.prunes and eviction.prompt_select == "query"
    log = _attention_log(session, info, eviction, policy, query_aware)
    session.track_attention(log is not None)  # a form that reports no attention runs a faster step
    if calibration is None and policy.prunes:
        calibration = policy.prepare(info.model_dir)
    ctx = ScoreContext(0, sampling.seed, info.config, calibration, prompt_len=prompt.size, attention=log)
    sampler = Sampler(sampling)
    mirror = policy.prunes and mech.writes_cache and session.needs_mirror  # K and V on the host, to rewrite from
    # keys for the policy: not of layers whose choice ignores scores (they keep their newest tokens)
    key_layers = (policy.prunes and policy.needs_keys) & (True if recency is None else ~recency)
    store = TokenStore(info.n_layers, info.kv_heads, info.head_dim, key_layers, mirror,
                       capacity=max(256, prompt.size + eviction.budget + eviction.prune_interval),
                       per_head=policy.prunes and policy.per_kv_head,
                       band_norms=policy.prunes and policy.reads_band_norms and not mirror)
    feed = _Feed(session, store, mech, np.ones(prompt.size + limit + 1, np.int64), mirror,
                 policy.prunes and policy.needs_keys, log)
    ceiling = eviction.budget + eviction.prune_interval - 1
    eos = set(info.eos_token_ids)

    def cut(query_position, most=ceiling - 1, scorer=policy):  # cut to budget - 1 when more than `most` are live
        if policy.prunes and store.live > most:
            return _prune(session, store, scorer, mech, eviction, ctx, recency, query_position)
        return None

    session.reset()
    session.reserve(ceiling + 1 if policy.prunes else prompt.size + limit)
    t0 = time.perf_counter()
    chunk = eviction.prefill_chunk if not policy.prunes or prompt.size + 1 > ceiling else 0
    # Query-aware: the whole prompt is read uncut, its last QUERY_AWARE.window tokens (the question)
    # in a piece of their own whose attention chooses what of the prompt stays (SnapKV's selection).
    tail = min(QUERY_AWARE.window, prompt.size) if query_aware else 0
    logits, events = _prefill(feed, prompt, chunk, cut, prompt.size if query_aware else eviction.budget - 1,
                              policy.prefill_window, tail)
    token = int(force[0]) if force is not None else sampler.pick(logits)
    events.append(cut(prompt.size, scorer=QUERY_AWARE if query_aware else policy))  # part of the prefill
    if query_aware and not policy.reads_attention:
        feed.log = ctx.attention = None  # the decode policy reads keys only: stop fetching attention
        session.track_attention(False)
    record = StepRecord(0, token, 0.0, store.n, store.live, _merge(events, prompt.size, store.live))
    _fill_logprob(record, logits, logprobs or force is not None, keep_logits)
    record.time_s = time.perf_counter() - t0
    _fill_bytes(record, session)
    yield record

    for index in range(1, limit):
        if force is None and token in eos:
            return
        t0 = time.perf_counter()
        position = prompt.size + index - 1
        event = cut(position)
        logits = feed(np.array([token]), np.array([position]))
        token = int(force[index]) if force is not None else sampler.pick(logits)
        record = StepRecord(index, token, 0.0, store.n, store.live, event)
        _fill_logprob(record, logits, logprobs or force is not None, keep_logits)
        record.time_s = time.perf_counter() - t0
        _fill_bytes(record, session)
        yield record


def _attention_log(session, info, eviction, policy, query_aware: bool) -> AttentionLog | None:
    """The run's log of the attention its tokens received, when its policy or its prompt selection
    reads it; a clear refusal where the session's form does not report attention."""
    if not (policy.prunes and policy.reads_attention) and not query_aware:
        return None
    if not session.reports_attention:
        what = "query-aware prompt selection" if query_aware else f"policy {eviction.policy}"
        raise ValueError(f"{what} reads the attention the model paid, which only the paged cache form "
                         f"reports (with {eviction.evict} eviction this run is on the stateful form); "
                         f"use --form paged with hard or zero eviction")
    return AttentionLog(info.n_layers, max(1, getattr(policy, "window", 1), QUERY_AWARE.window if query_aware else 1))


@dataclass
class _Feed:
    """One forward of new tokens: the model reads them, the store keeps their keys (and values, when
    mirrored), and the attention log takes the attention the forward's last `window` queries paid."""
    session: object
    store: TokenStore
    mech: object
    ones: np.ndarray
    mirror: bool
    want_keys: bool
    log: AttentionLog | None

    def __call__(self, tokens: np.ndarray, positions: np.ndarray, window: int = 1) -> np.ndarray:
        extra = {"window": window} if self.log is not None else {}
        logits, keys, values = self.session.forward(tokens, positions,
                                                    self.mech.attention_mask(self.store, self.ones, tokens.size),
                                                    self.mirror, self.want_keys, copy=False, **extra)
        self.store.append(positions, keys, values)  # the store copies them now
        if self.log is not None:
            self.log.add(self.session.attention(), min(window, tokens.size))
        return logits


def _plan(info, eviction: EvictionConfig):
    """(policy, mechanism, which layers keep their newest tokens) for a run of our loop."""
    policy = eviction.policy_object()
    if policy.runtime != "loop":
        raise ValueError(f"policy {eviction.policy!r} runs in its own runtime ({policy.runtime}), not in this "
                         f"decode loop; run it through runner.runner_for")
    mech = get_mechanism(eviction.evict)
    recency = np.array([w > 0 for w in info.sliding_windows]) if mech.recency_for_sliding else None
    # A window of W slots covers the query and W - 1 cached tokens: a budget of W keeps it whole.
    if policy.prunes and recency is not None and recency.any() and eviction.budget < max(info.sliding_windows):
        warnings.warn(f"budget {eviction.budget} is below the sliding window ({max(info.sliding_windows)}): "
                      f"sliding-window layers cannot stay exact under compaction", stacklevel=3)
    return policy, mech, recency


def _prefill(feed, prompt, chunk, cut, store_budget, window_of, tail: int = 0):
    """Feed the prompt in pieces of at most `chunk` tokens (whole when 0), its last `tail` tokens in a
    piece of their own. Before each piece after the first, `cut(last position, most)` cuts a pruning
    run's cache to budget - 1 when it holds more than `most` (budget - 1) tokens. Each piece's
    attention report sums its last `window_of(piece)` queries. Returns the last piece's logits and
    the prune events.

    Why pieces: the plugin keeps the working memory of the largest forward it has run (activations
    of every position), and the only call that gives it back corrupted the heap here. Pieces bound
    it by the piece, not the prompt. With nothing evicted, each piece attends to everything before
    it, so the cache and the logits are those of a whole prefill.
    """
    head = prompt.size - tail
    step = chunk or head or 1
    bounds = [(s, min(s + step, head)) for s in range(0, head, step)] + ([(head, prompt.size)] if tail else [])
    logits, events = None, []
    for start, end in bounds:
        if start:  # between pieces no interval is waited for: a piece attends to at most budget - 1 + piece
            events.append(cut(start - 1, store_budget))
        window = tail if tail and end == prompt.size else window_of(end - start)
        logits = feed(prompt[start:end], np.arange(start, end), window)
    return logits, events


def _merge(events, prompt_tokens: int, live: int) -> PruneEvent | None:
    """The cuts of one prefill as one event: the prompt's tokens before, the `live` ones after."""
    events = [e for e in events if e is not None]
    if not events:
        return None
    peak = max(e.kv_before for e in events)
    return PruneEvent(sum(e.evicted for e in events), sum(e.time_s for e in events), prompt_tokens, live, np.concatenate([e.evicted_positions for e in events], axis=-1),
                      None if peak == prompt_tokens else peak)


def _fill_bytes(record: StepRecord, session):
    """The cache's size as its form counts it (a paged pool: the blocks it holds), after the step's
    time is taken."""
    record.kv_bytes, record.kv_bytes_peak = session.cache_bytes(), session.cache_bytes(peak=True)


def _fill_logprob(record: StepRecord, logits: np.ndarray, wanted: bool, keep: bool):
    if keep:
        record.logits = logits
    if wanted:
        record.logprob = float(log_softmax(logits)[record.token])
        record.top1 = int(np.argmax(logits))


def _prune(session, store, policy, mech, eviction, ctx, recency, query_position) -> PruneEvent:
    t0 = time.perf_counter()
    before = store.live
    ctx.query_position = query_position
    keep = choose_keep(store, policy, eviction, ctx, mech.shared, recency)
    evicted = store.alive & ~keep
    n_evicted = int(evicted.sum(axis=-1).flat[0])
    evicted_positions = store.positions[evicted].reshape(evicted.shape[:-1] + (n_evicted,))
    mech.apply(session, store, keep)
    if ctx.attention is not None and ctx.attention.n > store.n:  # compacted: the log follows the store
        ctx.attention.compact(keep if keep.ndim == 2 else keep[:, 0])  # per KV head: a query cut, the same per head
    return PruneEvent(n_evicted, time.perf_counter() - t0, before, store.live, evicted_positions)
