"""Launching the web demo: the options of `python app.py` (and `triattn app`), the Space's settings,
the default model compiled before the first visitor, and Gradio's server started quietly.

On a Hugging Face Space (SPACE_ID set) the model comes from MODEL_ID and the device from DEVICE.
Local model folders come only from here (--model-dir, MODEL_ID), never from the page.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings


def parse_args(argv=None, prog: str = "python app.py"):
    p = argparse.ArgumentParser(prog=prog, description="Web demo: the same prompt with a full and "
                                "with a pruned KV cache, side by side.")
    p.add_argument("--model-dir", action="append", default=[],
                   help="an OpenVINO LLM export to offer (repeatable; the first is selected)")
    p.add_argument("--device", default=os.environ.get("DEVICE", "CPU"), help="initial device: CPU, GPU, NPU or AUTO (default CPU); a GPU or "
                   "NPU this machine lacks falls back to CPU, with a notice")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                   help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 0)) or None,
                   help="port (default: 7860 or the next free one)")
    p.add_argument("--share", action="store_true", help="also make a temporary public gradio.live link")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    return p.parse_args(argv)


def wants_browser(args) -> bool:
    if args.no_browser or os.environ.get("SPACE_ID"):
        return False
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(argv=None, prog: str = "python app.py") -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")  # no "PyTorch was not found": we run without it
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    args = parse_args(argv, prog)
    from .choices import Catalog, fetch_model, launch_device
    from ..openvino.model import ModelError, read_info
    on_space = bool(os.environ.get("SPACE_ID"))
    dirs = []
    try:
        for d in args.model_dir:
            read_info(d)
            dirs.append(d)
        device, warning = launch_device(args.device, on_space)
    except ModelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    space_model = os.environ.get("MODEL_ID") if on_space else None
    if space_model:
        try:
            dirs.insert(0, str(fetch_model(space_model)))
        except ModelError as e:  # the Space still serves, with the default model
            print(f"warning: MODEL_ID: {e}", file=sys.stderr)
    catalog = Catalog(dirs)
    from .pagetext import CSS
    from .layout import build
    from .ui import warm_up
    if not dirs:
        from ..openvino.tiny import default_model_dir
        # build (a checkout without bundled models), compile the default model and read its tokenizer
        # now, not during the first visitor's click
        warm_up(default_model_dir(), device)
    demo = build(catalog, device)
    # quiet: Gradio's own lines would tell to "set `share=True` in `launch()`"; ours name --share
    _, local_url, share_url = demo.launch(server_name=args.host, server_port=args.port, share=args.share,
                                          inbrowser=wants_browser(args), css=CSS, quiet=True,
                                          prevent_thread_lock=True)
    print(f"Running on {local_url}", flush=True)
    print(f"Public link: {share_url}" if share_url else
          "For a temporary public link, start with --share", flush=True)
    demo.block_thread()
    return 0


