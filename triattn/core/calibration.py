"""Query statistics for TriAttention, measured by running the OpenVINO model over plain text.

The text is cut into segments of `segment` tokens (1024 by default), each run as one forward pass
from an empty cache; each segment's post-RoPE queries come out of the extra `triattn.query.{i}`
outputs, are un-rotated on the host (`rope.py`) and accumulated. Segments, not one pass over the
whole text: a query's statistics need context, not all of it, and attention over a long past is
what made calibration slow (8,192 tokens of a 135M model in 512-token chunks on one growing cache:
4 min 50 s on 2 CPU cores, each chunk slower than the last). Independent segments cost time linear
in the text. The paper (Mao et al. 2026, arXiv 2604.04921) finds the statistics stable across
texts and domains; docs/policies.md gives the difference measured against one pass. Per layer,
query head and frequency band f (the complex number q_f = q[f] + i q[f + head_dim/2]) the file
stores the complex mean E[q_f] and the mean magnitude E|q_f| of the pre-RoPE queries.

A file records the model it belongs to (a hash of openvino_model.xml and config.json, and the
path). It lives beside the model as `triattention-calibration.npz`, or, when the model directory
is read-only, in `~/.cache/triattn/calibration/<hash>.npz`.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..paths import ASSETS, CACHE
from .rope import layer_ropes

FORMAT = 1
FILENAME = "triattention-calibration.npz"
DEFAULT_TEXT = ASSETS / "text" / "stdlib-sample.txt"
DEFAULT_MAX_TOKENS = 8192
DEFAULT_SEGMENT = 1024
AUTO_MAX_BYTES = 256 * 2**20  # models up to this size (openvino_model.bin) calibrate themselves
_loaded: dict = {}


@dataclass(frozen=True)
class Calibration:
    q_mean: np.ndarray      # [layers, q_heads, head_dim/2] complex: E[q_f] of pre-RoPE queries
    q_abs_mean: np.ndarray  # [layers, q_heads, head_dim/2]: E|q_f|
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.q_mean.ndim != 3 or self.q_mean.shape != self.q_abs_mean.shape:
            raise ValueError(f"calibration arrays must both be [layers, q_heads, bands], got "
                             f"{self.q_mean.shape} and {self.q_abs_mean.shape}")
        if not np.iscomplexobj(self.q_mean):
            raise ValueError("q_mean must be complex")


class QueryStats:
    """Running sums of pre-RoPE query bands, fed chunk by chunk."""

    def __init__(self, ropes):
        self.ropes = ropes
        self.count = 0
        self.sum = self.abs_sum = None

    def add(self, queries: np.ndarray, positions: np.ndarray):
        """queries [layers, q_heads, T, head_dim] post-RoPE, at absolute `positions` [T]."""
        layers, heads, _, dim = queries.shape
        if self.sum is None:
            self.sum = np.zeros((layers, heads, dim // 2), np.complex128)
            self.abs_sum = np.zeros((layers, heads, dim // 2))
        for i in range(layers):
            self.add_pre_rope(i, self.ropes[i].unrotate(queries[i], positions))
        self.count += queries.shape[2]

    def add_pre_rope(self, layer: int, q: np.ndarray):
        h = q.shape[-1] // 2
        bands = q[..., :h] + 1j * q[..., h:]  # [q_heads, T, bands]
        self.sum[layer] += bands.sum(axis=1)
        self.abs_sum[layer] += np.abs(bands).sum(axis=1)

    def result(self, meta: dict | None = None) -> Calibration:
        if not self.count:
            raise ValueError("no queries were collected")
        return Calibration(self.sum / self.count, self.abs_sum / self.count, dict(meta or {}, tokens=self.count))


def fingerprint(model_dir) -> str:
    """sha256 of openvino_model.xml and config.json: which model a calibration belongs to."""
    h = hashlib.sha256()
    for name in ("openvino_model.xml", "config.json"):
        with open(Path(model_dir) / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _cache_dir() -> Path:
    return CACHE / "calibration"


def candidate_paths(model_dir, fp: str) -> list[Path]:
    return [Path(model_dir) / FILENAME, _cache_dir() / f"{fp[:20]}.npz"]


def default_output(model_dir, fp: str) -> Path:
    beside, cached = candidate_paths(model_dir, fp)
    return beside if os.access(model_dir, os.W_OK) else cached


def save(cal: Calibration, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial.npz")
    np.savez(tmp, q_mean_real=cal.q_mean.real, q_mean_imag=cal.q_mean.imag, q_abs_mean=cal.q_abs_mean,
             meta=np.array(json.dumps(cal.meta)))
    os.replace(tmp, path)
    return path


def load(path) -> Calibration:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != FORMAT:
                raise ValueError(f"format {meta.get('format')}, expected {FORMAT}")
            return Calibration(z["q_mean_real"] + 1j * z["q_mean_imag"], z["q_abs_mean"], meta)
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"cannot read the calibration file {path}: {e}") from None


def find(model_dir) -> Path | None:
    """An existing calibration file made for exactly this model, or None."""
    fp = fingerprint(model_dir)
    for path in candidate_paths(model_dir, fp):
        if path.is_file():
            try:
                if load(path).meta.get("fingerprint") == fp:
                    return path
            except ValueError:
                continue
    return None


def text_tokens(tokenizer, text_path, max_tokens: int) -> np.ndarray:
    ids = tokenizer.encode(Path(text_path).read_text(encoding="utf-8"))[:max_tokens]
    if not ids:
        raise ValueError(f"{text_path} holds no text to calibrate on")
    return np.asarray(ids, np.int64)


def collect(session, ids: np.ndarray, segment: int = DEFAULT_SEGMENT, progress: bool = True) -> QueryStats:
    """Run `ids` through a queries-enabled session, one forward pass per segment of `segment` tokens
    from an empty cache (positions from 0), and accumulate the query statistics."""
    from tqdm import tqdm
    info = session.model.info
    stats = QueryStats(layer_ropes(info.config, info.n_layers))
    with tqdm(total=len(ids), unit="tok", desc="calibrating", disable=not progress, leave=False) as bar:
        for start in range(0, len(ids), segment):
            piece = ids[start:start + segment]
            positions = np.arange(len(piece))
            session.reset()
            session.forward(piece, positions, np.ones(len(piece), np.int64))
            stats.add(session.queries(), positions)
            bar.update(len(piece))
    return stats


_query_model = None  # (model_dir, device, precision) -> a model whose sessions give queries(); the backend's


def use_query_model(factory) -> None:
    """Pass in how to load a model that outputs its queries (the backend does, triattn.openvino)."""
    global _query_model
    _query_model = factory


def calibrate(model_dir, text=None, max_tokens: int = DEFAULT_MAX_TOKENS, output=None, device: str = "CPU",
              precision: str = "auto", segment: int = DEFAULT_SEGMENT,
              progress: bool = True) -> tuple[Calibration, Path]:
    """Measure the query statistics of the model in `model_dir` and save them; returns (stats, path)."""
    from .text import load_tokenizer
    if max_tokens < 1 or segment < 1:
        raise ValueError("max_tokens and segment must be at least 1")
    text = Path(text or DEFAULT_TEXT)
    if not text.is_file():
        raise FileNotFoundError(f"text file not found: {text}")
    if _query_model is None:
        raise RuntimeError("no backend has passed in a model loader (import triattn.openvino)")
    model = _query_model(model_dir, device, precision)
    ids = text_tokens(load_tokenizer(model_dir), text, min(max_tokens, model.info.max_context))
    stats = collect(model.new_session(), ids, min(segment, model.info.max_context), progress)
    fp = fingerprint(model_dir)
    meta = dict(format=FORMAT, fingerprint=fp, model_dir=str(Path(model_dir).resolve()), text=str(text),
                device=model.device, precision=model.precision, segment=segment,
                created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    cal = stats.result(meta)
    path = save(cal, output or default_output(model_dir, fp))
    _loaded.clear()  # a new file may replace one already loaded
    return cal, path



class CalibrationMissing(ValueError):
    pass


def load_or_make(model_dir) -> Calibration:
    """The model's calibration: found on disk, else made now on the shipped text if the model is
    small (seconds), else a CalibrationMissing error naming the command that makes it."""
    d = Path(model_dir)
    files = [d / "openvino_model.xml", d / "config.json"]
    key = (str(d.resolve()), *(f.stat().st_mtime_ns for f in files))
    if key in _loaded:
        return _loaded[key]
    path = find(d)
    if path is None:
        size = (d / "openvino_model.bin").stat().st_size
        if size > AUTO_MAX_BYTES:
            raise CalibrationMissing(f"the triattention policy needs query statistics for this model; make them "
                                     f"once with: python -m triattn calibrate --model-dir {d}")
        import sys
        print(f"triattention: no calibration for {d} yet; measuring query statistics on "
              f"{DEFAULT_TEXT.name} (once)", file=sys.stderr)
        cal, path = calibrate(d, max_tokens=DEFAULT_MAX_TOKENS)
    else:
        cal = load(path)
    _loaded[key] = cal
    return cal
