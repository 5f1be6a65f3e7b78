"""soak: many A/B comparisons in one process, as the web page runs them; fails if resident memory
grows more than --limit-mb after warm-up, or if an infer request is left open."""
import json
import sys

from .common import (add_eviction_args, add_model_args, add_sampling_args, check_budgets, eviction_from,
                     open_model, positive_int, sampling_from)


def add_parser(sub):
    p = sub.add_parser("soak", help="many A/B comparisons in one process: does memory stay flat?",
                       description="Run --warmup, then --runs comparisons (baseline and pruned, interleaved, plus the "
                                   "table, plots and eviction view the page computes), prompts in turn. Prints RSS "
                                   "after warm-up and at the end; exits 1 if it grew more than --limit-mb or an "
                                   "infer request was not freed.")
    add_model_args(p)
    add_eviction_args(p)
    add_sampling_args(p)
    p.add_argument("--runs", type=positive_int, default=50, help="comparisons measured after warm-up (default 50)")
    p.add_argument("--warmup", type=positive_int, default=5, help="comparisons before the first reading (default 5)")
    p.add_argument("--limit-mb", type=float, default=50.0, help="largest RSS growth that passes (default 50)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--prompts", default=None, help="one prompt a line (default: the page's one-line example prompts)")
    src.add_argument("--prompt-tokens", type=positive_int, nargs="+", default=None, metavar="N",
                     help="prompts of exactly N tokens each (the first N of the shipped text sample, no chat "
                          "template), taken in turn: long prompts, e.g. --prompt-tokens 1500 3000")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    return "soak"


def run(args):
    from ..bench.plan import context_prompts, read_prompts
    from ..web.choices import example_prompts
    from ..bench.soak import soak
    eviction, sampling = eviction_from(args), sampling_from(args)
    if args.runs < 1:
        raise ValueError("runs must be at least 1")
    if not args.limit_mb >= 0:
        raise ValueError(f"--limit-mb must be a number >= 0, got {args.limit_mb}")
    model, tok = open_model(args)
    if args.prompt_tokens:
        prompts = [p.ids for p in context_prompts(tok, args.prompt_tokens, args.max_new_tokens,
                                                  model.info.max_context)]
    else:
        # The page's short examples: its long passages would grow OpenVINO's buffers once, after a
        # warm-up of short ones, and read as growth; long prompts are soaked with --prompt-tokens.
        prompts = read_prompts(args.prompts) if args.prompts else [p for p in example_prompts() if "\n" not in p]
    check_budgets(model, [eviction])
    total = args.warmup + args.runs

    def progress(i, pair, rss):
        phase = "warm-up" if i < args.warmup else "run"
        print(f"{phase} {i + 1}/{total}: {len(pair.baseline.token_ids)} + {len(pair.pruned.token_ids)} tokens, "
              f"RSS {rss:.1f} MB", file=sys.stderr)
    result = soak(model, tok, prompts, eviction, sampling, args.max_new_tokens, args.runs, args.warmup,
                  args.limit_mb, chat=not args.no_chat_template, on_run=progress)
    print(json.dumps(result.as_dict()) if args.json else result.summary())
    return 0 if result.ok else 1
