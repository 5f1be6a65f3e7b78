"""Rotary position embeddings (RoPE) as transformers applies them, in NumPy, to rotate and un-rotate.

Inverse frequencies and the attention scaling follow `transformers.modeling_rope_utils` for the
`default`, `linear`, `dynamic`, `llama3` and `yarn` types; the layout is the half split of
`rotate_half` (band f pairs dimension f with dimension f + head_dim/2), which Llama, Qwen and
gpt-oss share. YaRN multiplies cos and sin by an attention scaling factor (gpt-oss: about 1.35),
so a rotated vector is `s * R(p) x`; `unrotate` divides `s` out and returns the pre-RoPE vector.

Parameters come from config.json: `rope_parameters` (transformers 5) or the legacy `rope_scaling`
plus `rope_theta`. Inverse frequencies agree with transformers' to a few float32 ulps, and
positions are multiplied in float32 as transformers does, so angles match the model's own.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SUPPORTED = ("default", "linear", "dynamic", "llama3", "yarn")


@dataclass(frozen=True)
class Rope:
    inv_freq: np.ndarray          # [head_dim / 2] float32, the angular frequency of each band
    attention_scaling: float = 1.0
    rope_type: str = "default"

    def __post_init__(self):
        if self.inv_freq.ndim != 1 or self.inv_freq.size == 0:
            raise ValueError("inv_freq must be a non-empty vector")
        if not self.attention_scaling > 0:
            raise ValueError(f"attention scaling must be positive, got {self.attention_scaling}")

    @property
    def head_dim(self) -> int:
        return 2 * self.inv_freq.size

    def angles(self, positions) -> np.ndarray:
        """[..., head_dim/2] angles p * w_f, computed in float32 like the model, returned as float64."""
        p = np.asarray(positions, np.float32)[..., None]
        return (p * self.inv_freq).astype(np.float64)

    def _cos_sin(self, x, positions):
        if x.shape[-1] != self.head_dim:
            raise ValueError(f"last axis is {x.shape[-1]}, expected head_dim {self.head_dim}")
        a = self.angles(positions)
        return np.cos(a), np.sin(a)

    def rotate(self, x, positions) -> np.ndarray:
        """Apply RoPE at `positions` (broadcast against x.shape[:-1]), scaling included."""
        x = np.asarray(x, np.float64)
        cos, sin = self._cos_sin(x, positions)
        h = self.head_dim // 2
        x1, x2 = x[..., :h], x[..., h:]
        out = np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
        return out * self.attention_scaling

    def unrotate(self, x, positions) -> np.ndarray:
        """Inverse of `rotate`: the pre-RoPE vector."""
        x = np.asarray(x, np.float64) / self.attention_scaling
        cos, sin = self._cos_sin(x, positions)
        h = self.head_dim // 2
        x1, x2 = x[..., :h], x[..., h:]
        return np.concatenate([x1 * cos + x2 * sin, x2 * cos - x1 * sin], axis=-1)


def rope_parameters(cfg: dict, layer_type: str | None = None) -> dict:
    """The standardised RoPE parameter dict of a config.json (text config), as transformers 5 builds it."""
    params = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    layer_types = cfg.get("layer_types") or []
    if params and layer_types and set(params) <= set(layer_types):  # one dict per layer type
        params = params[layer_type or layer_types[0]]
    params = dict(params)
    params.setdefault("rope_type", params.get("type", "default"))
    params.setdefault("rope_theta", cfg.get("rope_theta", 10000.0))
    if params["rope_type"] in ("llama3", "yarn"):
        if "original_max_position_embeddings" in cfg:
            params["original_max_position_embeddings"] = cfg["original_max_position_embeddings"]
        params.setdefault("original_max_position_embeddings", cfg.get("max_position_embeddings"))
    return params


def from_config(cfg: dict, layer_type: str | None = None, seq_len: int | None = None) -> Rope:
    """The Rope of a model from its config.json dict. `seq_len` matters only for `dynamic`."""
    p = rope_parameters(cfg, layer_type)
    kind = p["rope_type"]
    if kind not in SUPPORTED:
        raise ValueError(f"RoPE type {kind!r} is not supported (supported: {', '.join(SUPPORTED)})")
    if p.get("partial_rotary_factor", cfg.get("partial_rotary_factor", 1.0)) != 1.0:
        raise ValueError("partial rotary embeddings are not supported")
    dim = int(cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"])
    base = float(p["rope_theta"])
    exponents = np.arange(0, dim, 2, dtype=np.float32) / np.float32(dim)
    scaling = 1.0
    if kind == "dynamic":
        max_pos = cfg["max_position_embeddings"]
        n = max(seq_len or max_pos, max_pos)
        factor = p["factor"]
        base = base * ((factor * n / max_pos) - (factor - 1)) ** (dim / (dim - 2))
    inv = 1.0 / (base ** exponents.astype(np.float64))
    if kind == "linear":
        inv = inv / p["factor"]
    elif kind == "llama3":
        inv = _llama3(inv, p)
    elif kind == "yarn":
        inv, scaling = _yarn(base, dim, exponents, p, cfg)
    return Rope(np.asarray(inv, np.float32), float(scaling), kind)


def _llama3(inv, p):
    factor, low, high = p["factor"], p["low_freq_factor"], p["high_freq_factor"]
    old = p["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv
    scaled = np.where(wavelen > old / low, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < old / high) & ~(wavelen > old / low)
    return np.where(medium, smoothed, scaled)


def _yarn(base, dim, exponents, p, cfg):
    original = p["original_max_position_embeddings"]
    factor = p.get("factor") or cfg["max_position_embeddings"] / original

    def mscale(scale, m=1.0):
        return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

    attention = p.get("attention_factor")
    if attention is None:
        if p.get("mscale") and p.get("mscale_all_dim"):
            attention = mscale(factor, p["mscale"]) / mscale(factor, p["mscale_all_dim"])
        else:
            attention = mscale(factor)
    beta_fast, beta_slow = p.get("beta_fast") or 32, p.get("beta_slow") or 1

    def correction_dim(rotations):
        return dim * math.log(original / (rotations * 2 * math.pi)) / (2 * math.log(base))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if p.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    ramp = np.clip((np.arange(dim // 2, dtype=np.float64) - low) / (high - low), 0, 1)
    extrapolation = 1 - ramp
    pos_freqs = base ** exponents.astype(np.float64)
    inv = (1.0 / (factor * pos_freqs)) * (1 - extrapolation) + (1.0 / pos_freqs) * extrapolation
    return inv, attention


def layer_ropes(cfg: dict, n_layers: int) -> list[Rope]:
    """One Rope per layer (configs may give sliding and full layers different parameters)."""
    types = cfg.get("layer_types") or [None] * n_layers
    cache: dict = {}
    return [cache.setdefault(t, from_config(cfg, t)) for t in types[:n_layers]]


def band_norms(x: np.ndarray) -> np.ndarray:
    """|x_f| = sqrt(x_f^2 + x_{f+F}^2) [..., F] of vectors [..., 2F]: each band's magnitude, which
    rotation leaves unchanged. The squares are summed on the flat array shifted by F (entry
    i*2F + f, f < F, is band f's; the rest is dropped): contiguous ops, several times faster than
    the same on the strided halves."""
    half = x.shape[-1] // 2
    sq = np.square(x, dtype=np.float32).reshape(-1)
    out = np.empty_like(sq)
    np.add(sq[:-half], sq[half:], out=out[:-half])
    out[-half:] = 0.0
    return np.sqrt(out, out=out).reshape(x.shape)[..., :half]
