"""The baseline: a full cache, nothing evicted."""
from .base import Policy, register


@register
class NoEviction(Policy):
    name = "none"
    description = "baseline: full KV cache, nothing evicted"
    prunes = False
    needs_keys = False
