"""Get an OpenVINO LLM export: download a ready IR from the model hub, or convert a transformers
checkpoint with optimum-intel (stateful, with past; weights int4, int8, fp16 or fp32).

Network use is bounded: the model id is checked locally first, then one short probe of the hub
decides whether to go on, so an offline machine fails in seconds with one line, not a traceback.
"""
from __future__ import annotations

import os
import re
import shutil
import warnings
from pathlib import Path

from ..paths import ASSETS

WEIGHT_FORMATS = ("int4", "int8", "fp16", "fp32")
SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"
# Settings measured for one model (its model card has the figures), shared by the hub conversion
# (`python -m triattn export --model-id ...`) and the offline build from the GGUF
# (scripts/build_smollm2.py), so both give the same export. `quantization` replaces the weight
# format's generic config; `settings` goes to the export's triattn.json (see triattn.settings).
# SmolLM2: every layer int4 asymmetric in groups of 32 (the GGUF's own blocks), tuned by AWQ and scale
# estimation on English text; f32 inference, since the CPU's bf16 default flipped greedy answers.
RECIPES = {
    SMOLLM2: dict(weight_format="int4", settings={"precision": "f32"},
                  quantization={"bits": 4, "sym": False, "group_size": 32, "ratio": 1.0, "quant_method": "awq",
                                "scale_estimation": True, "dataset": "english-sample"}),
}
ENGLISH_TEXT = ASSETS / "text" / "python-reference-sample.txt"
ENGLISH_DATA_CHARS = 18_000  # about the 4096 tokens the calibration reads; quality is measured after them
OV_TOKENIZER_FILES = ("openvino_tokenizer.xml", "openvino_detokenizer.xml")
PROBE_TIMEOUT_S = float(os.environ.get("TRIATTN_HUB_TIMEOUT", "8"))
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


class ExportError(ValueError):
    """An export that cannot be done; the message is for the user."""


def check_model_id(model_id: str) -> str:
    """The hub's rules: `name` or `namespace/name`, [A-Za-z0-9._-], no leading/trailing . or -,
    no `--` or `..`, at most 96 characters. Checked before any network use."""
    mid = (model_id or "").strip()
    parts = mid.split("/")
    if (not mid or len(mid) > 96 or len(parts) > 2 or ".." in mid or "--" in mid
            or not all(_NAME.fullmatch(p) for p in parts)):
        raise ExportError(f"not a model id: {model_id!r} (expected 'namespace/name', e.g. "
                          f"OpenVINO/gpt-oss-20b-int4-ov)")
    return mid


def _check_output_dir(out: Path) -> None:
    # The conversion replaces the directory at the end: never do that to a folder we did not make.
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "openvino_model.xml").is_file())):
        raise ExportError(f"output directory {out} exists and is not an OpenVINO export; choose an empty or new one")


def hub_files(model_id: str) -> list[str]:
    """The repository's file list, after a short reachability probe of the hub."""
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", str(int(PROBE_TIMEOUT_S)))
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", str(int(PROBE_TIMEOUT_S)))
    import httpx
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError
    from huggingface_hub.utils import get_session

    if constants.HF_HUB_OFFLINE:
        raise ExportError("the model hub is disabled (HF_HUB_OFFLINE is set); cannot download "
                          f"{model_id}")
    try:
        get_session().head(constants.ENDPOINT, timeout=PROBE_TIMEOUT_S)
    except httpx.HTTPError as e:
        raise ExportError(f"cannot reach the model hub at {constants.ENDPOINT} "
                          f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no answer'}); "
                          f"check the network or copy an export and use --model-dir") from None
    try:
        return HfApi().list_repo_files(model_id)
    except GatedRepoError:
        raise ExportError(f"{model_id} is gated: accept its licence on the hub and log in "
                          f"(`hf auth login`)") from None
    except RepositoryNotFoundError:
        raise ExportError(f"model {model_id} not found on the hub (or private)") from None
    except (HfHubHTTPError, OfflineModeIsEnabled, httpx.HTTPError) as e:
        raise ExportError(f"cannot list {model_id} on the hub: {str(e).splitlines()[0]}") from None


def missing_ov_tokenizer(model_dir: str | Path) -> list[str]:
    """The OpenVINO tokenizer / detokenizer files an export lacks. triattn tokenizes with transformers
    and gives OpenVINO GenAI token ids, so it runs without them; GenAI's own pipelines, fed text, need them."""
    return [f for f in OV_TOKENIZER_FILES if not (Path(model_dir) / f).is_file()]


def _warn_missing_tokenizer(out: Path) -> None:
    missing = missing_ov_tokenizer(out)
    if missing:
        warnings.warn(f"{out} has no {' or '.join(missing)}: OpenVINO GenAI's own pipelines need them "
                      f"(convert the tokenizer with openvino-tokenizers: convert_tokenizer --with-detokenizer)")


