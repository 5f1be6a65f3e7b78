"""OpenVINO GenAI's own cache eviction (openvino_genai CacheEvictionConfig on its paged-attention
pipeline), selectable like our policies so that both run on the same model, prompt and budget.

It is no scorer: GenAI scores and frees whole cache blocks inside its own step, from the attention
scores its paged-attention kernel accumulates, so the run goes through its own runner (genai.py).
Its eviction modes are variants of one choice, each with the settings GenAI documents:

- `ov-genai`: accumulated attention by blocks (H2O-like, SnapKV-scored prompt; --genai-aggregation).
- `ov-genai-kvcrush`: KVCrush (Jha et al. 2025, arXiv 2503.00022): of the blocks the attention rule
  would evict, `kvcrush_blocks` are kept anyway, the most representative ones: each token's binary
  "indicator" of attention heads, blocks compared with an anchor pattern (`anchor`: random, zeros,
  ones, mean, alternating; `kvcrush_seed` for random). Those blocks come out of the budget, as
  GenAI's own comparison counts them (768 tokens + 8 blocks against 1,024).
- `ov-genai-rkv`: Adaptive R-KV (Cai et al. 2025, arXiv 2505.24133; one of TriAttention's
  baselines): keep the blocks holding `attention_mass` of the attention (averaged over the last
  `rkv_window` steps), fill the rest with the most diverse blocks (lowest key cosine similarity).
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import Runtime, check_whole, register_variant

KVCRUSH_ANCHORS = ("random", "zeros", "ones", "mean", "alternating")  # GenAI's KVCrushAnchorPointMode


@dataclass(frozen=True)
class OvGenAI(Runtime):
    name: str = "ov-genai"
    description: str = ""
    options: tuple = ()         # which of the fields below a run may change (--policy-option NAME=VALUE)
    kvcrush_blocks: int = 0     # KVCrush's budget in blocks, taken from the run's budget (0: no KVCrush)
    anchor: str = "random"      # KVCrush's anchor pattern
    kvcrush_seed: int = 0       # KVCrush's random anchor seed
    adaptive_rkv: bool = False  # AggregationMode.ADAPTIVE_RKV instead of --genai-aggregation
    attention_mass: float = 0.9  # Adaptive R-KV: share of the attention whose blocks are kept (GenAI's default)
    rkv_window: int = 8         # Adaptive R-KV: steps its scores are averaged over (GenAI's default)
    runtime = "genai"
    mechanism = "blocks"

    def __post_init__(self):
        check_whole("kvcrush_blocks", self.kvcrush_blocks, 0)
        check_whole("kvcrush_seed", self.kvcrush_seed, 0)
        check_whole("rkv_window", self.rkv_window, 1)
        if self.anchor not in KVCRUSH_ANCHORS:
            raise ValueError(f"unknown KVCrush anchor {self.anchor!r}; choose one of {', '.join(KVCRUSH_ANCHORS)}")
        mass = self.attention_mass
        if isinstance(mass, bool) or not isinstance(mass, (int, float)) or not 0 < mass <= 1:
            raise ValueError(f"attention_mass must be a number in (0, 1], got {mass!r}")
        if self.adaptive_rkv and self.kvcrush_blocks:
            raise ValueError("OpenVINO GenAI's Adaptive R-KV cannot be combined with KVCrush")

    @property
    def settings(self) -> tuple:
        """EvictionConfig fields only this choice reads: Adaptive R-KV aggregates its own way."""
        return () if self.adaptive_rkv else ("genai_aggregation",)


OV_GENAI = register_variant(OvGenAI(
    description="OpenVINO GenAI's cache eviction: paged attention, whole blocks freed by accumulated attention "
                "scores (--genai-aggregation); sizes rounded to blocks"))
OV_GENAI_KVCRUSH = register_variant(OvGenAI(
    name="ov-genai-kvcrush", kvcrush_blocks=1, options=("kvcrush_blocks", "anchor", "kvcrush_seed"),
    description="OpenVINO GenAI's eviction with KVCrush (Jha et al. 2025): 1 block of the budget kept for the "
                "most representative of the blocks it would evict"))
OV_GENAI_RKV = register_variant(OvGenAI(
    name="ov-genai-rkv", adaptive_rkv=True, options=("attention_mass", "rkv_window"),
    description="OpenVINO GenAI's Adaptive R-KV (Cai et al. 2025): blocks holding 0.9 of the attention, the rest "
                "the most diverse; needs an OpenVINO GenAI later than 2026.4"))
