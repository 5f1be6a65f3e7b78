"""Turn trained demo-model weights into the shipped OpenVINO IR and measure it.

Steps: load the `train` shards into transformers' `GptOssForCausalLM` (and check its logits match
the training network), export fp16 and int8 IRs with optimum-intel, compute the held-out loss of
each IR on CPU in f32 inference precision (2048-token windows, as in training), keep int8 when
its loss is within 2% of fp16, and write `eval.json` next to the model.

    python -m scripts.demo_model.export --data .data --weights OUT/best --out assets/demo-model
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

INT8_TOLERANCE = 0.02


def load_hf(data: Path, weights: Path):
    """GptOssForCausalLM with the trained weights, after checking it agrees with the training net."""
    import torch
    from transformers import GptOssConfig, GptOssForCausalLM
    from .train import GptOss, load_weights

    state = load_weights(weights)
    hf = GptOssForCausalLM(GptOssConfig.from_pretrained(data / "hf")).eval()
    hf.load_state_dict(state, strict=True)
    ref = GptOss(json.loads((data / "hf" / "config.json").read_text())).eval()
    ref.load_state_dict(state, strict=True)
    ids = torch.from_numpy(np.fromfile(data / "val.bin", np.uint16)[:512].astype(np.int64))[None]
    with torch.no_grad():
        diff = (hf(ids).logits - ref(ids)[0]).abs().max().item()
    if diff > 1e-3:
        raise RuntimeError(f"transformers and the training network disagree (max logit diff {diff:.2e})")
    return hf, ref, diff


def torch_val_loss(model, val: np.ndarray, seq: int) -> float:
    """Held-out loss of the training network in fp32 (same function as `hf`, checked, but faster)."""
    import torch
    import torch.nn.functional as F
    total, count = 0.0, 0
    for s in range(0, (len(val) - 1) // seq * seq, seq):
        w = torch.from_numpy(val[s:s + seq + 1].astype(np.int64))[None]
        with torch.no_grad():
            logits = model(w[:, :-1])[0]
        total += F.cross_entropy(logits[0].float(), w[0, 1:], reduction="sum").item()
        count += seq
    return total / count


def ov_val_loss(model_dir: Path, val: np.ndarray, seq: int) -> float:
    """Held-out loss of an IR: full-sequence logits per window, fresh state per window, f32 compute."""
    import openvino as ov
    core = ov.Core()
    compiled = core.compile_model(core.read_model(model_dir / "openvino_model.xml"), "CPU",
                                  {"INFERENCE_PRECISION_HINT": "f32"})
    req = compiled.create_infer_request()
    names = {i.get_any_name() for i in compiled.inputs}
    total, count = 0.0, 0
    for s in range(0, (len(val) - 1) // seq * seq, seq):
        w = val[s:s + seq + 1].astype(np.int64)
        req.reset_state()
        inputs = {"input_ids": w[None, :-1], "attention_mask": np.ones((1, seq), np.int64),
                  "position_ids": np.arange(seq, dtype=np.int64)[None]}
        if "beam_idx" in names:
            inputs["beam_idx"] = np.zeros(1, np.int32)
        req.infer(inputs)
        logits = req.get_tensor("logits").data[0].astype(np.float64)
        m = logits.max(-1, keepdims=True)
        lse = (m[:, 0] + np.log(np.exp(logits - m).sum(-1)))
        total += float((lse - logits[np.arange(seq), w[1:]]).sum())
        count += seq
    return total / count


def dir_mb(d: Path) -> float:
    return sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) / 1e6


def export(data: Path, weights: Path, out: Path, train_log: Path | None = None, seq: int = 2048) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import GenerationConfig, PreTrainedTokenizerFast
    from triattn.openvino.export import export_to_openvino

    val = np.fromfile(data / "val.bin", np.uint16)
    hf, ref, diff = load_hf(data, weights)
    res = {"val_tokens_scored": (len(val) - 1) // seq * seq, "window": seq, "max_logit_diff_vs_train_net": diff,
           "params": sum(p.numel() for p in hf.parameters())}
    t = time.time()
    res["val_loss_torch_fp32"] = torch_val_loss(ref, val, seq)
    print(f"torch fp32 held-out loss {res['val_loss_torch_fp32']:.4f} ({time.time() - t:.0f}s)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "hf"
        hf.save_pretrained(src)
        tok = PreTrainedTokenizerFast.from_pretrained(data / "hf")
        tok.save_pretrained(src)
        GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id).save_pretrained(src)
        dirs = {}
        for fmt in ("fp16", "int8"):
            dirs[fmt] = Path(tmp) / fmt
            export_to_openvino(src, dirs[fmt], weight_format=fmt)
            res[f"val_loss_ov_{fmt}"] = ov_val_loss(dirs[fmt], val, seq)
            res[f"size_mb_{fmt}"] = dir_mb(dirs[fmt])
            print(f"OpenVINO {fmt}: held-out loss {res[f'val_loss_ov_{fmt}']:.4f}, "
                  f"{res[f'size_mb_{fmt}']:.1f} MB", flush=True)
        ok = res["val_loss_ov_int8"] <= res["val_loss_ov_fp16"] * (1 + INT8_TOLERANCE)
        res["shipped"] = "int8" if ok else "fp16"
        res["val_ppl_shipped"] = math.exp(res[f"val_loss_ov_{res['shipped']}"])
        card = (out / "README.md").read_text() if (out / "README.md").exists() else None
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(dirs[res["shipped"]], out)
    if card is not None:
        (out / "README.md").write_text(card)
    # what went in and how it was trained travel with the model
    shutil.copyfile(data / "corpus.tsv", out / "corpus.tsv")
    shutil.copyfile(data / "meta.json", out / "corpus.json")
    if train_log is not None:
        shutil.copyfile(train_log, out / "train-log.json")
    (out / "eval.json").write_text(json.dumps(res, indent=1) + "\n")
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="folder written by `prepare`")
    ap.add_argument("--weights", type=Path, required=True, help="folder of weights-*.pt from `train`")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--train-log", type=Path, help="state.json of the last training run")
    args = ap.parse_args(argv)
    print(json.dumps(export(args.data, args.weights, args.out, args.train_log), indent=1))


if __name__ == "__main__":
    main()
