"""Where triattn finds its files: the bundled assets (models, example prompts, texts) and its cache.

In a checkout (or an editable install) the assets are the repository's `assets/` folder; a wheel
installs that folder as the data package `triattn_assets` (see pyproject.toml).
"""
from __future__ import annotations

import os
from pathlib import Path


def _assets() -> Path:
    checkout = Path(__file__).resolve().parent.parent / "assets"
    if checkout.is_dir():
        return checkout
    try:
        import triattn_assets
        return Path(next(iter(triattn_assets.__path__)))
    except (ImportError, StopIteration):
        return checkout  # absent: whoever needs a file says which one is missing


ASSETS = _assets()
CACHE = Path(os.environ.get("TRIATTN_CACHE", Path.home() / ".cache" / "triattn"))
