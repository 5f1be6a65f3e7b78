"""Answers that can be checked: an example prompt may carry the strings a right answer contains.

The expected answers live beside the example texts (assets/prompts/answers.json): each entry names
a passage of the prompt it belongs to (`contains`) and the strings (`expected`) every one of which a
right answer contains, compared case-insensitively. The long-context needle examples are generated
by triattn.eval.tasks (RULER's needle tasks; Hsieh et al. 2024, arXiv 2404.06654), whose expected
strings come with them.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from ..paths import ASSETS

ANSWERS = ASSETS / "prompts" / "answers.json"


@lru_cache(maxsize=4)
def _entries(path: str) -> tuple:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    return tuple((e["contains"], tuple(e["expected"])) for e in data if e.get("contains") and e.get("expected"))


def expected_for(prompt: str, path: Path = ANSWERS) -> tuple:
    """The strings a right answer to `prompt` contains; () when the prompt carries none."""
    for passage, expected in _entries(str(path)):
        if passage in (prompt or ""):
            return expected
    return ()


def contains_answer(text: str, expected) -> bool | None:
    """Whether `text` contains every expected string (case-insensitive); None without any."""
    if not expected:
        return None
    low = text.casefold()
    return all(e.casefold() in low for e in expected)
