"""OpenVINO GenAI's own cache eviction (openvino_genai CacheEvictionConfig on its paged-attention
pipeline), selectable like our policies so that both run on the same model, prompt and budget.

It is no scorer: GenAI scores and frees whole cache blocks inside its own step, from the attention
scores its paged-attention kernel accumulates, so the run goes through `triattn/genai.py`.
"""
from .base import Policy, register


@register
class OvGenAI(Policy):
    name = "ov-genai"
    description = ("OpenVINO GenAI's cache eviction: paged attention, whole blocks freed by accumulated "
                   "attention scores (--genai-aggregation); sizes rounded to blocks")
    needs_keys = False
    backend = "genai"
    mechanism = "blocks"

    def score(self, keys, positions, ctx):
        raise NotImplementedError("ov-genai scores inside OpenVINO GenAI; run it through runs.stream_run")
