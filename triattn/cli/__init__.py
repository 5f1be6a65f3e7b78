"""`python -m triattn <command>`: each command is a module with `add_parser(sub)` and `run(args)`.

Every error a user can cause prints one line to stderr and exits with status 2.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings

COMMANDS = ["infer", "bench", "sweep", "profile", "soak", "calibrate", "perf", "prune_bench", "export", "make_tiny_model", "eval"]


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv=None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")  # no "PyTorch was not found": we run without it
    logging.getLogger("transformers").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.formatwarning = lambda message, *a, **k: f"warning: {message}\n"
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    if argv[:1] == ["app"]:  # the web demo takes the options of `python app.py`
        from ..web.launch import main as launch
        return launch(argv[1:], prog="triattn app")
    parser = Parser(prog="python -m triattn", description="KV-cache token pruning on OpenVINO LLMs: A/B runs, "
                    "benchmarks and tools.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    sub.add_parser("app", help="serve the web demo (the options of `python app.py`; see `triattn app --help`)")
    modules = {}
    for name in COMMANDS:
        mod = importlib.import_module(f".{name}", __name__)
        modules[mod.add_parser(sub)] = mod
    args = parser.parse_args(argv)
    from ..errors import ModelError, redact
    try:
        return modules[args.command].run(args) or 0
    except (ValueError, ModelError, FileNotFoundError, PermissionError) as e:
        print(f"error: {redact(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
