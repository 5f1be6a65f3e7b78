"""Arguments shared by the commands, with the model card's names and defaults."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..core.config import GENAI_AGGREGATIONS, MECHANISMS, PRESETS, PROMPT_SELECTIONS, EvictionConfig, SamplingConfig, check_max_new_tokens


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {v}")
    return v


def add_model_args(p):
    p.add_argument("--model-dir", default=None,
                   help="OpenVINO model directory (default: the bundled SmolLM2-135M-Instruct)")
    p.add_argument("--device", default="CPU", help="CPU, GPU, NPU or AUTO (a device absent here is an error)")
    p.add_argument("--precision", default="auto", choices=["auto", "default", "f32"],
                   help="auto (default): the model's own choice (triattn.json in its folder), else the "
                        "device's; default: the device's own (bf16/f16 on CPU); f32: exact reference")
    p.add_argument("--form", default="paged", choices=["paged", "stateful"],
                   help="KV cache form: paged (default): OpenVINO's PagedAttention form, the cache in blocks we own "
                        "(falls back to stateful, saying so, where the model does not take it; mask always runs "
                        "stateful); stateful: the export's own hidden-state cache")


def add_eviction_args(p, multi: bool = False):
    """Eviction options. Single values default to None so that a --preset fills what is not given."""
    from ..policies import list_policies
    d = EvictionConfig()
    nargs = {"nargs": "+"} if multi else {}
    p.add_argument("--preset", choices=list(PRESETS), default=None,
                   help="named settings; options given explicitly win: " +
                        "; ".join(f"{k}: {', '.join(f'{n}={v}' for n, v in kw.items())}" for k, kw in PRESETS.items()))
    p.add_argument("--policy", default=[d.policy] if multi else None, choices=list(list_policies()), **nargs,
                   help=f"eviction policy (default {d.policy}): " +
                        "; ".join(f"{k}: {v}" for k, v in list_policies().items()))
    p.add_argument("--evict", default=[d.evict] if multi else None, choices=list(MECHANISMS), **nargs,
                   help=f"mechanism (default {d.evict}): " + "; ".join(f"{k}: {v}" for k, v in MECHANISMS.items()))
    p.add_argument("--budget", type=positive_int, default=None, help=f"max KV tokens kept (default {d.budget})")
    p.add_argument("--recent-window", type=positive_int, default=None,
                   help=f"most recent tokens always kept (default {d.recent_window})")
    p.add_argument("--sink-tokens", type=positive_int, default=None,
                   help=f"first tokens always kept (default {d.sink_tokens})")
    p.add_argument("--prune-interval", type=positive_int, default=None,
                   help=f"let the cache grow this many tokens past the budget before cutting back; "
                        f"1 prunes every step like the model card (default max(16, budget // 8))")
    p.add_argument("--prefill-chunk", type=positive_int, default=None, metavar="N",
                   help="read the prompt N tokens at a time; a pruning run cuts its cache to the budget before each "
                        "piece, so a long prompt costs time and memory linear in its length (default: the whole "
                        "prompt in one forward, cut once after it)")
    add_keep_prompt_arg(p)
    add_genai_args(p)


def add_keep_prompt_arg(p):
    p.add_argument("--keep-prompt", action=argparse.BooleanOptionalAction, default=None,
                   help="never prune the prompt: only generated tokens compete for the budget (default off; "
                        "on in the triattention-paper preset)")
    p.add_argument("--prompt-select", choices=list(PROMPT_SELECTIONS), default=None,
                   help="how a pruning run chooses what of the prompt to keep: policy (cut while reading it, the "
                        "default) or query (read it whole on the paged form, keep what its last 32 tokens, the "
                        "question, attend to most: SnapKV's selection; peak memory holds the whole prompt)")
    p.add_argument("--policy-option", action="append", default=None, metavar="NAME=VALUE",
                   help="one of the policy's own settings, repeatable (triattention: offset_max, the farthest "
                        "future distance its score averages over; default 65536)")


def add_genai_args(p):
    d = EvictionConfig()
    p.add_argument("--genai-aggregation", choices=list(GENAI_AGGREGATIONS), default=d.genai_aggregation,
                   help=f"ov-genai only: how OpenVINO GenAI aggregates attention scores (default "
                        f"{d.genai_aggregation}): " + "; ".join(f"{k}: {v}" for k, v in GENAI_AGGREGATIONS.items()))


def add_sampling_args(p):
    p.add_argument("--max-new-tokens", type=positive_int, default=200, help="tokens to generate (default 200)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--top-k", type=positive_int, default=0)
    p.add_argument("--seed", type=positive_int, default=0, help="sampling seed; both runs draw the same numbers")
    p.add_argument("--no-chat-template", action="store_true", help="feed the prompt as plain text")


def eviction_from(args, policy=None, evict=None) -> EvictionConfig:
    """EvictionConfig defaults, then the --preset, then the options given explicitly."""
    fields = dict(PRESETS[args.preset]) if getattr(args, "preset", None) else {}
    for name in ("policy", "evict", "budget", "recent_window", "sink_tokens", "prune_interval", "genai_aggregation",
                 "keep_prompt", "prefill_chunk", "prompt_select"):
        value = getattr(args, name, None)
        if value is not None and not isinstance(value, list):
            fields[name] = value
    fields.update({k: v for k, v in (("policy", policy), ("evict", evict)) if v})
    if getattr(args, "policy_option", None):
        fields["policy_options"] = tuple(_option(o) for o in args.policy_option)
    return EvictionConfig(**fields)


def _option(text: str) -> tuple:
    """'offset_max=4096' -> ('offset_max', 4096): a whole number, else a number, else the text."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"--policy-option takes NAME=VALUE, got {text!r}")
    for kind in (int, float):
        try:
            return name.strip(), kind(value)
        except ValueError:
            pass
    return name.strip(), value


