"""The policy interface and registry. A policy is one pure `score()`: higher means keep. A choice
that evicts inside another runtime (ov-genai) is registered beside the policies as a `Runtime`: it
has no score, only the name of the runner that executes it (runner.py) and the mechanism it uses."""
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
    # Slots whose scores compete, shaped like `positions`: live and not pinned (a kept prompt).
    # Statistics over tokens (z-scores) are taken over these only; None: every slot.
    scored: np.ndarray | None = None
    # [layers] bool: layers whose choice follows the scores (the others, sliding-window layers under
    # compaction, keep their newest tokens); a policy may leave the rest unscored. None: all.
    layers: np.ndarray | None = None
    prompt_len: int = 0                       # tokens of the prompt (positions 0 .. prompt_len - 1)
    # [layers, kv_heads, L, head_dim + head_dim/2], in the order of `keys`: each key followed by the
    # magnitudes |k_f| of its RoPE bands, as the store keeps them for a policy that reads them
    # (`reads_band_norms`); None: not kept (the policy takes them from the keys).
    key_rows: np.ndarray | None = None
    attention: object = None                  # core.attention.AttentionLog, for policies that read it


class Policy:
    name = ""
    description = ""
    prunes = True          # False only for the baseline
    needs_keys = True      # keep post-RoPE keys of cached tokens on the host
    runtime = "loop"       # runs in our decode loop (runner.py)
    options: tuple = ()    # its own settings a run may change (fields of a dataclass policy)
    mechanism: str | None = None   # None: the run's --evict mechanism applies
    settings: tuple = ()   # EvictionConfig fields that only this choice reads
    # True: score() gets positions [layers, kv_heads, L] and returns one score per KV head of each
    # layer; only compaction (`hard`) can keep a different token set per KV head.
    per_kv_head = False
    per_layer_variant: str | None = None  # for messages: the same policy selecting per layer
    reads_attention = False  # scores from the attention the model paid (ScoreContext.attention)
    # True: a token's score depends on its key and position and on statistics over the whole set,
    # not on the order the tokens come in; score() may then get them in any order (prune.py).
    order_free = False
    reads_band_norms = False  # ScoreContext.key_rows saves it work: the run's store keeps them

    def prefill_window(self, piece: int) -> int:
        """How many of a prompt piece's last queries the attention report sums, for a policy
        that reads it."""
        return 1

    def prepare(self, model_dir: str) -> object:
        """Load what the policy needs for a model (e.g. calibration); None if nothing."""
        return None

    def score(self, keys: np.ndarray, positions: np.ndarray, ctx: ScoreContext) -> np.ndarray:
        """keys [layers, kv_heads, L, head_dim] post-RoPE; positions [layers, L] -> scores [layers, L]
        (per KV head: positions and scores [layers, kv_heads, L])."""
        raise NotImplementedError


class Runtime:
    """A choice that another runtime executes whole, with its own eviction: no scorer."""
    name = ""
    description = ""
    prunes = True
    needs_keys = False
    runtime = ""           # the runner (runner.RUNNERS)
    mechanism = ""         # what it evicts with, shown where our mechanisms are
    settings: tuple = ()

    def prepare(self, model_dir: str) -> object:
        return None


def check_whole(name: str, value, low: int = 1) -> None:
    """A policy setting that must be a whole number of at least `low` (a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}")


def register(cls):
    _REGISTRY[cls.name] = cls()
    return cls


def register_variant(policy: Policy) -> Policy:
    """Register an instance under its own name: one policy class, other settings."""
    _REGISTRY[policy.name] = policy
    return policy
