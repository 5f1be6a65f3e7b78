"""The attention each cached token has received, kept beside the TokenStore for the policies that
read it (policies/attention.py): H2O's running total, TOVA's newest query, SnapKV's window.

The paged form reports, after every forward, the attention its last `window` queries paid each
cached token, summed over query heads and those queries ([layers, n], in the store's slot order).
This log turns those reports into three views, all [layers, n] in the same order:

- `total`:  every query since the token entered the cache (H2O, Zhang et al. 2023);
- `last`:   the newest report alone (TOVA, Oren et al. 2024, when it was one query);
- `window`: the reports of the newest `window` queries (SnapKV's observation window, Li et al.
  2024; in decoding, the last `window` steps);
- `seen`:   how many of the reported queries came at or after each token (causal), the divisor of
  OpenVINO GenAI's NORM_SUM aggregation (`total / seen`).

Example, one layer, three tokens, then a fourth, window 2:

    report 1 (1 query)  [.5 .3 .2]        total [.5 .3 .2  0]   after report 2
    report 2 (1 query)  [.4 .1 .1 .4]     last  [.4 .1 .1 .4]   window [.9 .4 .3 .4]

A cut keeps the slots the store keeps, in the same order (`compact`).
"""
from __future__ import annotations

import numpy as np


def _pad(a: np.ndarray, n: int) -> np.ndarray:
    return a if a.shape[1] == n else np.pad(a, ((0, 0), (0, n - a.shape[1])))


class AttentionLog:
    def __init__(self, n_layers: int, window: int = 32):
        self.window_queries = window
        self.n = 0
        self._total = np.zeros((n_layers, 0), np.float64)
        self._last = np.zeros((n_layers, 0), np.float64)
        self._ring: list[tuple[np.ndarray, int]] = []  # (report, queries it sums), oldest first
        self._seen = np.zeros((n_layers, 0), np.float64)

    def add(self, report: np.ndarray, queries: int = 1):
        """A forward's report [layers, n] (n >= the tokens logged so far: new ones come last)."""
        n = report.shape[1]
        report = report.astype(np.float64)
        new = n - self.n  # the new tokens: the j-th of them saw the reported queries from its own on
        fresh = np.minimum(queries, new - np.arange(new)).astype(np.float64)
        self._seen = np.concatenate([self._seen + queries, np.broadcast_to(fresh, (report.shape[0], new))], 1)
        self._total = _pad(self._total, n) + report
        self._last = report
        self._ring.append((report, queries))
        while len(self._ring) > 1 and sum(q for _, q in self._ring[1:]) >= self.window_queries:
            self._ring.pop(0)  # the newer reports already cover the window
        self.n = n

    def compact(self, keep: np.ndarray):
        """Keep the slots marked in `keep` [layers, n] (the same count per layer), order preserved."""
        k = int(keep[0].sum())
        idx = np.nonzero(keep)[1].reshape(keep.shape[0], k)

        def take(a):
            return np.take_along_axis(_pad(a, self.n), idx, 1)
        self._total, self._last = take(self._total), take(self._last)
        self._seen = take(self._seen)
        self._ring = [(take(r), q) for r, q in self._ring]
        self.n = k

    @property
    def total(self) -> np.ndarray:
        return _pad(self._total, self.n)

    @property
    def last(self) -> np.ndarray:
        return _pad(self._last, self.n)

    @property
    def seen(self) -> np.ndarray:
        return self._seen

    @property
    def window(self) -> np.ndarray:
        out = np.zeros((self._total.shape[0], self.n))
        for r, _ in self._ring:
            out[:, :r.shape[1]] += r
        return out
