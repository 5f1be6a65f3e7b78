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
GLOSSARY = """The first columns are about the pair: where the outputs part, and the quality cost (below).
Each run's speed and cache figures are taken over the tokens **both** runs made (when one stopped
earlier, the Change row's Tokens cell says so). **TTFT**: time to first token (reading the prompt); the
run that goes first meets colder caches, so it is shown but not compared. **TPOT**: mean time per output
token after that. **Throughput**: output tokens per second, 1000 / TPOT. **Latency**: the whole run,
prompt included (not compared: the runs can be of different lengths). **KV tokens / size**: the most
tokens the KV cache held while decoding, and its size: on the paged form (the default) the memory its
block pool holds, in whole blocks of 32 tokens with the room the run reserves (a pruned run: budget +
interval; a baseline: prompt + new tokens); on the stateful form, tokens x bytes per token. The
pruned cache grows past its budget between cuts (the prune interval), and a long prompt's cut, right
after it is read, is said apart in the line above the outputs. **Prune events / time**: how often the cache was cut, and the time it took
(included in the timings). **Peak RSS**: the most memory the process held during the comparison; both
runs go in turns in one process, so it is not split between them. **Change**: pruned relative to
baseline. Time per token is compared step by step (step i of one run went beside step i of the
other) with a 95% interval: a direction is stated only when the interval excludes 0, otherwise "no
difference (±x%)", the most the noise allows. Timings on a shared or busy machine vary from run to run.

After both runs the pruned cache re-reads the baseline's own tokens ("forced"), so both runs are scored
on the same text. **Token agreement**: the share of new tokens where the two outputs have the same token
at the same place, with the count behind it (2 of 7: over few tokens a share says little). **ΔNLL (forced)**: how much less likely, on average per token, the pruned cache finds
the baseline's tokens (negative log-likelihood, pruned minus baseline; 0 = no cost, higher = worse).
**PPL ratio**: the same as a perplexity ratio, pruned / baseline (1.000 = no cost). **Top-1 agreement
(forced)**: how often the pruned cache's most likely next token is the baseline's token."""

# Table cells and headers break only between words; the eviction view scrolls inside a box of its own
# (a long run marks thousands of tokens, which would otherwise make the page several screens tall).
CSS = """
#metrics th, #metrics td, #metrics th *, #metrics td *, #arena-leaderboard th, #arena-leaderboard td,
#arena-leaderboard th *, #arena-leaderboard td * { word-break: normal !important;
  overflow-wrap: normal !important; hyphens: none !important; }
#metrics td, #metrics td *, #arena-leaderboard td, #arena-leaderboard td * { white-space: nowrap !important; }
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
    """The pruned pane's label: the settings that ran (the runner says: ov-genai's block-rounded sizes),
    and, where the cache grows between cuts, how far: a budget of 64 beside a KV column of 79 is that."""
    e = run.eviction
    grows = (f", cut back to it every {e.prune_interval} tokens (so it holds up to {e.budget + e.prune_interval - 1})"
             if run.runner.reports_prunes and e.prune_interval > 1 else "")
    return f"Pruned: {run.runner.label(e, run.used)}{grows} ({ran})"


def timing_line(done: str, run_s: float, load_s: float) -> str:
    """'Done after 5.2 s.' and, when loading the model took a while, that apart."""
    line = f"**{done} after {run_s:.1f} s.**"
    if load_s >= 0.5:
        line += f" (Loading the model took {load_s:.1f} s before that, once per model and device.)"
    return line


def error_status(message: str) -> str:
    end = "" if message.rstrip().endswith((".", "!", "?")) else "."
    return (f"❌ **The run failed: {message.rstrip()}{end}** Nothing below is from this run; "
            f"change the settings and press Generate again.")


def refused_status(message: str) -> str:
    end = "" if message.rstrip().endswith((".", "!", "?")) else "."
    return (f"❌ **Not run: {message.rstrip()}{end}** What is below, if anything, is from the run before; "
            f"change the settings and press the button again.")


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
    b, p, f = pair.baseline.current_metrics(), pair.pruned.current_metrics(), pair.pair_figures()
    if f is None:
        return ""
    div = first_divergence(pair.baseline.token_ids, pair.pruned.token_ids, pair.baseline.done, pair.pruned.done)
    run = pair.pruned
    return headline(b, p, f, div, run.runner.why_larger(run.used), run.eviction.prefill_chunk,
                    run.runner.held(f.kv_tokens[1], run.used))


def run_notes(pair) -> str:
    """The engine's warnings, each once, in plain words, kept in the status line for the whole run."""
    return "".join(f"\n\n{plain_notice(m)}" for m in dict.fromkeys(pair.notices))
