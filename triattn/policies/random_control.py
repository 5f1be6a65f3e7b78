"""A control: each absolute position gets one uniform random score per run (from the run's seed),
the same in every layer and at every prune event, however the cache is laid out."""
import numpy as np

from .base import Policy, register


@register
class RandomScores(Policy):
    name = "random"
    description = "control: evicts random tokens (seeded)"
    needs_keys = False

    def score(self, keys, positions, ctx):
        table = np.random.default_rng(ctx.seed).random(int(positions.max()) + 1)
        return table[positions]
