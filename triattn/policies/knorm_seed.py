"""The model card's rule ("GPT-OSS-20B INT4 - TriAttention KV token pruning"): score each token by
the mean over heads of its key's L2 norm and evict the LOWEST. This is the opposite of Devoto et al.
2024 (see knorm.py); it is kept so the card's results can be reproduced and compared.
"""
import numpy as np

from .base import Policy, register


@register
class KNormSeed(Policy):
    name = "knorm-seed"
    description = "the model card's rule: keeps HIGH key-norm tokens, evicts low"
    order_free = True  # one key, one score

    def score(self, keys, positions, ctx):
        return np.linalg.norm(keys, axis=-1).mean(axis=1)
