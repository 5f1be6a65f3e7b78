"""The one module that talks to OpenVINO: load, instrument, compile and run a stateful LLM export.

Instrumentation: for every layer, the NEW tokens' post-RoPE keys and their values (the last input
of the Concat that feeds each state's Assign, `[B, kv_heads, T, head_dim]`) become extra graph
outputs. Policies score tokens from keys kept on the host, and compaction writes the cache from
host copies: the cache is never read while decoding (reading an f16 state costs far more than
writing one).
With `queries=True`, the attention op's query input (post-RoPE) is exposed too, for calibration.
The logits output is cut to the last position so a long prefill does not return `T x vocab` floats.
Everything returned is NumPy.
"""
from __future__ import annotations

import json
import time
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_KEY_STATE = re.compile(r"past_key_values\.(\d+)\.keypresent\.\d+\.key")
_VALUE_STATE = re.compile(r"past_key_values\.(\d+)\.valuepresent\.\d+\.value")
REQUIRED_FILES = ("openvino_model.xml", "openvino_model.bin", "config.json")


class ModelError(ValueError):
    """A model directory or device that cannot be used; the message is for the user."""


@dataclass(frozen=True)
class ModelInfo:
    model_dir: str
    model_type: str
    n_layers: int
    kv_heads: int
    q_heads: int
    head_dim: int
    vocab_size: int
    max_context: int
    sliding_windows: tuple  # per layer: window size in tokens, or 0 for full attention
    eos_token_ids: tuple
    config: dict = field(repr=False, default_factory=dict)


