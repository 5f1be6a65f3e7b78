"""User-facing errors: the ModelError type, and turning any exception text into one short line
with no secret in it (the CLI prints it, the web page shows it)."""
from __future__ import annotations

import os
import re

# Environment variables whose values must never reach a message or a log.
SECRET_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_TOKEN", "HF_API_TOKEN")
_NOISE = ("Exception from ", "Check '")  # OpenVINO's source locations, not reasons


class ModelError(ValueError):
    """A model directory, hub id or device that cannot be used; the message is for the user."""


def redact(text: str) -> str:
    """`text` with the value of every secret environment variable replaced by ***."""
    for name in SECRET_VARS:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text


class Cancelled(Exception):
    """A forward stopped by its session's `cancel()` (the page's Stop): a stop, not a failure."""


class RuntimeFailure(ModelError):
    """OpenVINO or OpenVINO GenAI failed while running a request the checks let through (an internal
    assertion, memory): bad input for this model, reported as one line, the server still serving."""


def runtime_failure(what: str, error: BaseException) -> RuntimeFailure:
    """`what` failed, with OpenVINO's reason: its last line, or the condition of a failed check."""
    text = str(error)
    check = re.search(r"Check '([^']+)' failed", text)
    why = reason(error)
    if check and why == type(error).__name__:  # the message is nothing but the failed check
        why = f"internal check failed: {check.group(1)}"
    return RuntimeFailure(f"{what}: {why}")


def reason(error: BaseException, limit: int = 200) -> str:
    """The most telling line of an exception's text: OpenVINO puts its reason last, after lines of
    source locations; others put it first. Never empty, never longer than `limit`."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(_NOISE)]
    if useful:
        text = useful[-1] if len(useful) < len(lines) else useful[0]
    else:
        text = type(error).__name__
    text = redact(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"
