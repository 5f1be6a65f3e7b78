"""Write assets/text/python-reference-sample.txt: English prose from the Python Language Reference.

Scope: the text the bundled English model is calibrated (TriAttention) and measured (ΔNLL) on.
The source is `pydoc_data.topics`, the reference's text as shipped inside CPython's standard
library (PSF License Version 2), so it is at hand offline. Only prose paragraphs are kept:
indented lines (grammar rules and code examples) and heading underlines are dropped.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

TOPICS = ("execmodel", "naming", "exceptions", "dynamic-features", "compound", "customization",
          "typesseq", "dict", "numbers", "truth")
OUT = Path(__file__).resolve().parent.parent / "assets" / "text" / "python-reference-sample.txt"


def prose(text: str) -> str:
    paragraphs = []
    for block in re.split(r"\n\s*\n", text):
        lines = block.splitlines()
        if not lines or lines[0].startswith((" ", "\t")) or re.fullmatch(r"[*=\-~^]+", lines[-1].strip()):
            continue
        paragraphs.append(" ".join(line.strip() for line in lines))
    return "\n\n".join(paragraphs)


def main() -> int:
    from pydoc_data.topics import topics
    parts = [prose(topics[name]) for name in TOPICS if name in topics]
    OUT.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    print(f"{OUT}: {OUT.stat().st_size} bytes from Python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
