"""A control: uniform random scores from the run's seeded generator, the same for every layer."""
import numpy as np

from .base import Policy, register


@register
class RandomScores(Policy):
    name = "random"
    description = "control: evicts random tokens (seeded)"
    needs_keys = False

    def score(self, keys, positions, ctx):
        return np.broadcast_to(ctx.rng.random(positions.shape[1]), positions.shape)
