"""StreamingLLM (Xiao et al. 2023, arXiv 2309.17453): keep the attention-sink tokens and the most
recent ones. Position only: the score is the position, so the newest tokens fill the budget.
"""
import numpy as np

from .base import Policy, register


@register
class Streaming(Policy):
    name = "streaming"
    description = "StreamingLLM: sink tokens + the most recent ones (position only)"
    needs_keys = False

    def score(self, keys, positions, ctx):
        return positions.astype(np.float64)
