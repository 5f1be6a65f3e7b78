"""Eviction policies, one module each, registered by name when imported here. See base.py for the
interface; `get_policy` and `list_policies` read the registry once every module has filled it."""
import dataclasses

from . import attention, knorm, knorm_seed, none, ov_genai, random_control, streaming, triattention  # noqa: F401
from .base import _REGISTRY, Policy, Runtime, ScoreContext, register  # noqa: F401

BASELINE_POLICY = none.NoEviction.name  # the full cache every pruned run is compared with


def get_policy(name: str):
    if name not in _REGISTRY:
        raise ValueError(f"unknown policy {name!r}; choose one of {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def configured(name: str, options: dict):
    """The policy `name` carrying a run's own settings (kvpress-style: a policy holds its settings)."""
    policy = get_policy(name)
    if not options:
        return policy
    unknown = sorted(set(options) - set(policy.options))
    if unknown:
        have = f"its settings: {', '.join(policy.options)}" if policy.options else "it has no settings"
        raise ValueError(f"policy {name!r} has no setting {', '.join(unknown)}; {have}")
    return dataclasses.replace(policy, **options)


def pruning_policies() -> list[str]:
    """Every choice that prunes (all but the baseline), in list_policies() order."""
    return [n for n, p in sorted(_REGISTRY.items(), key=lambda kv: (kv[1].prunes, kv[0])) if p.prunes]


def list_policies() -> dict:
    """name -> one-line description, baseline first."""
    return {n: p.description for n, p in sorted(_REGISTRY.items(), key=lambda kv: (kv[1].prunes, kv[0]))}