def fill_eviction_defaults(args) -> None:
    """Set the single-valued eviction options left unset from the --preset, else the defaults."""
    d = EvictionConfig().as_dict()
    preset = PRESETS[args.preset] if getattr(args, "preset", None) else {}
    for name in ("budget", "recent_window", "sink_tokens", "keep_prompt"):
        if getattr(args, name, None) is None:
            setattr(args, name, preset.get(name, d[name]))
    if getattr(args, "prune_interval", None) is None:  # None: every config picks max(16, budget // 8)
        args.prune_interval = preset.get("prune_interval")


def sampling_from(args) -> SamplingConfig:
    check_max_new_tokens(args.max_new_tokens)
    return SamplingConfig(temperature=args.temperature, top_p=args.top_p, top_k=args.top_k, seed=args.seed)


def open_model(args):
    """(model, tokenizer) for --model-dir/--device/--precision, with notices on stderr."""
    from ..openvino.model import load_model
    from ..openvino.tiny import default_model_dir
    from ..core.text import load_tokenizer
    note = lambda m: print(m, file=sys.stderr)  # noqa: E731
    model_dir = args.model_dir or default_model_dir(note)
    model = load_model(model_dir, args.device, args.precision, form=getattr(args, "form", "paged"))
    if model.form_note:
        note(model.form_note)
    asked = (args.device or "CPU").strip().upper()
    if model.device != asked:  # the card's automatic fallback, said once on stderr
        note(f"device {asked} is not available here; using {model.device}")
    return model, load_tokenizer(model_dir)


def check_budgets(model, evictions) -> None:
    """Refuse, before any run starts, a budget the model's context can never reach and a choice
    its runtime cannot run."""
    from ..core.engine import check_request
    from ..core.runner import check_runnable
    for e in evictions:
        check_request(model.info, 1, e, 1)
        check_runnable(model, e)


def check_output_file(path) -> None:
    """Fail before any run if the result could not be written."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir() or not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ValueError(f"cannot write the output file {p} (is its folder there and writable?)")


def progress_bar(total: int, desc: str):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="run", file=sys.stderr, dynamic_ncols=True)
