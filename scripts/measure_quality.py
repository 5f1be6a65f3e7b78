"""ΔNLL of OpenVINO exports against the fp32 PyTorch checkpoint they were converted from.

Scope: the quality table of a bundled model's card. The reference is the checkpoint run in PyTorch
at f32 (for SmolLM2, the GGUF dequantized: build_smollm2.py keeps it in its --work folder). Each
export is run in OpenVINO, whole windows at once, at f32 and at the device's default precision;
the figure is the mean negative log-likelihood of the next token minus the reference's, on held-out
English text (after the tokens the calibration reads). Build-time only: needs torch.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PRECISIONS = {"f32": {"INFERENCE_PRECISION_HINT": "f32", "KV_CACHE_PRECISION": "f32"}, "default": {}}


def windows(tokenizer, text: Path, skip: int, size: int, count: int) -> list[np.ndarray]:
    ids = tokenizer.encode(text.read_text(encoding="utf-8"))[skip:]
    if len(ids) < size * count:
        raise SystemExit(f"{text} has {len(ids)} tokens after the first {skip}; need {size * count}")
    return [np.asarray(ids[i * size:(i + 1) * size], np.int64) for i in range(count)]


def nll(logits: np.ndarray, ids: np.ndarray) -> float:
    """Mean next-token NLL of one window, from logits [T, V] in float64."""
    z = logits[:-1].astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return float(-logp[np.arange(len(ids) - 1), ids[1:]].mean())


def torch_nll(checkpoint: Path, chunks) -> float:
    import torch
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    with torch.no_grad():
        return float(np.mean([nll(model(torch.from_numpy(c)[None]).logits[0].numpy(), c) for c in chunks]))


def openvino_nll(model_dir: Path, chunks, precision: str) -> float:
    import openvino as ov
    compiled = ov.Core().compile_model(model_dir / "openvino_model.xml", "CPU", PRECISIONS[precision])
    values = []
    for c in chunks:
        request = compiled.create_infer_request()
        request.reset_state()
        out = request.infer({"input_ids": c[None], "attention_mask": np.ones((1, len(c)), np.int64),
                             "position_ids": np.arange(len(c))[None], "beam_idx": np.zeros(1, np.int32)})
        values.append(nll(out["logits"][0], c))
    return float(np.mean(values))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, required=True, help="the fp32 transformers checkpoint")
    p.add_argument("exports", type=Path, nargs="+", help="OpenVINO export folders to compare")
    p.add_argument("--text", type=Path, default=ROOT / "assets" / "text" / "python-reference-sample.txt")
    p.add_argument("--skip", type=int, default=4096, help="tokens to skip (the calibration's)")
    p.add_argument("--window", type=int, default=1024)
    p.add_argument("--windows", type=int, default=4)
    args = p.parse_args(argv)
    from transformers import AutoTokenizer
    chunks = windows(AutoTokenizer.from_pretrained(args.checkpoint), args.text, args.skip, args.window, args.windows)
    ref = torch_nll(args.checkpoint, chunks)
    rows = {"reference_nll": round(ref, 5), "tokens": args.window * args.windows, "exports": {}}
    for d in args.exports:
        size = sum(f.stat().st_size for f in d.iterdir() if f.is_file())
        rows["exports"][d.name] = {"megabytes": round(size / 1e6, 1), **{
            f"dnll_{p}": round(openvino_nll(d, chunks, p) - ref, 5) for p in PRECISIONS}}
        print(d.name, rows["exports"][d.name], flush=True)
    print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
