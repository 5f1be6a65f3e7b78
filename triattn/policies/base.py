"""The policy interface and registry. A policy is one pure `score()`: higher means keep (or, for a
policy that evicts inside another runtime, the name of the module that runs it: `backend`)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

_REGISTRY: dict = {}


@dataclass
class ScoreContext:
    """What a policy may look at besides keys and positions."""
    query_position: int                       # absolute position of the token about to be decoded
    seed: int = 0                             # the run's seed, for policies with randomness
    model_config: dict = field(default_factory=dict)   # the model's config.json (RoPE parameters...)
    calibration: object = None                # per-model statistics, for policies that need them


class Policy:
    name = ""
    description = ""
    prunes = True          # False only for the baseline
    needs_keys = True      # keep post-RoPE keys of cached tokens on the host
    # A policy that cannot be a scorer in our decode loop names the module of this package that runs
    # the whole generation instead (`generate()`, `settings()`, `describe()`), and the mechanism it evicts with.
    backend: str | None = None
    mechanism: str | None = None

    def prepare(self, model_dir: str) -> object:
        """Load what the policy needs for a model (e.g. calibration); None if nothing."""
        return None

    def score(self, keys: np.ndarray, positions: np.ndarray, ctx: ScoreContext) -> np.ndarray:
        """keys [layers, kv_heads, L, head_dim] post-RoPE; positions [layers, L] -> scores [layers, L]."""
        raise NotImplementedError


def register(cls):
    _REGISTRY[cls.name] = cls()
    return cls


def get_policy(name: str) -> Policy:
    from . import _load_all  # noqa: F401  (fills the registry)
    if name not in _REGISTRY:
        raise ValueError(f"unknown policy {name!r}; choose one of {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def list_policies() -> dict:
    """name -> one-line description, baseline first."""
    from . import _load_all  # noqa: F401
    return {n: p.description for n, p in sorted(_REGISTRY.items(), key=lambda kv: (kv[1].prunes, kv[0]))}
