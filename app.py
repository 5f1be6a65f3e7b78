"""`python app.py`: the triattn web demo (baseline vs pruned KV cache, side by side).

This file only wires: the launch options, the Space's settings and the server live in
triattn.web.launch (also `triattn app` once the package is installed).
"""
from triattn.web.launch import main, parse_args, wants_browser  # noqa: F401  (the options, for tests)

if __name__ == "__main__":
    raise SystemExit(main())
