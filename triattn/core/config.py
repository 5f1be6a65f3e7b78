"""Validated settings for eviction and sampling. Errors are ValueErrors with a user-facing message."""
from __future__ import annotations

from dataclasses import asdict, dataclass

MECHANISMS = {
    "hard": "compact the cache: evicted tokens are removed (saves memory and compute)",
    "mask": "zeros in attention_mask: exact eviction, cache untouched (saves nothing)",
    "zero": "the model card's K/V zeroing: NOT a true eviction (a zero key still takes softmax mass)",
}
# OpenVINO GenAI's score aggregation for the ov-genai policy (its AggregationMode). ADAPTIVE_RKV is a
# choice of its own (ov-genai-rkv, policies/ov_genai.py): it has its own settings.
GENAI_AGGREGATIONS = {
    "norm_sum": "attention scores summed over steps, divided by each token's time in the cache (GenAI's default)",
    "sum": "attention scores summed over steps",
}
MAX_NEW_TOKENS_CAP = 4096
# Named settings, one option away; budget 2048 is the paper's GPT-OSS-20B setting (override with
# --budget). Both follow the reference code (github.com/WeianMao/triattention):
# Both select per KV head, as the reference does (policy triattention-head).
# - paper: its Hugging Face path that the paper's numbers come from: the prompt is never pruned, no
#   recent window, no sinks; prune when the cache reaches budget + 128 and cut back to the budget.
# - vllm: its vLLM runtime: the 128 newest tokens always kept, the prompt prunable like the rest.
PRESETS = {
    "triattention-paper": dict(policy="triattention-head", budget=2048, prune_interval=128, recent_window=0,
                               sink_tokens=0, keep_prompt=True),
    "triattention-vllm": dict(policy="triattention-head", budget=2048, prune_interval=128, recent_window=128,
                              sink_tokens=0, keep_prompt=False),
}


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


DEFAULT_PREFILL_CHUNK = 512
PROMPT_SELECTIONS = ("policy", "query")