def export_model(model_id: str, output_dir: str | Path, weight_format: str = "int4") -> tuple[Path, str]:
    """Download or convert `model_id` into `output_dir`. Returns (directory, "downloaded"|"converted").
    Either way the export should hold the OpenVINO tokenizer and detokenizer; a warning says if not."""
    model_id = check_model_id(model_id)
    if weight_format not in WEIGHT_FORMATS:
        raise ExportError(f"unknown weight format {weight_format!r}; choose one of {', '.join(WEIGHT_FORMATS)}")
    out = Path(output_dir)
    _check_output_dir(out)
    files = hub_files(model_id)
    if "openvino_model.xml" in files:
        from huggingface_hub import snapshot_download
        try:
            snapshot_download(model_id, local_dir=out)
        except Exception as e:  # network errors mid-download come in many kinds; the user needs one line
            raise ExportError(f"download of {model_id} failed: {str(e).splitlines()[0]}") from None
        _warn_missing_tokenizer(out)
        return out, "downloaded"
    if "config.json" not in files:
        raise ExportError(f"{model_id} holds neither an OpenVINO IR nor a transformers checkpoint")
    try:
        export_to_openvino(model_id, out, weight_format)
    except ExportError:
        raise
    except Exception as e:  # optimum raises many kinds (unsupported architecture, memory, network)
        raise ExportError(f"conversion of {model_id} failed: {str(e).splitlines()[0]}") from None
    _warn_missing_tokenizer(out)
    return out, "converted"


def quantization_config(weight_format: str, model_id: str):
    """optimum-intel's config for a weight format: the model's own int4/int8 default when optimum
    knows one (gpt-oss has a mixed int4/int8 recipe), else the generic one optimum-cli uses."""
    if weight_format not in ("int4", "int8"):
        return None
    recipe = RECIPES.get(model_id)
    if recipe and recipe["weight_format"] == weight_format:
        config = dict(recipe["quantization"])
        if config.get("dataset") == "english-sample":
            config["dataset"] = english_samples()
            config["num_samples"] = len(config["dataset"])
        return config
    from optimum.intel.openvino.configuration import _DEFAULT_4BIT_WQ_CONFIG, get_default_quantization_config
    default = get_default_quantization_config(model_id, weight_format)
    if default is not None:
        return dict(default)
    if weight_format == "int8":
        return {"bits": 8, "sym": False}
    # layers narrower than the group fall back to a group that fits rather than failing
    return {**_DEFAULT_4BIT_WQ_CONFIG, "group_size_fallback": "adjust"}


def english_samples(min_chars: int = 200) -> list[str]:
    """Data for AWQ and scale estimation: the paragraphs of at least `min_chars` in the first part
    of the shipped English text (a local list, so no dataset is downloaded)."""
    text = ENGLISH_TEXT.read_text(encoding="utf-8")[:ENGLISH_DATA_CHARS]
    return [p for p in text.split("\n\n") if len(p) >= min_chars]


def export_to_openvino(src: str | Path, out_dir: str | Path, weight_format: str = "fp16",
                       recipe: str | None = None) -> None:
    """optimum-intel export of a transformers checkpoint (a local directory or a hub id) to a stateful
    IR with past, plus the OpenVINO tokenizer and detokenizer (openvino-tokenizers), written to
    `<out_dir>.partial` and moved into place only when complete. `recipe` names the RECIPES entry
    to use (default: the one for `src`, if any)."""
    from optimum.exporters.openvino import main_export
    from optimum.exporters.openvino.__main__ import _main_quantize
    from optimum.intel.openvino.configuration import OVConfig, _GPTOSSQuantizationConfig

    out_dir = Path(out_dir)
    tmp_out = Path(str(out_dir) + ".partial")
    shutil.rmtree(tmp_out, ignore_errors=True)
    recipe = recipe or str(src)
    quant = quantization_config(weight_format, recipe)
    ov_config = OVConfig(quantization_config=quant) if quant else OVConfig(dtype=weight_format)
    task = "text-generation-with-past"
    main_export(str(src), output=tmp_out, task=task, stateful=True, convert_tokenizer=True, ov_config=ov_config)
    # main_export applies only gpt-oss's recipe itself; other weight configs are applied after it,
    # as optimum-cli does.
    if quant and not isinstance(ov_config.quantization_config, _GPTOSSQuantizationConfig):
        from huggingface_hub.constants import HF_HUB_CACHE
        _main_quantize(str(src), task, "transformers", ov_config.quantization_config, tmp_out, HF_HUB_CACHE)
    if Path(src).is_dir():
        for f in [*Path(src).glob("*token*"), *Path(src).glob("chat_template.*")]:
            shutil.copy(f, tmp_out / f.name)
    if recipe in RECIPES:
        from .settings import write_settings
        write_settings(tmp_out, RECIPES[recipe]["settings"])
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp_out.rename(out_dir)
