"""The export transformed into OpenVINO's PagedAttention form, as OpenVINO GenAI's continuous-batching
pipeline transforms it (`paged_attention_transformation`): per-layer block tables, score outputs when
asked, caches typed [blocks, kv_heads, BLOCK, head_dim] in the run's cache precision, and logits for
the last token only. paged.py compiles and drives the result. Scope: issue 27.
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelError, reason
from .pool import BLOCK

PAGED_REFUSAL = "the model does not take OpenVINO's paged form"  # how model.load_model tells a fallback


def transform(model, info, cache_type: str, scores: bool):
    """The PagedAttention form with its caches typed [blocks, kv_heads, BLOCK, head_dim] and logits
    for the last token only; a ModelError when the export does not take it (the stateful form then
    runs)."""
    import openvino as ov
    from openvino._offline_transformations import paged_attention_transformation
    try:
        paged_attention_transformation(model, use_block_indices_inputs=True, use_score_outputs=scores,
                                       allow_score_aggregation=scores)
    except RuntimeError as e:
        raise ModelError(f"{PAGED_REFUSAL}: {reason(e)}") from None
    names = {i.get_any_name(): i for i in model.inputs}
    want = [f"{kind}_cache.{i}" for i in range(info.n_layers) for kind in ("key", "value")]
    if any(n not in names for n in want + ["past_lens", "block_indices.0"]):
        raise ModelError(f"{PAGED_REFUSAL} (no per-layer caches after it)")
    shape = ov.PartialShape([-1, info.kv_heads, BLOCK, info.head_dim])
    for n in want:
        p = names[n].get_node()
        p.set_element_type(getattr(ov.Type, cache_type))
        p.set_partial_shape(shape)
    _last_logits_only(model)
    try:
        model.validate_nodes_and_infer_types()
    except RuntimeError as e:
        raise ModelError(f"{PAGED_REFUSAL}: {reason(e)}") from None
    return model


def _last_logits_only(model):
    """Feed the vocabulary projection the last token's hidden state only, as GenAI does before its
    sampler: our loop reads the last logits alone, and the projection of every prompt token took
    about 10% of a 2,000-token prefill on the default model. In the paged form tokens run along
    axis 0 ([tokens, 1, hidden]). A graph of another shape keeps every token's logits."""
    import openvino.opset13 as ops
    out = next((o for o in model.outputs if "logits" in o.get_names()), None)
    node = out.get_node().input_value(0).get_node() if out is not None else None
    while node is not None and node.get_type_name() in ("Convert", "Multiply", "Divide", "Tanh"):  # softcaps, casts
        node = node.input_value(0).get_node()
    if node is None or node.get_type_name() != "MatMul":
        return
    hidden = node.input_value(0)
    rank = hidden.get_partial_shape().rank
    if not rank.is_static or rank.get_length() != 3:
        return
    last = ops.slice(hidden, np.array([-1]), np.array([np.iinfo(np.int64).max]), np.array([1]), np.array([0]))
    node.input(0).replace_source_output(last.output(0))
