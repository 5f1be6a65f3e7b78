"""Load, compile and run a stateful LLM export; `load_model` chooses the cache form (this one, or
the paged form of paged.py).

The graph gets extra outputs first (instrument.py): every layer's new keys and values. Policies
score tokens from keys kept on the host, and compaction writes the cache from host copies: the
cache is never read while decoding (reading an f16 state costs far more than writing one).
Everything returned is NumPy. Whatever is wrong with a model directory or device (missing,
partial, corrupt, not an LLM export, absent device) is a ModelError with one line for the user.
"""
from __future__ import annotations

import time
import threading
import weakref
from pathlib import Path

import numpy as np

from ..errors import Cancelled, ModelError, reason, runtime_failure
from ..lru import Bounded
from .info import (FALLBACK_FAMILIES, REQUIRED_FILES, ModelInfo, available_devices,  # noqa: F401  (model's API)
                   check_ir_file, read_info, read_ir, resolve_device)
from .instrument import KEY_STATE, VALUE_STATE, instrument
from .settings import AUTO, PRECISIONS, model_precision

__all__ = ["ModelError", "ModelInfo", "LoadedModel", "Session", "read_info", "load_model", "resolve_device"]


MAX_MODELS = 2  # compiled models held at once (the page offers several; each holds its weights)
_models = Bounded(MAX_MODELS)


class LoadedModel:
    """A compiled, instrumented model; share one across threads, one Session per run."""
    form = "stateful"
    form_note = None  # why the paged form was asked for and this one runs, in one line

    def form_line(self, needs_attention_mask: bool) -> str | None:
        """One line on the cache form a run of a mechanism gets, when not the model's (form_note is
        said once, where the model is loaded)."""
        return None

    def __init__(self, model_dir, device="CPU", precision=AUTO, queries=False):
        import openvino as ov
        precision = model_precision(model_dir, precision)
        if precision not in PRECISIONS:
            raise ModelError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        self.info = read_info(model_dir)
        self.device = resolve_device(device)
        self.precision = precision
        core = ov.Core()
        model = read_ir(core, model_dir)
        names = {i.get_any_name() for i in model.inputs}
        outputs = {n for o in model.outputs for n in o.get_names()}
        if not {"input_ids", "attention_mask", "position_ids"} <= names or "logits" not in outputs:
            raise ModelError(f"{model_dir} is not a text-generation export (inputs: {', '.join(sorted(names))})")
        self.has_beam_idx = "beam_idx" in names
        model = instrument(model, self.info.n_layers, queries)
        cfg = {"PERFORMANCE_HINT": "LATENCY", **PRECISIONS[precision]}
        try:
            self.compiled = core.compile_model(model, self.device, cfg)
        except RuntimeError as e:
            raise ModelError(f"cannot compile the model for {self.device}: {reason(e)}") from None
        self.kv_precision = self._kv_precision()
        self.queries = queries
        self._sessions = weakref.WeakSet()
        self._lock = threading.Lock()  # sessions are made from several threads (page visitors)
        try:
            self._warm_up()
        except RuntimeError as e:
            raise ModelError(f"the model in {model_dir} compiles but cannot run: {reason(e)}") from None

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
        try:
            s.forward(np.array([1, 1]), np.arange(2), np.ones(2, np.int64), values=True)
            s.forward(np.array([1]), np.array([2]), np.ones(3, np.int64), values=True)
        finally:
            s.close()

    def new_session(self) -> "Session":
        with self._lock:
            s = Session(self)
            self._sessions.add(s)
            return s

    def live_sessions(self) -> int:
        """Infer requests of this model that are neither closed nor garbage: what runs still hold."""
        return sum(1 for s in list(self._sessions) if s.request is not None)


FORMS = ("paged", "stateful")  # OpenVINO's PagedAttention form (paged.py) or the stateful export
DEFAULT_FORM = "paged"  # what the page and every command run unless told (--form)


def load_model(model_dir, device="CPU", precision=AUTO, queries=False, form="stateful"):
    """Compile once per (model, device, precision, queries, form) and reuse across runs. AUTO
    precision is the model folder's own choice (triattn.settings), else the device's default.

    The one place the cache form is chosen: "paged" where the export takes the transformation,
    else the stateful form, with `form_note` saying why in one line. Calibration (queries) reads
    the stateful graph's queries, so it is always stateful.
    """
    if form not in FORMS:
        raise ModelError(f"unknown form {form!r}; choose one of {', '.join(FORMS)}")
    form = "stateful" if queries else form
    key = (str(Path(model_dir).resolve()), resolve_device(device), model_precision(model_dir, precision), queries, form)
    return _models.get(key, lambda: _compile(model_dir, key[1], precision, queries, form))


def _compile(model_dir, device, precision, queries, form):
    if form == "paged":
        from .paged import PAGED_REFUSAL, PagedModel
        try:
            return PagedModel(model_dir, device, precision,
                              stateful=lambda: load_model(model_dir, device, precision, form="stateful"))
        except ModelError as e:
            if not str(e).startswith(PAGED_REFUSAL):
                raise
            model = LoadedModel(model_dir, device, precision, queries)
            model.form_note = f"{e}; running the stateful form instead"
            return model
    return LoadedModel(model_dir, device, precision, queries)


def unload_models() -> None:
    """Stop holding every compiled model (runs that still hold one finish with it)."""
    _models.clear()


