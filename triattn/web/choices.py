"""What the web page offers: example prompts, policy and mechanism labels, models and devices.

Models are the default one (`tiny.default_model_dir`: the bundled SmolLM2-135M-Instruct, or a
random-weight tiny model built on first use in a checkout without it), the bundled gpt-oss-family
demo model, directories named at launch (`--model-dir`, or MODEL_ID on a
Space), and Hugging Face downloads. What a visitor types reaches the hub as a checked model id,
never the file system as a path. Every failure is a ModelError or ValueError whose message is
meant for the user.
"""
from __future__ import annotations

import importlib.util
import re
import threading
from pathlib import Path

from ..core.config import MECHANISMS
from ..errors import reason
from ..openvino.model import ModelError, available_devices, read_info, resolve_device
from ..policies import get_policy, list_policies
from ..paths import ASSETS
from ..core.runs import DEMO_MODEL, ENGLISH_MODEL, bundled_models
from ..openvino.tiny import default_model_dir

PROMPTS = ASSETS / "prompts"
DEFAULT = "default"
BIG_MODEL = "OpenVINO/gpt-oss-20b-int4-ov"
# What each bundled model is for, in the model menu and above the results.
LABELS = {ENGLISH_MODEL: "SmolLM2-135M-Instruct: writes English",
          DEMO_MODEL: "gpt-oss architecture: sliding windows and sinks, writes Python"}
NOTICES = {
    ENGLISH_MODEL: "**Model: SmolLM2-135M-Instruct** (135M parameters, int4 weights, bundled): a small "
                   "instruct model that writes fluent English, though its facts are often wrong.",
    DEMO_MODEL: "**Model: the gpt-oss-family demo model** (16.8M parameters, bundled): gpt-oss's sliding-window "
                "layers and attention sinks, trained on the Python standard library; it writes Python-like text.",
}


# The example files written for the bundled Python model; the others are English.
PYTHON_PROMPTS = ("python.txt",)


def example_prompts(folder: Path = PROMPTS, files=None) -> list[str]:
    """The prompts of every *.txt file in the folder (or of `files`), files in name order (one prompt
    a line, or blocks between lines of `---`); a prompt in two files is offered once."""
    from ..core.text import split_prompts
    prompts = []
    for f in sorted(folder.glob("*.txt")):
        if files is None or f.name in files:
            prompts += split_prompts(f.read_text(encoding="utf-8"))
    return list(dict.fromkeys(prompts))


def prompt_for_model(value: str, prompt: str, folder: Path = PROMPTS) -> str:
    """The prompt to show when the model menu changes to `value`: the model's first example when the
    prompt is an example written for another model (or empty); a prompt the visitor typed stays."""
    bundled = _bundled(value)
    if bundled is None:
        return prompt
    python = [f.name for f in folder.glob("*.txt") if f.name in PYTHON_PROMPTS]
    english = [f.name for f in folder.glob("*.txt") if f.name not in PYTHON_PROMPTS]
    own, other = (python, english) if bundled == DEMO_MODEL else (english, python)
    mine = example_prompts(folder, own)
    if mine and (not (prompt or "").strip() or prompt in example_prompts(folder, other)) and prompt not in mine:
        return mine[0]
    return prompt


def policy_choices() -> list[tuple[str, str]]:
    """The pruning policies (the baseline's policy is the other pane, not a choice), described in
    words; a command-line flag named in a description is the CLI's business, not the menu's."""
    return [(f"{name} — {re.sub(r' ?[(]--[a-z-]+[)]', '', desc)}", name) for name, desc in list_policies().items()
            if get_policy(name).prunes]


def prompt_select_choices() -> list[tuple[str, str]]:
    return [("chosen by the policy while the prompt is read (cut before each piece of 512)", "policy"),
            ("chosen by the question: the whole prompt is read, then the tokens its last 32 attend to most "
             "are kept (SnapKV's selection; paged form, holds the whole prompt while reading)", "query")]


def mechanism_choices() -> list[tuple[str, str]]:
    labels = {"zero": "zero — not a true eviction: zeroes K/V as the model card did (a zero key still "
                      "takes softmax mass)"}
    return [(labels.get(name, f"{name} — {desc}"), name) for name, desc in MECHANISMS.items()]


def device_choices() -> list[str]:
    try:
        devices = available_devices()
    except Exception:  # an OpenVINO without any plugin still lets CPU be asked for
        devices = ["CPU"]
    return list(dict.fromkeys(devices + ["AUTO"]))


def load_big_model_steps() -> str:
    """Shell lines that fetch gpt-oss-20b-int4-ov and open it here (the export command if this
    install has one, else a plain download of the ready OpenVINO export)."""
    if importlib.util.find_spec("triattn.cli.export") is not None:
        fetch = f"python -m triattn export --model-id {BIG_MODEL} --output-dir models/gpt-oss-20b"
    else:
        fetch = f"hf download {BIG_MODEL} --local-dir models/gpt-oss-20b"
    return f"{fetch}\npython app.py --model-dir models/gpt-oss-20b"


