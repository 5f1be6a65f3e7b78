"""What a model folder is (its config read as a ModelInfo, its IR read with a clear error for every
way the files can be wrong: missing, partial, corrupt, not an LLM export), and which device runs it."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ModelError, reason

REQUIRED_FILES = ("openvino_model.xml", "openvino_model.bin", "config.json")


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
        cfg = json.loads((d / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # ValueError: bad JSON or bad UTF-8
        raise ModelError(f"cannot read {d / 'config.json'}: {reason(e)}") from None
    text_cfg = cfg.get("text_config", cfg) if isinstance(cfg, dict) else None
    if not isinstance(text_cfg, dict):
        raise ModelError(f"{d / 'config.json'} does not describe a decoder LLM (not a JSON object)")
    try:
        n_layers = int(text_cfg["num_hidden_layers"])
        q_heads = int(text_cfg["num_attention_heads"])
        kv_heads = int(text_cfg.get("num_key_value_heads") or q_heads)
        head_dim = int(text_cfg.get("head_dim") or text_cfg["hidden_size"] // q_heads)
        max_context = int(text_cfg.get("max_position_embeddings", 4096))
        window = int(text_cfg.get("sliding_window") or 0)
        vocab = int(text_cfg.get("vocab_size", 0))
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as e:
        raise ModelError(f"{d / 'config.json'} does not describe a decoder LLM ({type(e).__name__}: {e})") from None
    if min(n_layers, q_heads, kv_heads, head_dim) < 1 or max_context < 2:
        raise ModelError(f"{d / 'config.json'} does not describe a decoder LLM (layers, heads, head size and "
                         f"context must be positive)")
    layer_types = text_cfg.get("layer_types") or []
    if layer_types:
        windows = tuple(window if t == "sliding_attention" else 0 for t in layer_types)
    elif window and text_cfg.get("use_sliding_window", cfg.get("model_type") == "mistral"):
        windows = (window,) * n_layers
    else:
        windows = (0,) * n_layers
    return ModelInfo(str(d), str(cfg.get("model_type", "?")), n_layers, kv_heads, q_heads, head_dim, vocab,
                     max_context, windows, tuple(_eos_ids(d, cfg)), text_cfg)


def check_ir_file(xml: Path) -> None:
    """Refuse a file that is not OpenVINO IR XML before OpenVINO reads it: given anything else,
    OpenVINO tries its other frontends, which print parser noise to stderr."""
    try:
        with open(xml, "rb") as f:
            head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError as e:
        raise ModelError(f"cannot read {xml}: {reason(e)}") from None
    if not head.startswith((b"<?xml", b"<net")) or b"<net" not in head:
        raise ModelError(f"{xml} is not an OpenVINO IR file (it does not start with an XML <net> element); "
                         f"the export is corrupt: export it again")


def read_ir(core, model_dir):
    """The export's graph, or a ModelError saying what is wrong with its files."""
    xml = Path(model_dir) / "openvino_model.xml"
    check_ir_file(xml)
    try:
        return core.read_model(xml)
    except RuntimeError as e:
        raise ModelError(f"cannot read the OpenVINO model in {model_dir} (corrupt, or the .xml and .bin "
                         f"are from different exports): {reason(e)}") from None


def _eos_ids(d: Path, cfg: dict) -> list[int]:
    ids = []
    for src in (d / "generation_config.json", None):
        try:
            c = json.loads(src.read_text(encoding="utf-8")) if src else cfg
        except (OSError, ValueError):
            continue
        e = c.get("eos_token_id") if isinstance(c, dict) else None
        ids += e if isinstance(e, list) else ([e] if e is not None else [])
    return sorted({int(i) for i in ids if isinstance(i, int)})


def available_devices() -> list[str]:
    import openvino as ov
    return list(ov.Core().available_devices)


FALLBACK_FAMILIES = ("GPU", "NPU")


def resolve_device(requested: str) -> str:
    """The device name to compile for; a ModelError naming the devices there are if it is absent.

    Only names this machine reports (or AUTO) pass, so no other text reaches OpenVINO as a device;
    GPU or NPU absent here fall back to CPU (callers say so), as the model card did.
    """
    req = (requested or "CPU").strip().upper()
    devices = available_devices()
    if req == "AUTO" or req in devices or any(d.startswith(req + ".") for d in devices):
        return req
    if req.split(".")[0] in FALLBACK_FAMILIES:  # the model card's auto fallback: a real device this machine lacks
        return "CPU"
    raise ModelError(f"device {req!r} is not available here; choose one of: {', '.join(devices + ['AUTO'])}")
