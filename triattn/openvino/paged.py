"""OpenVINO's PagedAttention form of a stateful LLM export, driven by our decode loop.

The export is transformed as OpenVINO GenAI's continuous-batching pipeline does
(`paged_attention_transformation`, per-layer block tables, score outputs), and its KV cache becomes
NumPy blocks we own (pool.py), bound to the request once with shared memory: the plugin writes each
new token's key and value into the blocks a layer's table names, the policies read new keys straight
from there, and an eviction rewrites the pool and the tables in place, between forwards. A forward
of many tokens over a non-empty cache runs the fast multi-query kernel, which the stateful form's
fused attention does not (README, "Why the TTFT target is missed"). Everything returned is NumPy.

`attention()` gives each layer's `scores.N` output of the last forward, in the run's slot order:
the attention the forward's last `window` queries paid every cached token, summed over query heads
and those queries (`score_aggregation_window`). One query is TOVA's score, all of a piece's queries
H2O's share of it, the last prompt tokens SnapKV's observation window (policies/attention.py).
Scope: issue 27; eviction as in the TriAttention paper's (arXiv 2604.04921) setting.
"""
from __future__ import annotations

import threading
import time
import weakref

import numpy as np

from ..errors import Cancelled, ModelError, reason, runtime_failure
from .info import read_info, read_ir, resolve_device
from .pagedgraph import PAGED_REFUSAL, transform
from .pool import BlockPool
from .settings import AUTO, PRECISIONS, device_precision, model_precision

__all__ = ["PAGED_REFUSAL", "PagedModel", "PagedSession"]

# Cache element type -> pool dtype. bf16 is kept as its bits in uint16 (NumPy has no bfloat16).
# The CPU kernel wants the cache in its inference precision: f32 at f32, else the device's default.
POOL_DTYPES = {"f32": np.float32, "f16": np.float16, "bf16": np.uint16}


class PagedModel:
    """A compiled PagedAttention form of a model; share one across threads, one session per run."""

    def __init__(self, model_dir, device="CPU", precision=AUTO, stateful=None):
        import openvino as ov
        precision = model_precision(model_dir, precision)
        if precision not in PRECISIONS:
            raise ModelError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        self.info = info = read_info(model_dir)
        self.device, self.precision, self.form = resolve_device(device), precision, "paged"
        self._stateful = stateful  # () -> the stateful form of this model (model.load_model passes it)
        if self.device != "CPU":  # other plugins lay out their caches otherwise (GPU: blocks of 16, keys transposed)
            raise ModelError(f"{PAGED_REFUSAL} on {self.device} (its cache layout here is the CPU plugin's)")
        self._core = core = ov.Core()
        cache_type = "f32" if precision == "f32" else device_precision(core, self.device, tuple(POOL_DTYPES))
        self.dtype, self.bf16, self._cache_type = POOL_DTYPES[cache_type], cache_type == "bf16", cache_type
        self.compiled = self._compile(scores=False)
        self._scored = None  # the form with score outputs, compiled when a run first reads attention
        self.kv_precision = getattr(ov.Type, cache_type)
        self._sessions = weakref.WeakSet()
        self._lock = threading.Lock()
        try:
            s = self.new_session()
            s.forward(np.array([1, 1]), np.arange(2))
            s.forward(np.array([1]), np.array([2]))
            s.close()
        except RuntimeError as e:
            raise ModelError(f"{PAGED_REFUSAL} on {self.device} (it compiles but cannot run: {reason(e)})") from None

    form_note = None

    def _compile(self, scores: bool):
        """The transformed export compiled: with `scores`, each layer also outputs the attention its
        cached tokens received. Computing them cost about 8% of a decode step at 2,000 tokens on
        the default model, so a run that reads no attention runs the form without them."""
        model = transform(read_ir(self._core, self.info.model_dir), self.info, self._cache_type, scores)
        cfg = {"PERFORMANCE_HINT": "LATENCY", **PRECISIONS[self.precision], "KV_CACHE_PRECISION": self._cache_type}
        try:
            return self._core.compile_model(model, self.device, cfg)
        except RuntimeError as e:
            raise ModelError(f"{PAGED_REFUSAL} on {self.device} (it does not compile: {reason(e)})") from None

    def scored(self):
        """The compiled form with score outputs (compiled once, on first use)."""
        with self._lock:
            if self._scored is None:
                self._scored = self._compile(scores=True)
            return self._scored

    @property
    def kv_bytes_per_token(self) -> int:
        i = self.info
        return int(2 * i.n_layers * i.kv_heads * i.head_dim * self.kv_precision.bitwidth / 8)

    def form_line(self, needs_attention_mask: bool) -> str | None:
        return "mask runs on the stateful form: the paged form has no attention mask" if needs_attention_mask else None

    def stateful(self):
        """The stateful form of the same model, for what the paged form cannot express (mask)."""
        if self._stateful is None:
            raise ModelError("this paged model was made without its stateful form (load it with model.load_model)")
        return self._stateful()

    def new_session(self) -> "PagedSession":
        with self._lock:
            s = PagedSession(self)
            self._sessions.add(s)
            return s

    def live_sessions(self) -> int:
        return sum(1 for s in list(self._sessions) if s.request is not None)


