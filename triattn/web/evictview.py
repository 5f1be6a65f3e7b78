"""What the pruned run's cache forgot: its prompt and output as text spans, each marked by how
many layers evicted it.

With `hard` eviction each layer (or each KV head of a layer) chooses on its own (gpt-oss's
sliding-window layers keep their newest tokens, full layers follow the policy), so a token can be
gone from some layers and still cached in others. `mask` and `zero` evict the same tokens in every layer.
"""
from __future__ import annotations

import numpy as np

from ..core.text import StreamDecoder

EVICTED_ALL = "evicted (all layers)"
EVICTED_SOME = "evicted (some layers)"
COLORS = {EVICTED_ALL: "#ef4444", EVICTED_SOME: "#fbbf24"}


def evicted_layer_counts(records, n_positions: int, n_layers: int) -> np.ndarray:
    """For each absolute position, in how many layers it has been evicted. With a token set per
    KV head (evicted positions [layers, kv_heads, n]) a layer counts by the share of its KV heads
    that evicted the token, so "all layers" still means gone from every head of every layer."""
    gone = None
    for r in records:
        if r.prune is None or r.prune.evicted == 0:
            continue
        ep = np.asarray(r.prune.evicted_positions)
        ep = ep.reshape(ep.shape[0], -1, ep.shape[-1])  # [layers, lanes, n]
        if gone is None:
            gone = np.zeros((n_layers, ep.shape[1], n_positions), bool)
        layer, lane = np.indices(ep.shape)[:2]
        inside = ep < n_positions
        gone[layer[inside], lane[inside], ep[inside]] = True
    return np.zeros(n_positions) if gone is None else gone.mean(axis=1).sum(axis=0)


def token_spans(tokenizer, ids) -> list[tuple[str, list[int]]]:
    """Text pieces with the positions they came from. Ids that only make sense together (one
    multi-byte character split over tokens) share one piece; special tokens are shown."""
    decoder = StreamDecoder(tokenizer, skip_special_tokens=False)
    spans, pending = [], []
    for pos, t in enumerate(ids):
        pending.append(pos)
        piece = decoder.push(t)
        if piece:
            spans.append((piece, pending))
            pending = []
    tail = decoder.flush()
    if pending:
        if tail:
            spans.append((tail, pending))
        elif spans:
            spans[-1][1].extend(pending)
    return spans


def eviction_view(tokenizer, prompt_ids, token_ids, records, n_layers: int) -> list[tuple[str, str | None]]:
    """(text, label) pairs for gr.HighlightedText: prompt, then the generated tokens.

    The n-th generated token sits at position len(prompt) + n; the last one was never fed back,
    so it is never in the cache (and never evicted). A span of several tokens is "evicted (all
    layers)" only if all of its tokens are, "some" if any of them is gone from any layer.
    """
    ids = list(prompt_ids) + list(token_ids)
    counts = evicted_layer_counts(records, len(ids), n_layers)
    out = []
    for text, positions in token_spans(tokenizer, ids):
        c = [float(counts[p]) for p in positions]
        if min(c) >= n_layers:
            label = EVICTED_ALL
        elif max(c) > 0:
            label = EVICTED_SOME
        else:
            label = None  # kept: no highlight
        out.append((text, label))
    return out


def eviction_summary(records, n_positions: int, n_layers: int) -> str:
    counts = evicted_layer_counts(records, n_positions, n_layers)
    gone, some = int((counts >= n_layers).sum()), int(((counts > 0) & (counts < n_layers)).sum())
    return (f"Of {n_positions} tokens (prompt + output), {gone} were evicted from every layer, "
            f"{some} from some of the {n_layers} layers, and {n_positions - gone - some} never.")
