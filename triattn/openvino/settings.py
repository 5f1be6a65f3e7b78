"""Per-model run settings shipped in the model folder (`triattn.json`), chosen from measurements.

Scope: which precision a model runs at when the user does not ask for one. A device's default
precision (bf16 compute and a low-precision KV cache on CPUs that have bf16) suits large models;
for a small one it can flip greedy answers, and f32 may cost nothing measurable. The model card
beside the file says what was measured. A missing or unreadable file means the device's default.
"""
from __future__ import annotations

import json
from pathlib import Path

FILENAME = "triattn.json"
AUTO = "auto"  # the precision argument that means: what the model folder says, else "default"
PRECISION_CHOICES = ("default", "f32")
# OpenVINO properties per precision: the device's own, or f32 compute and an f32 KV cache.
PRECISIONS = {"default": {}, "f32": {"INFERENCE_PRECISION_HINT": "f32", "KV_CACHE_PRECISION": "f32"}}


def read_settings(model_dir) -> dict:
    try:
        data = json.loads((Path(model_dir) / FILENAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_settings(model_dir, settings: dict) -> Path:
    path = Path(model_dir) / FILENAME
    path.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return path


def model_precision(model_dir, requested: str | None = AUTO) -> str:
    """The precision to run: the one requested, or for AUTO (or None) the model's own setting."""
    if requested not in (AUTO, None):
        return requested
    chosen = read_settings(model_dir).get("precision")
    return chosen if chosen in PRECISION_CHOICES else "default"


def device_precision(core, device: str, known: tuple) -> str:
    """The element type `device` computes in by default, one of `known` (else f16): a paged KV
    cache must be in it."""
    try:
        hint = core.get_property(device, "INFERENCE_PRECISION_HINT").to_string()
    except (RuntimeError, AttributeError):
        return "f16"
    return hint if hint in known else "f16"