class Catalog:
    """The models on offer: value -> label. The value is a path, or DEFAULT for the default model.

    Shared by all visitors (a model fetched by one is offered to all); only the server adds to it.
    """

    def __init__(self, model_dirs=(), preferred: str | None = None):
        self.models: dict[str, str] = {DEFAULT: default_label()}
        self._lock = threading.Lock()  # a download may add while another visitor's page lists
        for d in bundled_models()[1:]:  # the first is DEFAULT
            self.add(d, LABELS[d])
        for d in model_dirs:
            self.add(d)
        self.preferred = preferred or (str(Path(model_dirs[0]).resolve()) if model_dirs else DEFAULT)

    def add(self, model_dir, label: str | None = None) -> str:
        value = str(Path(model_dir).resolve())
        with self._lock:
            self.models[value] = label or f"{Path(model_dir).name} ({value})"
        return value

    def choices(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(label, value) for value, label in self.models.items()]

    def resolve(self, value: str, notify=print) -> Path:
        """The directory for a choice, building the default model if it is not there yet."""
        if value == DEFAULT:
            return default_model_dir(notify)
        with self._lock:
            known = value in self.models
        if not known:  # only folders the server was started with, or fetched itself, are ever opened
            raise ModelError(f"unknown model choice {value!r}")
        read_info(value)  # raises ModelError: missing directory, not an OpenVINO LLM export
        return Path(value)


def default_label() -> str:
    bundled = bundled_models()
    if bundled:
        return LABELS[bundled[0]]
    return "default: tiny model with RANDOM weights (text is noise)"


def _bundled(value: str) -> Path | None:
    """The bundled model a menu value stands for, if any."""
    bundled = bundled_models()
    if value == DEFAULT:
        return bundled[0] if bundled else None
    return next((d for d in bundled if str(d.resolve()) == value), None)


def model_notice(value: str) -> str:
    """Markdown shown above the page's results for the chosen model."""
    steps = f"```bash\n{load_big_model_steps()}\n```"
    bundled = _bundled(value)
    if bundled is not None:
        return f"{NOTICES[bundled]} To compare on gpt-oss-20b (int4, a download of over 10 GB):\n{steps}"
    if value == DEFAULT:
        return ("⚠️ **This model's weights are random: its text is noise.** It shows how pruning changes "
                "speed, memory and which tokens are kept, not answer quality. To compare on a real model, "
                f"e.g. gpt-oss-20b (int4, a download of over 10 GB):\n{steps}")
    return f"**Model:** `{value}`"


def launch_device(requested: str, on_space: bool) -> tuple[str, str | None]:
    """(device, warning) for the page's initial device. An absent one is a ModelError, except on
    a Space, which must keep serving: there it is CPU, with a warning."""
    try:
        device = resolve_device(requested)
        asked = (requested or "CPU").strip().upper()
        return device, (f"device {asked} is not available here; using CPU" if device != asked else None)
    except ModelError as e:
        if not on_space:
            raise
        return "CPU", f"{e}; using CPU"


# The files triattn reads from a hub export: OpenVINO IRs, configs, tokenizer and chat template.
HUB_PATTERNS = ["openvino_*.xml", "openvino_*.bin", "*.json", "tokenizer.model", "*.tiktoken", "*.txt", "*.jinja"]


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~", "\\")) or "\\" in name or ":" in name or name.count("/") > 1


def fetch_hub_model(name: str) -> Path:
    """A Hugging Face model id, downloaded into the Hugging Face cache (OpenVINO exports only).

    Only ids are taken, checked before any network use; nothing given here is opened as a path.
    Raises ModelError with one line for the user: bad id, offline, not found, not an export.
    """
    from ..openvino.export import ExportError, check_model_id, hub_files
    name = (name or "").strip()
    if not name:
        raise ModelError("enter a Hugging Face model id (like OpenVINO/gpt-oss-20b-int4-ov)")
    if _looks_like_path(name):
        raise ModelError(f"{name!r} is not a Hugging Face model id: only hub ids (owner/name) are taken here; "
                         f"a local folder is opened with `python app.py --model-dir FOLDER`")
    try:
        name = check_model_id(name)
        files = hub_files(name)  # a short probe first: offline fails in seconds
    except ExportError as e:
        raise ModelError(str(e)) from None
    if "openvino_model.xml" not in files:
        raise ModelError(f"{name} holds no OpenVINO export (openvino_model.xml); convert it with "
                         f"`python -m triattn export --model-id {name} --output-dir DIR`, then "
                         f"`python app.py --model-dir DIR`")
    from huggingface_hub import snapshot_download
    try:
        path = Path(snapshot_download(name, allow_patterns=HUB_PATTERNS))
    except Exception as e:  # network cut, disk full, gated: all reach the user as one line
        raise ModelError(f"could not download {name} from Hugging Face ({reason(e)}); check the id and the "
                         f"internet connection, or download it elsewhere and start the app with --model-dir") from None
    read_info(path)
    return path


def fetch_model(name: str) -> Path:
    """MODEL_ID on a Space: a local folder (the Space's own files) or a Hugging Face model id."""
    name = (name or "").strip()
    local = Path(name).expanduser()
    if name and (local.is_dir() or _looks_like_path(name)):
        read_info(local)
        return local
    return fetch_hub_model(name)
