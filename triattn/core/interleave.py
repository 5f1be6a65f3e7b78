"""Advance several streams one item at a time, in turn: how two runs (or a benchmark's modes) share
one machine so that each step's time is its own and drift reaches all alike."""
from __future__ import annotations

from typing import Iterator


def _in_turn(streams: dict, round_order) -> Iterator[tuple[str, object]]:
    """Advance named iterators one item at a time, in the order round_order(names, round) gives
    each round, yielding (name, item). An iterator that ends drops out; the others go on."""
    live = dict(streams)
    order = list(streams)
    rounds = 0
    while live:
        for name in round_order(order, rounds):
            if name not in live:
                continue
            try:
                item = next(live[name])
            except StopIteration:
                del live[name]
                continue
            yield name, item
        rounds += 1


def interleave(streams: dict) -> Iterator[tuple[str, object]]:
    """Advance named iterators one item at a time, in turn, yielding (name, item).

    The lead alternates each round (A B, B A, A B, ...) so that neither run always follows the
    other: whatever one step leaves behind in CPU caches is shared out evenly. An iterator that
    ends drops out; the others go on.
    """
    return _in_turn(streams, lambda order, r: order if r % 2 == 0 else order[::-1])


def rotate(streams: dict) -> Iterator[tuple[str, object]]:
    """Like interleave, for any number of streams: each round is led by the next one in turn
    (A B C, B C A, C A B, ...), so that no run always steps first or always after the same other.
    Two streams go as interleave's (A B, B A, ...). An iterator that ends drops out."""
    return _in_turn(streams, lambda order, r: order[r % len(order):] + order[:r % len(order)])
