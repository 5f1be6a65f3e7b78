"""The web page's words: what each output pane is, what the status line says, notices in plain words,
and the page's CSS. No Gradio here: ui.py puts these strings into widgets.
"""
from __future__ import annotations

import re

from .ab import headline
from ..core.quality import first_divergence

INTRO = """# KV-cache pruning, side by side
The same prompt runs twice on the same model: the **baseline** keeps every token in its KV cache
(the model's memory of the text so far); the **pruned** run keeps only a budget of tokens and evicts
the rest by the chosen policy. The two runs take turns token by token, so their timings are fair."""
GLOSSARY = """**TTFT**: time to first token (reading the prompt); the run that goes first meets colder
caches, so the runs take turns going first from one Generate to the next. **TPOT**: median time per
output token after that. **Throughput**: tokens per second over the whole run. **Memory Δ**: growth of the
process's resident memory during that run's own steps. **KV tokens / size**: the most tokens the KV
cache held while decoding, and their size (a long prompt's cut, right after its prefill, is said apart in
the line above the outputs). **Prune events / time**: how often the cache was cut, and the time it took
(included in the other timings). **Change**: pruned relative to baseline: in percent where the
baseline's figure is well above its noise; memory and time to first token as differences (memory grows by
a few MB or none; which run read its prompt first moves TTFT). Timings on a shared or busy
machine vary from run to run; run twice before trusting a small difference.

After both runs the pruned cache re-reads the baseline's own tokens ("forced"), so both runs are scored
on the same text. **Token agreement**: the share of new tokens where the two outputs have the same token
at the same place. **ΔNLL (forced)**: how much less likely, on average per token, the pruned cache finds
the baseline's tokens (negative log-likelihood, pruned minus baseline; 0 = no cost, higher = worse).
**PPL ratio**: the same as a perplexity ratio, pruned / baseline (1.000 = no cost). **Top-1 agreement
(forced)**: how often the pruned cache's most likely next token is the baseline's token."""

# Table cells and headers break only between words; the eviction view scrolls inside a box of its own
# (a long run marks thousands of tokens, which would otherwise make the page several screens tall).
CSS = """
#metrics th, #metrics td, #metrics th *, #metrics td * { word-break: normal !important;
  overflow-wrap: normal !important; hyphens: none !important; }
#metrics td, #metrics td * { white-space: nowrap !important; }
#eviction-view { max-height: 420px; overflow-y: auto !important; }
"""

SLIDING = re.compile(r"budget (\d+) is below the sliding window \((\d+)\)")


def plain_notice(message: str) -> str:
    """An engine warning as a visitor reads it: what happens and what to do."""
    m = SLIDING.search(message)
    if m:
        budget, window = m.groups()
        return (f"Note: this model's local-attention layers look at the last {window} tokens, more than the "
                f"budget of {budget}, so pruning also cuts into what those layers would normally see and the "
                f"output may change sooner. For a fair test of the policy, set the budget to {window} or more.")
    return f"Note: {message}"


def pruned_label(run, ran: str) -> str:
    """The pruned pane's label: the settings that ran (the runner says: ov-genai's block-rounded sizes)."""
    return f"Pruned: {run.runner.label(run.eviction, run.used)} ({ran})"


def timing_line(done: str, run_s: float, load_s: float) -> str:
    """'Done after 5.2 s.' and, when loading the model took a while, that apart."""
    line = f"**{done} after {run_s:.1f} s.**"
    if load_s >= 0.5:
        line += f" (Loading the model took {load_s:.1f} s before that, once per model and device.)"
    return line


def error_status(message: str) -> str:
    return (f"❌ **The run failed: {message}** Nothing below is from this run; "
            f"change the settings and press Generate again.")


NOT_REPORTED = ("Which tokens OpenVINO GenAI evicted is **not reported**: its pipeline evicts whole blocks "
                "inside its own cache and does not say which. The KV plot shows how many tokens it held.")
FAILED_LABELS = ("Baseline (no result: the last run failed)", "Pruned (no result: the last run failed)")


def divergence_text(pair) -> str:
    b, p = pair.baseline, pair.pruned
    div = first_divergence(b.token_ids, p.token_ids, b.done, p.done)
    if div is None:
        return f"**Outputs identical so far** ({min(len(b.token_ids), len(p.token_ids))} tokens)."
    tok = pair.tokenizer

    def show(t):
        return "(the end)" if t is None else f"`{tok.decode([t], skip_special_tokens=False)!r}`"
    return (f"**The outputs first differ at new token #{div.index + 1}**: baseline {show(div.baseline)}, "
            f"pruned {show(div.pruned)}. Later differences follow from that one.")


def precision_label(model) -> str:
    """Which precision ran, in words: the model folder may choose f32 (triattn.settings)."""
    kv = f"{model.form} KV cache {model.kv_precision.to_string()}"
    if model.precision == "f32":
        return f"f32 precision, {kv}"
    return f"the device's default precision, {kv}"


def progress_line(pair, max_new: int) -> str:
    return f"baseline {len(pair.baseline.token_ids)}, pruned {len(pair.pruned.token_ids)} of {max_new} tokens"


def pair_headline(pair) -> str:
    b, p = pair.baseline.current_metrics(), pair.pruned.current_metrics()
    if b is None or p is None:
        return ""
    div = first_divergence(pair.baseline.token_ids, pair.pruned.token_ids, pair.baseline.done, pair.pruned.done)
    return headline(b, p, div, pair.pruned.runner.why_larger(pair.pruned.used), pair.pruned.eviction.prefill_chunk)


def run_notes(pair) -> str:
    """The engine's warnings, each once, in plain words, kept in the status line for the whole run."""
    return "".join(f"\n\n{plain_notice(m)}" for m in dict.fromkeys(pair.notices))
