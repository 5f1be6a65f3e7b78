"""Key-norm eviction as in Devoto et al. 2024, "A Simple and Effective L2 Norm-Based Strategy for
KV Cache Compression" (arXiv 2406.11430; kvpress KnormPress).

A low key norm usually goes with a high attention score, so low-norm keys are KEPT and high-norm
keys evicted: score = -mean over KV heads of ||k||_2.
"""
import numpy as np

from .base import Policy, register


@register
class KNorm(Policy):
    name = "knorm"
    description = "keeps LOW key-norm tokens, evicts high (Devoto et al. 2024, kvpress KnormPress)"
    order_free = True  # one key, one score

    def score(self, keys, positions, ctx):
        return -np.linalg.norm(keys, axis=-1).mean(axis=1)
