"""Step-interleaved benchmark runs (`bench --interleave steps`): per run index and prompt, every
mode of that prompt advances one token in turn, each in its own session, as the web page runs its
two panes, so that a shared machine's drift reaches every mode alike, step by step."""
from __future__ import annotations

from ..core.interleave import interleave
from ..core.runs import raw_run, stream_run


def execute_steps(model, tokenizer, plan, sampling, max_new_tokens, runs, calib, progress):
    """Per run index and prompt, that prompt's modes advance a token each in turn. A long-context
    plan's reference (the baseline at context = budget) runs alongside every length, in its own
    session, so each length's limit ratio compares steps taken at the same time."""
    ref = plan.reference
    sessions = {m: model.new_session() for m in range(len(plan.modes))}
    if ref is not None:
        sessions["reference"] = model.new_session()
    groups = [p for p in dict.fromkeys(c.prompt for c in plan.cells)
              if ref is None or p != ref.prompt or any(c.prompt == p and c != ref for c in plan.cells)]
    raw, tokens = [], {}
    for r in range(runs):
        for p in groups:
            cells = [c for c in plan.cells if c.prompt == p]
            extra = [ref] if ref is not None and ref not in cells else []
            results = {}
            streams = {}
            for c in cells + extra:
                session = sessions["reference" if c in extra else c.mode]
                mode = plan.modes[c.mode]
                streams[c] = _tracked(results, c, stream_run(model, tokenizer, plan.prompts[c.prompt].ids,
                                                             mode.eviction, sampling, max_new_tokens, session=session,
                                                             calibration=calib[mode.name]))
            for _ in interleave(streams):
                pass
            for c in cells + extra:
                entry = raw_run(results[c], r, c, plan.modes[c.mode].name)
                entry["metrics"]["rss_delta_mb"] = None  # the runs overlapped: no delta is one run's own
                entry["group"] = p
                raw.append(entry)
                tokens.setdefault(c, results[c].token_ids)
                if progress is not None:
                    progress.update(1)
    return raw, tokens


def _tracked(results: dict, key, stream):
    for _, _, result in stream:
        results[key] = result
        yield
