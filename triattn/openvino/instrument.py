"""Graph instrumentation of a stateful LLM export, before it is compiled.

For every layer, the NEW tokens' post-RoPE keys and their values (the last input of the Concat
that feeds each state's Assign, `[B, kv_heads, T, head_dim]`) become extra graph outputs
`triattn.key.{i}` and `triattn.value.{i}`; with `queries=True` the attention op's query input
(post-RoPE) becomes `triattn.query.{i}`, for calibration.

Only the last position's logits are computed: the hidden states are cut to the last position
BEFORE the LM head's MatMul (as OpenVINO GenAI does). A Gather after the LM head still had the
CPU plugin compute every position's logits: a 3000-token prefill of a model with a 131,072-token
vocabulary grew the process by 2.3 GB, where gpt-oss's 201,088 tokens would take 2.4 GB more.
"""
from __future__ import annotations

import re

import numpy as np

from ..errors import ModelError

KEY_STATE = re.compile(r"past_key_values\.(\d+)\.keypresent\.\d+\.key")
VALUE_STATE = re.compile(r"past_key_values\.(\d+)\.valuepresent\.\d+\.value")


def _walk_to(output, type_name: str):
    node = output.get_node()
    while node.get_type_name() != type_name:
        if node.get_type_name() not in ("Convert", "Gather", "Reshape") or node.get_input_size() == 0:
            return None
        node = node.input_value(0).get_node()
    return node


def _consumers_until(node, type_name: str, depth: int = 6):
    """Breadth-first search forward from `node` for the first op of `type_name`."""
    frontier = [node]
    for _ in range(depth):
        nxt = []
        for n in frontier:
            for out in n.outputs():
                for inp in out.get_target_inputs():
                    c = inp.get_node()
                    if c.get_type_name() == type_name:
                        return c
                    nxt.append(c)
        frontier = nxt
    return None


# Ops that may stand between the LM head's MatMul and the logits Result (precision converts, a
# soft-capping tanh between a divide and a multiply).
_HEAD_TAIL = ("Convert", "Multiply", "Divide", "Tanh", "Add")


def _lm_head(model):
    """The MatMul that produces the logits, or None if the graph has another shape."""
    node = model.output("logits").get_node().input_value(0).get_node()
    for _ in range(8):
        if node.get_type_name() == "MatMul":
            return node
        if node.get_type_name() not in _HEAD_TAIL or node.get_input_size() == 0:
            return None
        node = node.input_value(0).get_node()
    return None


def _last_position_only(model, ops):
    """Cut the LM head's input [B, T, hidden] to the last position; if the head is not found,
    cut the logits themselves (same result, more work)."""
    last = ops.constant(np.array([-1], np.int64))
    axis = ops.constant(np.int64(1))
    head = _lm_head(model)
    if head is not None and head.input_value(0).get_partial_shape().rank.get_length() == 3:
        hidden = head.input_value(0)
        head.input(0).replace_source_output(ops.gather(hidden, last, axis).output(0))
        return
    logits_result = model.output("logits").get_node()  # rewired, so its name stays "logits"
    full = logits_result.input_value(0)
    logits_result.input(0).replace_source_output(ops.gather(full, last, axis).output(0))


def instrument(model, n_layers: int, queries: bool = False):
    """Add `triattn.keys`, `triattn.values` (and `triattn.query.{i}`) outputs; cut logits to the
    last position."""
    import openvino.opset13 as ops

    concats, value_concats = {}, {}
    for sink in model.get_sinks():
        for pattern, found in ((KEY_STATE, concats), (VALUE_STATE, value_concats)):
            m = pattern.fullmatch(sink.get_variable_id())
            if m:
                concat = _walk_to(sink.input_value(0), "Concat")
                if concat is None:
                    raise ModelError("unsupported graph: a KV state is not written by a Concat")
                found[int(m.group(1))] = concat
    if sorted(concats) != list(range(n_layers)) or sorted(value_concats) != list(range(n_layers)):
        raise ModelError(f"expected key states for {n_layers} layers, found {len(concats)}; "
                         f"is this a stateful export (text-generation-with-past)?")
    # One output for all layers' new keys and one for values ([layers, kv_heads, T, head_dim] at
    # batch 1): a single fetch per step instead of two per layer.
    extra = []
    for name, found in (("keys", concats), ("values", value_concats)):
        news = [found[i].input_value(found[i].get_input_size() - 1) for i in range(n_layers)]
        extra.append((f"triattn.{name}", ops.concat(news, 0).output(0)))
    for i in range(n_layers):
        if queries:
            sdpa = _consumers_until(concats[i], "ScaledDotProductAttention")
            if sdpa is None:
                raise ModelError("cannot find the attention op to read queries from")
            extra.append((f"triattn.query.{i}", sdpa.input_value(0)))
    _last_position_only(model, ops)
    for name, out in extra:
        r = ops.result(out)
        r.output(0).set_names({name})
        model.add_results([r])
    model.validate_nodes_and_infer_types()
    return model