class Session:
    """One infer request: its own KV cache. One thread runs it; only `cancel()` may come from another.

    cancel(): the next forward raises Cancelled instead of running, so a run ends between two forwards
    (a long prompt is read in pieces for that). The forward in flight is not interrupted: OpenVINO's
    InferRequest.cancel() in the middle of a forward left the CPU plugin's shared graph inconsistent
    (later forwards of other requests failed, then "malloc_consolidate(): invalid chunk size").
    """

    def __init__(self, model: LoadedModel):
        self.model = model
        self.request = model.compiled.create_infer_request()
        self._cancelled = threading.Event()
        n = model.info.n_layers
        self._query_names = [f"triattn.query.{i}" for i in range(n)] if model.queries else []
        self._states = None
        self._beam = np.zeros(1, np.int32)
        self.timings: dict | None = None  # phase -> seconds per forward, when profiling
        self._len = self._peak = 0  # slots in the states now, and the most since cache_bytes(peak=True)

    def reset(self):
        self.request.reset_state()
        self._len = self._peak = 0

    def close(self):
        """Free the infer request and its KV cache now, not whenever the last reference goes."""
        self.request, self._states = None, None

    def cancel(self):
        """Make the next forward raise Cancelled (thread-safe; one cancel stops one forward)."""
        self._cancelled.set()

    def forward(self, input_ids, position_ids, attention_mask, values: bool = False, keys: bool = True,
                copy: bool = True):
        """Run T new tokens. Returns (last logits [V], new keys [layers, kv_heads, T, head_dim] or
        None, new values likewise or None); a baseline asks for neither.

        copy=False: keys and values are views of the request's output buffers, valid until its next
        forward, for a caller that copies them at once (a long prompt's keys and values would
        otherwise be held twice: 138 MB at 3,000 tokens of a 30-layer model).
        """
        t0 = time.perf_counter()
        inputs = {"input_ids": np.asarray(input_ids, np.int64).reshape(1, -1),
                  "position_ids": np.asarray(position_ids, np.int64).reshape(1, -1),
                  "attention_mask": np.asarray(attention_mask, np.int64).reshape(1, -1)}
        if self.model.has_beam_idx:
            inputs["beam_idx"] = self._beam
        t1 = time.perf_counter()
        if self._cancelled.is_set():
            self._cancelled.clear()
            raise Cancelled("the run was stopped")
        try:
            self.request.infer(inputs, share_inputs=True, share_outputs=True)  # no copies of all outputs
        except RuntimeError as e:  # e.g. out of memory on a long prompt: the user's request, not a bug
            raise runtime_failure(f"OpenVINO could not run the model on {inputs['input_ids'].shape[1]} tokens",
                                  e) from None
        t2 = time.perf_counter()
        self._held(inputs["attention_mask"].shape[1])  # the mask spans every slot, old and new
        r = self.request
        logits = r.get_tensor("logits").data[0, -1].copy()
        take = np.copy if copy else np.asarray
        k = take(r.get_tensor("triattn.keys").data) if keys or values else None
        v = take(r.get_tensor("triattn.values").data) if values else None
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
                for kind, pat in (("k", KEY_STATE), ("v", VALUE_STATE)):
                    m = pat.fullmatch(s.name)
                    if m:
                        self._states[(kind, int(m.group(1)))] = s
        return self._states

    def read_kv(self):
        """Copies of the cache: (keys, values), each a list per layer of [kv_heads, L, head_dim]."""
        st, n = self._state_map(), self.model.info.n_layers
        return ([st[("k", i)].state.data[0].copy() for i in range(n)],
                [st[("v", i)].state.data[0].copy() for i in range(n)])

    def write_kv(self, keys, values, owned: bool = False):
        """Replace the cache with keys/values [layers, kv_heads, L, head_dim] (or per-layer lists).

        owned: the arrays are C-contiguous and nothing will change them afterwards, so the new
        states are built on their memory instead of a copy (the plugin copies into its own cache).
        """
        import openvino as ov
        st = self._state_map()
        for i, (k, v) in enumerate(zip(keys, values)):
            for kind, a in (("k", k), ("v", v)):
                a = a[None] if owned and a.flags.c_contiguous else np.array(a[None], order="C")
                st[(kind, i)].state = ov.Tensor(a, shared_memory=True)
            self._held(a.shape[2])

    def _held(self, slots: int):
        self._len = slots
        self._peak = max(self._peak, slots)

    def cache_bytes(self, peak: bool = False) -> int:
        """Logical bytes of the states: slots x bytes per token in the cache precision (the plugin
        sizes its own buffers; reading a state to see them costs far more than a step). peak: the
        most since the last such call. Counted by this session, never read from the plugin."""
        slots = self._peak if peak else self._len
        if peak:
            self._peak = self._len
        return slots * self.model.kv_bytes_per_token

    def with_attention_mask(self) -> "Session":
        """The session that runs a mechanism needing an attention mask: this one."""
        return self

    reports_attention = False  # the fused attention exposes no attention weights

    def track_attention(self, on: bool):
        """Nothing to switch: this form never reports attention (the engine refuses runs that need it)."""
        if on:
            raise ModelError("the stateful form does not report the attention the model paid")
    needs_mirror = True  # states are written from host copies of K and V (reading them is slow)

    def reserve(self, tokens: int):
        """The paged session's sizing hint; the plugin sizes a stateful cache itself."""

    def compact(self, store, keep):
        """Hard eviction: the kept slots become the new, shorter states."""
        keys, values = store.compact(keep)
        self.write_kv(keys, values, owned=True)

    def zero(self, store, keep):
        """The model card's soft prune: evicted slots' K and V set to zero, written back."""
        store.zero(store.alive & ~keep)
        store.mark(keep)
        self.write_kv(store.keys, store.values)

    def cache_len(self) -> int:
        st = self._state_map()
        return int(st[("k", 0)].state.shape[2])