def default_interval(budget: int) -> int:
    return max(16, budget // 8)


@dataclass(frozen=True)
class EvictionConfig:
    """How the pruned run manages its cache.

    The cache never holds more than `budget + prune_interval - 1` tokens after a decode step:
    when the next step would pass that, the cache is cut so that, with the new token, it holds
    exactly `budget`. `prune_interval=1` prunes every step, as the model card does. Left unset it
    is `max(16, budget // 8)`: each prune event rewrites the whole cache, so its cost grows with the
    budget, and an interval that grows with it keeps pruning near 1% of decode time.
    The first `sink_tokens` positions and the `recent_window` newest cached tokens are always kept;
    `keep_prompt` keeps every prompt token too (only generated tokens compete), as TriAttention's
    reference does on its paper path.

    `prefill_chunk` feeds the prompt in pieces of that many tokens; a pruning run then cuts its
    cache to `budget - 1` before each piece, so a long prompt is read in time and memory linear in
    its length. 0 reads the prompt in one forward (cut once after it, if over). Left unset it is
    DEFAULT_PREFILL_CHUNK for a pruning policy of our loop (each piece attends to at most
    budget - 1 + piece tokens, so time and peak memory grow linearly with the prompt) and 0 for the
    baseline, which keeps everything it reads anyway.

    A choice that runs in another runtime (ov-genai) has its own mechanism: `evict` is set to it,
    `genai_aggregation` picks how that runtime aggregates attention scores, and it prefills its
    own way (no `prefill_chunk`).

    `prompt_select="query"` reads the whole prompt without cutting, then keeps the prompt tokens the
    prompt's last 32 tokens (the question) attended to most (SnapKV's selection, Li et al. 2024),
    and decodes with the policy from there; "policy" lets the policy cut while the prompt is read.
    """
    policy: str = "knorm"
    evict: str = "hard"
    budget: int = 128
    recent_window: int = 32
    sink_tokens: int = 4
    prune_interval: int | None = None
    genai_aggregation: str = "norm_sum"
    keep_prompt: bool = False
    policy_options: tuple = ()   # (name, value) pairs: the policy's own settings (e.g. offset_max)
    prefill_chunk: int | None = None
    prompt_select: str = "policy"

    def __post_init__(self):
        from ..policies import get_policy  # late import: policies import nothing from here
        policy = get_policy(self.policy)
        if policy.mechanism is not None:  # it evicts its own way
            object.__setattr__(self, "evict", policy.mechanism)
            if self.prefill_chunk:
                raise ValueError(f"{self.policy} prefills its own way: a prefill chunk does not apply to it")
            object.__setattr__(self, "prefill_chunk", 0)
            if self.prompt_select != "policy":
                raise ValueError(f"{self.policy} reads the prompt its own way: query-aware prompt selection does "
                                 f"not apply to it")
        elif self.evict not in MECHANISMS:
            raise ValueError(f"unknown eviction mechanism {self.evict!r}; choose one of {', '.join(MECHANISMS)}")
        elif (getattr(policy, "reads_attention", False) or self.prompt_select == "query") and self.evict == "mask":
            what = f"policy {self.policy}" if getattr(policy, "reads_attention", False) else "query-aware prompt selection"
            raise ValueError(f"{what} reads the attention the model paid, which only the paged cache form reports, "
                             f"and mask eviction runs on the stateful form; use --evict hard or zero")
        elif policy.per_kv_head and self.evict != "hard":
            raise ValueError(f"policy {self.policy} keeps a token set per KV head, which only hard eviction can do "
                             f"({self.evict} applies one mask to every head); use --evict hard, or --policy "
                             f"{policy.per_layer_variant} for one token set per layer")
        _check_int("budget", self.budget, 2)
        if self.prune_interval is None:
            object.__setattr__(self, "prune_interval", default_interval(self.budget))
        _check_int("recent_window", self.recent_window, 0)
        _check_int("sink_tokens", self.sink_tokens, 0)
        _check_int("prune_interval", self.prune_interval, 1)
        if self.prefill_chunk is None:
            object.__setattr__(self, "prefill_chunk", DEFAULT_PREFILL_CHUNK if policy.prunes else 0)
        _check_int("prefill_chunk", self.prefill_chunk, 0)
        if self.prompt_select not in PROMPT_SELECTIONS:
            raise ValueError(f"unknown prompt selection {self.prompt_select!r}; choose one of "
                             f"{', '.join(PROMPT_SELECTIONS)}")
        self.policy_object()  # its own settings must be ones it has, with valid values
        if not isinstance(self.keep_prompt, bool):
            raise ValueError(f"keep_prompt must be true or false, got {self.keep_prompt!r}")
        if self.genai_aggregation not in GENAI_AGGREGATIONS:
            raise ValueError(f"unknown GenAI aggregation {self.genai_aggregation!r}; choose one of "
                             f"{', '.join(GENAI_AGGREGATIONS)}")
        if self.sink_tokens + self.recent_window >= self.budget:
            raise ValueError(f"budget ({self.budget}) must exceed sink tokens + recent window "
                             f"({self.sink_tokens} + {self.recent_window}), or the policy has nothing to choose")

    def policy_object(self):
        """The policy, carrying this run's own settings (`policy_options`)."""
        from ..policies import configured
        return configured(self.policy, dict(self.policy_options))

    @property
    def prunes(self) -> bool:
        from ..policies import get_policy
        return get_policy(self.policy).prunes

    def as_dict(self) -> dict:
        """The settings; those that only some choice reads (genai_aggregation) only for that choice."""
        from ..policies import get_policy
        d, policy = asdict(self), get_policy(self.policy)
        if "genai_aggregation" not in policy.settings:
            d.pop("genai_aggregation")
        if self.policy_options:
            d["policy_options"] = dict(self.policy_options)
        else:
            d.pop("policy_options")
        if policy.runtime != "loop":  # it prefills its own way
            d.pop("prefill_chunk")
            d.pop("prompt_select")
        return d


@dataclass(frozen=True)
class SamplingConfig:
    """temperature 0 means greedy. One uniform draw per step from `seed`, so runs that see the
    same logits pick the same tokens."""
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int = 0

    def __post_init__(self):
        for name in ("temperature", "top_p"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
                raise ValueError(f"{name} must be a number, got {v!r}")
        if not 0.0 <= self.temperature <= 10.0:
            raise ValueError(f"temperature must be between 0 and 10, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        _check_int("top_k", self.top_k, 0)
        _check_int("seed", self.seed, 0)


def check_max_new_tokens(n) -> int:
    _check_int("max_new_tokens", n, 1)
    if n > MAX_NEW_TOKENS_CAP:
        raise ValueError(f"max_new_tokens is capped at {MAX_NEW_TOKENS_CAP}, got {n}")
    return n


def full_cache(**kw) -> EvictionConfig:
    """The baseline's settings: the full cache, nothing evicted (other fields as given, for display)."""
    from ..policies import BASELINE_POLICY
    return EvictionConfig(policy=BASELINE_POLICY, **kw)
