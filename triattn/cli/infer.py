"""infer: one prompt, streamed to the terminal, then a metrics summary (or one JSON object)."""
import json
import sys

from .common import (add_eviction_args, add_model_args, add_sampling_args, eviction_from, open_model,
                     sampling_from)


def add_parser(sub):
    p = sub.add_parser("infer", help="generate for one prompt with KV pruning",
                       description="Generate for one prompt with the chosen eviction policy and mechanism.")
    add_model_args(p)
    p.add_argument("--prompt", required=True, help="the prompt text")
    add_eviction_args(p)
    add_sampling_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of streaming text")
    return "infer"


def run(args):
    from ..runs import run as run_once
    from ..text import encode_prompt
    eviction, sampling = eviction_from(args), sampling_from(args)
    model, tok = open_model(args)
    prompt_ids = encode_prompt(tok, args.prompt, chat=not args.no_chat_template)
    stream = None if args.json else (lambda piece: (sys.stdout.write(piece), sys.stdout.flush()))
    result = run_once(model, tok, prompt_ids, eviction, sampling, args.max_new_tokens, on_text=stream)
    m = result.metrics
    if args.json:
        out = {"text": result.text, "token_ids": result.token_ids, "prompt_tokens": len(prompt_ids),
               "eviction": eviction.as_dict(), "device": model.device, "metrics": m.as_dict()}
        print(json.dumps(out))
        return 0
    print(f"\n\n--- {m.new_tokens} tokens | TTFT {m.ttft_s * 1000:.1f} ms | TPOT {m.tpot_ms:.1f} ms (median) | "
          f"{m.throughput_tok_s:.1f} tok/s | KV max {m.kv_tokens_max} tokens ({m.kv_bytes_max / 2**20:.2f} MiB) | "
          f"prune events {m.prune_events} ({m.prune_time_s * 1000:.1f} ms) | RSS {m.rss_delta_mb:+.1f} MB",
          file=sys.stderr)
    return 0
