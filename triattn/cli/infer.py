"""infer: one prompt, streamed to the terminal, then a metrics summary (or one JSON object).
With --compare, the full-cache baseline runs first and both are shown side by side, with quality."""
import json
import sys

from ..metrics import peak_rss_mb
from .common import (add_eviction_args, add_model_args, add_sampling_args, eviction_from, open_model,
                     positive_int, sampling_from)


def add_parser(sub):
    p = sub.add_parser("infer", help="generate for one prompt with KV pruning",
                       description="Generate for one prompt with the chosen eviction policy and mechanism.")
    add_model_args(p)
    p.add_argument("--prompt", required=True, help="the prompt text")
    add_eviction_args(p)
    add_sampling_args(p)
    p.add_argument("--compare", action="store_true",
                   help="run the baseline (full cache) first; print both texts, a metrics table with a Change "
                        "row, and how much pruning changed the output")
    p.add_argument("--prefill-chunk", type=positive_int, default=None, metavar="N",
                   help="prefill the prompt N tokens at a time (default: the engine's setting)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of streaming text")
    return "infer"


def _peak() -> str:
    peak = peak_rss_mb()
    return "" if peak is None else f" (process peak {peak:.0f} MB)"


def run(args):
    from ..bench import FULL
    from ..engine import check_request
    from ..policies import get_policy
    from ..inputs import prompt_ids as encode
    from ..runs import backend_for, run as run_once
    eviction, sampling = eviction_from(args), sampling_from(args)
    if args.evict is not None and get_policy(eviction.policy).backend is not None:
        raise ValueError(f"--evict does not apply to {eviction.policy}: it evicts with its own mechanism "
                         f"({eviction.evict})")
    if args.compare and not eviction.prunes:
        raise ValueError("--compare needs a pruning --policy (the baseline already is policy none)")
    if not args.prompt.strip():  # before the model is loaded
        raise ValueError("the prompt is empty")
    model, tok = open_model(args)
    prompt_ids = encode(tok, args.prompt, model.info.max_context, chat=not args.no_chat_template)
    check_request(model.info, len(prompt_ids), eviction, args.max_new_tokens)
    calibration = get_policy(eviction.policy).prepare(model.info.model_dir)
    stream = None if args.json else (lambda piece: (sys.stdout.write(piece), sys.stdout.flush()))
    base = None
    if args.compare:
        if not args.json:
            print("=== baseline (full cache) ===")
        base = run_once(model, tok, prompt_ids, FULL, sampling, args.max_new_tokens, on_text=stream)
        if not args.json:
            print(f"\n\n=== {eviction.policy}/{eviction.evict}, budget {eviction.budget} ===")
    chunk = {} if args.prefill_chunk is None or backend_for(eviction) else {"prefill_chunk": args.prefill_chunk}
    result = run_once(model, tok, prompt_ids, eviction, sampling, args.max_new_tokens, on_text=stream,
                      calibration=calibration, **chunk)
    m = result.metrics
    quality = None
    if base is not None:
        from ..quality import compare
        quality = compare(model.new_session(), prompt_ids, base.token_ids, result.token_ids, eviction, calibration)
    if args.json:
        out = {"text": result.text, "token_ids": result.token_ids, "prompt_tokens": len(prompt_ids),
               "eviction": eviction.as_dict(), "device": model.device, "metrics": m.as_dict(),
               "peak_rss_mb": peak_rss_mb()}
        if result.used:
            out["used"] = result.used
        if base is not None:
            out["baseline"] = {"text": base.text, "token_ids": base.token_ids, "metrics": base.metrics.as_dict()}
            out["quality"] = quality.as_dict()
        print(json.dumps(out))
        return 0
    used = backend_for(eviction).describe(result.used) if result.used else None
    from .notes import run_note
    note = run_note(m, eviction)
    if base is not None:
        from ..report import compare_table, quality_line
        print("\n")
        print(compare_table(base, result, f"{eviction.policy}/{eviction.evict}"))
        print(quality_line(quality.as_dict()))
        if used:
            print(used)
        if note:
            print(note)
        return 0
    prunes = ("prune events not reported" if m.prune_events is None else
              f"prune events {m.prune_events} ({m.prune_time_s * 1000:.1f} ms)")
    print(f"\n\n--- {m.new_tokens} tokens | TTFT {m.ttft_s * 1000:.1f} ms | TPOT {m.tpot_ms:.1f} ms (median) | "
          f"{m.throughput_tok_s:.1f} tok/s | KV max {m.kv_tokens_max} tokens ({m.kv_bytes_max / 2**20:.2f} MiB) | "
          f"{prunes} | RSS {m.rss_delta_mb:+.1f} MB{_peak()}", file=sys.stderr)
    if used:
        print(used, file=sys.stderr)
    if note:
        print(note, file=sys.stderr)
    return 0

