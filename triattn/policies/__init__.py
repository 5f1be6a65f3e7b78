"""Eviction policies, one module each, registered by name. See base.py for the interface."""
from .base import Policy, ScoreContext, get_policy, list_policies, register  # noqa: F401

_load_all = True
from . import knorm, knorm_seed, none, ov_genai, random_control, streaming, triattention  # noqa: E402,F401