def read_info(model_dir: str | Path) -> ModelInfo:
    d = Path(model_dir)
    if not d.is_dir():
        raise ModelError(f"model directory not found: {d}")
    missing = [f for f in REQUIRED_FILES if not (d / f).is_file()]
    if missing:
        raise ModelError(f"{d} is not an OpenVINO LLM export (missing {', '.join(missing)}); "
                         f"export one with `python -m triattn export`")
    try:
        cfg = json.loads((d / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ModelError(f"cannot read {d / 'config.json'}: {e}") from None
    text_cfg = cfg.get("text_config", cfg)
    try:
        n_layers = int(text_cfg["num_hidden_layers"])
        q_heads = int(text_cfg["num_attention_heads"])
        kv_heads = int(text_cfg.get("num_key_value_heads") or q_heads)
        head_dim = int(text_cfg.get("head_dim") or text_cfg["hidden_size"] // q_heads)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelError(f"{d / 'config.json'} does not describe a decoder LLM ({e})") from None
    layer_types = text_cfg.get("layer_types") or []
    window = int(text_cfg.get("sliding_window") or 0)
    if layer_types:
        windows = tuple(window if t == "sliding_attention" else 0 for t in layer_types)
    elif window and text_cfg.get("use_sliding_window", cfg.get("model_type") == "mistral"):
        windows = (window,) * n_layers
    else:
        windows = (0,) * n_layers
    return ModelInfo(str(d), cfg.get("model_type", "?"), n_layers, kv_heads, q_heads, head_dim,
                     int(text_cfg.get("vocab_size", 0)), int(text_cfg.get("max_position_embeddings", 4096)),
                     windows, tuple(_eos_ids(d, cfg)), text_cfg)


def _eos_ids(d: Path, cfg: dict) -> list[int]:
    ids = []
    for src in (d / "generation_config.json", None):
        try:
            c = json.loads(src.read_text()) if src else cfg
        except (OSError, json.JSONDecodeError):
            continue
        e = c.get("eos_token_id")
        ids += e if isinstance(e, list) else ([e] if e is not None else [])
    return sorted(set(ids))


def available_devices() -> list[str]:
    import openvino as ov
    return list(ov.Core().available_devices)


def resolve_device(requested: str) -> tuple[str, str | None]:
    """Return (device, notice). An absent device falls back to CPU with a notice, as the card did."""
    req = (requested or "CPU").upper()
    devices = available_devices()
    if req == "AUTO" or req in devices or any(d.startswith(req + ".") for d in devices):
        return req, None
    return "CPU", f"device {req} is not available here (found: {', '.join(devices)}); using CPU"


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


def instrument(model, n_layers: int, queries: bool = False):
    """Add `triattn.key.{i}`, `triattn.value.{i}` (and `triattn.query.{i}`) outputs; cut logits to
    the last position."""
    import openvino.opset13 as ops

    concats, value_concats = {}, {}
    for sink in model.get_sinks():
        for pattern, found in ((_KEY_STATE, concats), (_VALUE_STATE, value_concats)):
            m = pattern.fullmatch(sink.get_variable_id())
            if m:
                concat = _walk_to(sink.input_value(0), "Concat")
                if concat is None:
                    raise ModelError("unsupported graph: a KV state is not written by a Concat")
                found[int(m.group(1))] = concat
    if sorted(concats) != list(range(n_layers)) or sorted(value_concats) != list(range(n_layers)):
        raise ModelError(f"expected key states for {n_layers} layers, found {len(concats)}; "
                         f"is this a stateful export (text-generation-with-past)?")
    extra = []
    for i in range(n_layers):
        for name, c in (("key", concats[i]), ("value", value_concats[i])):
            extra.append((f"triattn.{name}.{i}", c.input_value(c.get_input_size() - 1)))
        if queries:
            sdpa = _consumers_until(concats[i], "ScaledDotProductAttention")
            if sdpa is None:
                raise ModelError("cannot find the attention op to read queries from")
            extra.append((f"triattn.query.{i}", sdpa.input_value(0)))
    # Cut logits to the last position: rewire the existing Result so its name stays "logits".
    logits_result = model.output("logits").get_node()
    full = logits_result.input_value(0)
    last = ops.gather(full, ops.constant(np.array([-1], np.int64)), ops.constant(np.int64(1)))
    logits_result.input(0).replace_source_output(last.output(0))
    for name, out in extra:
        r = ops.result(out)
        r.output(0).set_names({name})
        model.add_results([r])
    model.validate_nodes_and_infer_types()
    return model


PRECISIONS = {"default": {}, "f32": {"INFERENCE_PRECISION_HINT": "f32", "KV_CACHE_PRECISION": "f32"}}
_cache: dict = {}
_cache_lock = threading.Lock()


class LoadedModel:
    """A compiled, instrumented model; share one across threads, one Session per run."""

    def __init__(self, model_dir, device="CPU", precision="default", queries=False):
        import openvino as ov
        if precision not in PRECISIONS:
            raise ModelError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        self.info = read_info(model_dir)
        self.device, self.notice = resolve_device(device)
        self.precision = precision
        core = ov.Core()
        try:
            model = core.read_model(Path(model_dir) / "openvino_model.xml")
        except RuntimeError as e:
            raise ModelError(f"cannot read the OpenVINO model in {model_dir}: {str(e).splitlines()[0]}") from None
        names = {i.get_any_name() for i in model.inputs}
        if not {"input_ids", "attention_mask", "position_ids"} <= names:
            raise ModelError(f"{model_dir} is not a text-generation export (inputs: {', '.join(sorted(names))})")
        self.has_beam_idx = "beam_idx" in names
        model = instrument(model, self.info.n_layers, queries)
        cfg = {"PERFORMANCE_HINT": "LATENCY", **PRECISIONS[precision]}
        try:
            self.compiled = core.compile_model(model, self.device, cfg)
        except RuntimeError as e:
            raise ModelError(f"cannot compile the model for {self.device}: {str(e).splitlines()[0]}") from None
        self.kv_precision = self._kv_precision()
        self.queries = queries
        self._warm_up()

    def _kv_precision(self):
        import openvino as ov
        try:
            return self.compiled.get_property("KV_CACHE_PRECISION")
        except RuntimeError:  # devices without the property keep f16 caches
            return ov.Type.f16

    @property
    def kv_bytes_per_token(self) -> int:
        i = self.info
        return int(2 * i.n_layers * i.kv_heads * i.head_dim * self.kv_precision.bitwidth / 8)

    def _warm_up(self):
        s = self.new_session()
        s.forward(np.array([1, 1]), np.arange(2), np.ones(2, np.int64), values=True)
        s.forward(np.array([1]), np.array([2]), np.ones(3, np.int64), values=True)

    def new_session(self) -> "Session":
        return Session(self)


def load_model(model_dir, device="CPU", precision="default", queries=False) -> LoadedModel:
    """Compile once per (model, device, precision, queries) and reuse across runs."""
    key = (str(Path(model_dir).resolve()), (device or "CPU").upper(), precision, queries)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = LoadedModel(model_dir, device, precision, queries)
        return _cache[key]


class Session:
    """One infer request: its own KV cache. Not thread-safe; one per run."""

    def __init__(self, model: LoadedModel):
        self.model = model
        self.request = model.compiled.create_infer_request()
        n = model.info.n_layers
        self._key_names = [f"triattn.key.{i}" for i in range(n)]
        self._value_names = [f"triattn.value.{i}" for i in range(n)]
        self._query_names = [f"triattn.query.{i}" for i in range(n)] if model.queries else []
        self._states = None
        self._beam = np.zeros(1, np.int32)
        self.timings: dict | None = None  # phase -> seconds per forward, when profiling

    def reset(self):
        self.request.reset_state()

    def forward(self, input_ids, position_ids, attention_mask, values: bool = False, keys: bool = True):
        """Run T new tokens. Returns (last logits [V], new keys [layers, kv_heads, T, head_dim] or
        None, new values likewise or None); a baseline asks for neither."""
        t0 = time.perf_counter()
        inputs = {"input_ids": np.asarray(input_ids, np.int64).reshape(1, -1),
                  "position_ids": np.asarray(position_ids, np.int64).reshape(1, -1),
                  "attention_mask": np.asarray(attention_mask, np.int64).reshape(1, -1)}
        if self.model.has_beam_idx:
            inputs["beam_idx"] = self._beam
        t1 = time.perf_counter()
        self.request.infer(inputs, share_inputs=True, share_outputs=True)  # no copies of all outputs
        t2 = time.perf_counter()
        r = self.request
        logits = r.get_tensor("logits").data[0, -1].copy()
        k = np.stack([r.get_tensor(n).data[0] for n in self._key_names]) if keys or values else None
        v = np.stack([r.get_tensor(n).data[0] for n in self._value_names]) if values else None
        if self.timings is not None:
            for phase, dt in (("inputs", t1 - t0), ("infer", t2 - t1), ("outputs", time.perf_counter() - t2)):
                self.timings[phase].append(dt)
        return logits, k, v

    def queries(self) -> np.ndarray:
        """Post-RoPE queries of the last forward: [layers, q_heads, T, head_dim]."""
        return np.stack([self.request.get_tensor(n).data[0] for n in self._query_names])

    def _state_map(self):
        if self._states is None:
            self._states = {}
            for s in self.request.query_state():
                for kind, pat in (("k", _KEY_STATE), ("v", _VALUE_STATE)):
                    m = pat.fullmatch(s.name)
                    if m:
                        self._states[(kind, int(m.group(1)))] = s
        return self._states

    def read_kv(self):
        """Copies of the cache: (keys, values), each a list per layer of [kv_heads, L, head_dim]."""
        st, n = self._state_map(), self.model.info.n_layers
        return ([st[("k", i)].state.data[0].copy() for i in range(n)],
                [st[("v", i)].state.data[0].copy() for i in range(n)])

    def write_kv(self, keys, values):
        """Replace the cache with keys/values [layers, kv_heads, L, head_dim] (or per-layer lists)."""
        import openvino as ov
        st = self._state_map()
        for i, (k, v) in enumerate(zip(keys, values)):
            st[("k", i)].state = ov.Tensor(np.ascontiguousarray(k[None]))
            st[("v", i)].state = ov.Tensor(np.ascontiguousarray(v[None]))

    def cache_len(self) -> int:
        st = self._state_map()
        return int(st[("k", 0)].state.shape[2])