class PagedSession:
    """One infer request and its own block pool. Not thread-safe, except `cancel()`; one per run."""

    def __init__(self, model: PagedModel):
        import openvino as ov
        self._ov = ov
        self.model = model
        self._requests = {False: model.compiled.create_infer_request()}  # by whether it reports attention
        self.request = self._requests[False]
        i = model.info
        self.pool = BlockPool(i.n_layers, i.kv_heads, i.head_dim, model.dtype, i.sliding_windows, model.bf16)
        self.pool.clear()
        self._cancelled = threading.Event()
        self.timings = None
        self._twin = None
        self._bound = None  # the pool's table version the request holds
        self._bound_arrays = False  # whether the request holds the pool's current arrays
        self._step = None  # a one-token forward's inputs, bound to the request (see _inputs)
        self._logits = {}  # request -> the array its logits output is written into (see _bind)

    def track_attention(self, on: bool):
        """Run the next forwards on the form with score outputs (on) or without (off: a faster
        step). Between runs only: the pool is bound to the chosen request before its first forward."""
        if on not in self._requests:
            self._requests[on] = self.model.scored().create_infer_request()
        if self.request is not self._requests[on]:
            self.request, self._bound, self._bound_arrays, self._step = self._requests[on], None, False, None

    def reset(self):
        self.pool.clear()  # a cancel() stays pending: a Stop before the run's first forward still stops it

    def reserve(self, tokens: int):
        """The most tokens the run will hold after a cut: the pool keeps room for them."""
        self.pool.reserve(tokens)

    def close(self):
        if self._twin is not None:
            self._twin.close()
        self.request, self._requests, self.pool, self._twin = None, {}, None, None
        self._logits = {}  # its keys are the requests: holding them would keep their memory

    def with_attention_mask(self):
        """The session that runs a mechanism needing an attention mask (the paged form has none):
        a session of the stateful form, closed with this one."""
        if self._twin is None:
            self._twin = self.model.stateful().new_session()
        self._twin.timings = self.timings  # a profile of this session profiles what ran for it
        return self._twin

    def cancel(self):
        """Make the next forward raise errors.Cancelled (thread-safe; one cancel stops one forward).
        The forward in flight is not interrupted: OpenVINO's InferRequest.cancel() in the middle of a
        forward corrupted the CPU plugin's memory here (model.Session says how)."""
        self._cancelled.set()
        twin_cancel = getattr(self._twin, "cancel", None)  # a mask run is on the stateful twin
        if twin_cancel is not None:
            twin_cancel()

    def cache_len(self) -> int:
        return self.pool.n

    def cache_bytes(self, peak: bool = False) -> int:
        """Bytes the block pool holds: every block allocated, used or free (a run reserves room and
        the pool grows in blocks). peak: the most it held since the last such call."""
        if self.pool is None:
            return 0
        return self.pool.take_peak_bytes() if peak else self.pool.nbytes

    def _bind(self):
        """Point the request at the pool's arrays and tables, where they changed since last time."""
        pool, r, ov = self.pool, self.request, self._ov
        if pool.replaced or not self._bound_arrays:
            for layer in range(pool.n_layers):
                for name, arr in (("key_cache", pool.keys[layer]), ("value_cache", pool.values[layer])):
                    t = (ov.Tensor(arr, list(arr.shape), ov.Type.bf16) if pool.bf16  # shares the array too
                         else ov.Tensor(arr, shared_memory=True))
                    r.set_tensor(f"{name}.{layer}", t)
            pool.replaced, self._bound_arrays = False, True
        if pool.version != self._bound:  # tables change per block or cut, not per token
            for layer in range(pool.n_layers):
                r.set_tensor(f"block_indices.{layer}", ov.Tensor(np.ascontiguousarray(pool.tables[layer])))
            self._bound = pool.version
        if r not in self._logits:
            self._logits[r] = self._bind_logits(r)

    def _bind_logits(self, r):
        """The array the request's logits are written into, bound once: the last token's logits
        [1, 1, V] whatever the forward's length (pagedgraph.transform). Fetching the output tensor
        per step cost about 0.15 ms of a 10-16 ms step on the default model. None (fetched per
        forward) when the graph's logits have no fixed width."""
        port = r.model_outputs[0]
        width = port.get_partial_shape()[-1]
        if port.get_any_name() != "logits" or not width.is_static:
            return None
        out = np.zeros((1, 1, width.get_length()), port.get_element_type().to_dtype())
        r.set_tensor("logits", self._ov.Tensor(out, shared_memory=True))
        return out

    reports_attention = True

    def forward(self, input_ids, position_ids, attention_mask=None, values: bool = False, keys: bool = True,
                copy: bool = True, window: int = 1):
        """Run T new tokens after the cached ones (attention_mask is not read: every cached token is
        live). Returns (last logits [V], new keys [layers, kv_heads, T, head_dim] or None, new values
        likewise or None), the keys and values read from the pool. `window`: how many of the last
        queries `attention()` sums over."""
        t0 = time.perf_counter()
        ids = np.asarray(input_ids, np.int64).reshape(-1)
        t, past = ids.size, self.pool.n
        self.pool.ensure(past + t)
        blocks = len(self.pool.tables[0])  # = blocks_for(past + t): tables cover exactly the context
        self._bind()
        inputs = self._inputs(ids, np.asarray(position_ids, np.int64).reshape(-1), past, blocks, window)
        t1 = time.perf_counter()
        self._run(inputs, t)
        t2 = time.perf_counter()
        self.pool.appended(t)
        logits = self._logits.get(self.request)
        if logits is None:
            logits = self.request.get_tensor("logits").data
        logits = logits.reshape(-1, logits.shape[-1])[-1].copy()
        k, v = self.pool.read(past, t, values) if keys or values else (None, None)
        if self.timings is not None:
            for phase, dt in (("inputs", t1 - t0), ("infer", t2 - t1), ("outputs", time.perf_counter() - t2)):
                self.timings[phase].append(dt)
        return logits, k, v

    def _inputs(self, ids, positions, past: int, blocks: int, window: int) -> dict | None:
        """The forward's small inputs. A one-token step writes them into arrays bound to the request
        once (shared memory) and passes nothing: handing the plugin six new tensors per token cost
        about 0.3-0.7 ms of a 10 ms step on the default model. Longer forwards pass a fresh dict."""
        t, scored = ids.size, self.request is not self._requests[False]
        if t != 1:
            self._step = None  # the request now holds this forward's tensors
            inputs = {"input_ids": ids, "position_ids": positions, "past_lens": np.array([past], np.int32),
                      "subsequence_begins": np.array([0, t], np.int32),
                      "block_indices_begins": np.array([0, blocks], np.int32),
                      "max_context_len": np.array(past + t, np.int32)}
            if scored:
                inputs["score_aggregation_window"] = np.array([max(1, min(window, t))], np.int32)
            return inputs
        if self._step is None:
            self._step = {"input_ids": np.zeros(1, np.int64), "position_ids": np.zeros(1, np.int64),
                          "past_lens": np.zeros(1, np.int32), "subsequence_begins": np.array([0, 1], np.int32),
                          "block_indices_begins": np.zeros(2, np.int32), "max_context_len": np.zeros((), np.int32),
                          **({"score_aggregation_window": np.ones(1, np.int32)} if scored else {})}
            for name, arr in self._step.items():
                self.request.set_tensor(name, self._ov.Tensor(arr, shared_memory=True))
        step = self._step
        step["input_ids"][0], step["position_ids"][0], step["past_lens"][0] = ids[0], positions[0], past
        step["block_indices_begins"][1], step["max_context_len"][...] = blocks, past + 1
        return None

    def _run(self, inputs: dict | None, t: int):
        """One forward, unless a cancel() came first (then Cancelled, and the cache stays as it was)."""
        if self._cancelled.is_set():
            self._cancelled.clear()
            raise Cancelled("the run was stopped")
        try:
            self.request.infer(inputs or {}, share_inputs=True, share_outputs=True)  # {}: the bound step inputs
        except RuntimeError as e:
            self.pool.clear()  # a forward that did not finish leaves blocks half written
            raise runtime_failure(f"OpenVINO could not run the model on {t} tokens", e) from None

    def attention(self) -> np.ndarray:
        """[layers, n]: the attention the last forward's aggregated queries paid each cached token,
        in the run's slot order (the TokenStore's), however the pool has moved them."""
        if self.request is self._requests[False]:
            raise ModelError("this run did not ask for attention (track_attention(True) before its forwards)")
        n, slots = self.pool.n, self.pool.slots
        out = np.empty((self.pool.n_layers, n), np.float32)
        for i in range(self.pool.n_layers):
            s = self.request.get_tensor(f"scores.{i}").data.reshape(-1)[:n]
            out[i] = s if slots is None else s[slots[i, 0]]
        return out

    # Eviction, as the mechanisms ask for it: the store keeps its host side, the pool follows.
    needs_mirror = False  # the pool is ours to read and rewrite: no host copy of values

    def compact(self, store, keep):
        self.pool.compact(keep)
        store.compact(keep, copies=False)  # the pool holds the cache: no copy for a write-back

    def zero(self, store, keep):
        self.pool.zero(store.alive & ~keep)
        store.mark(keep)
