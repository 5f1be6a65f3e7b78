"""OpenVINO GenAI's own cache eviction (openvino_genai CacheEvictionConfig on its paged-attention
pipeline), selectable like our policies so that both run on the same model, prompt and budget.

It is no scorer: GenAI scores and frees whole cache blocks inside its own step, from the attention
scores its paged-attention kernel accumulates, so the run goes through its own runner (genai.py).
"""
from .base import Runtime, register


@register
class OvGenAI(Runtime):
    name = "ov-genai"
    description = ("OpenVINO GenAI's cache eviction: paged attention, whole blocks freed by accumulated "
                   "attention scores (--genai-aggregation); sizes rounded to blocks")
    runtime = "genai"
    mechanism = "blocks"
    settings = ("genai_aggregation",)
