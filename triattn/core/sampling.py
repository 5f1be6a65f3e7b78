"""Token choice from logits: greedy, or temperature / top-k / top-p sampling with exactly one
uniform draw per step from a seeded generator, so two runs that see the same logits pick the
same token, and a run's draws do not depend on what another run did."""
from __future__ import annotations

import numpy as np

from .config import SamplingConfig


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    x = x - x.max()
    return x - np.log(np.exp(x).sum())


class Sampler:
    def __init__(self, cfg: SamplingConfig):
        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed)

    def pick(self, logits: np.ndarray) -> int:
        if self.cfg.temperature == 0:
            return int(np.argmax(logits))
        u = self.rng.random()
        logp = log_softmax(logits / self.cfg.temperature)
        order = np.argsort(-logp, kind="stable")
        if self.cfg.top_k:
            order = order[:self.cfg.top_k]
        p = np.exp(logp[order])
        p /= p.sum()
        cum = np.cumsum(p)
        if self.cfg.top_p < 1.0:  # smallest prefix whose mass reaches top_p
            n = int(np.searchsorted(cum, self.cfg.top_p) + 1)
            order, cum = order[:n], cum[:n] / cum[n - 1]
        return int(order[min(int(np.searchsorted(cum, u, side="right")), len(order) - 1)])
