"""bench: the model card's benchmark (baseline vs pruned modes, averaged over prompts and runs),
or, with --context-lengths, TPOT against context length. Prints tables and writes a JSON file."""
import json
import sys
from pathlib import Path

from .common import (add_eviction_args, add_model_args, add_sampling_args, check_budgets, check_output_file,
                     fill_eviction_defaults, open_model, positive_int, progress_bar, sampling_from)


def add_parser(sub):
    p = sub.add_parser("bench", help="baseline vs pruned modes: latency, TPOT, throughput, memory, quality",
                       description="Time one baseline and every --policy x --evict mode over the prompts, in "
                                   "interleaved runs after untimed warm-ups; quality is measured once per prompt "
                                   "and mode. Prints the model card's two tables and writes every run to JSON.")
    add_model_args(p)
    add_eviction_args(p, multi=True)
    add_sampling_args(p)
    p.add_argument("--runs", type=positive_int, default=3, help="timed runs per prompt and mode (default 3)")
    p.add_argument("--prompts", default=None,
                   help="file with one prompt a line (default: the model card's three, assets/prompts/card.txt)")
    p.add_argument("--context-lengths", type=positive_int, nargs="+", metavar="N",
                   help="instead of prompts: contexts of exactly N tokens from the shipped text sample; "
                        "reports TPOT per length, its ratio to the baseline and to the baseline at context = budget")
    p.add_argument("--with-card", action="store_true",
                   help="also run the model card's own configuration (knorm-seed rule, K/V zeroing, pruning at "
                        "every step, no sinks) in the same interleaved runs")
    p.add_argument("--output", default="results.json", help="JSON file for every run (default results.json)")
    return "bench"


def run(args):
    fill_eviction_defaults(args)
    from .. import bench, report
    if args.runs < 1:
        raise ValueError("runs must be at least 1")
    sampling = sampling_from(args)
    modes = bench.make_modes(args.policy, args.evict, [args.budget], args.recent_window, args.sink_tokens,
                             args.prune_interval, args.genai_aggregation, with_card=args.with_card)
    texts = None if args.context_lengths else bench.read_prompts(args.prompts or bench.CARD_PROMPTS)
    check_output_file(args.output)
    model, tok = open_model(args)
    check_budgets(model.info, [m.eviction for m in modes])
    budget_prompt = None
    if args.context_lengths:
        lengths = list(dict.fromkeys(args.context_lengths))
        prompts = bench.context_prompts(tok, lengths, args.max_new_tokens, model.info.max_context)
        extra = None
        if args.budget in lengths:
            budget_prompt = lengths.index(args.budget)
        else:
            extra = bench.context_prompts(tok, [args.budget], args.max_new_tokens, model.info.max_context)[0]
            budget_prompt = len(lengths)
        plan = bench.context_plan(prompts, modes, extra)
    else:
        plan = bench.prompt_plan(bench.text_prompts(tok, texts, chat=not args.no_chat_template), modes)

    result = bench.benchmark(model, tok, plan, sampling, args.max_new_tokens, args.runs, bar=progress_bar)
    summary = report.summarize(result["runs"], result["quality"], [m.name for m in modes], len(plan.prompts))
    settings = {"runs": args.runs, "max_new_tokens": args.max_new_tokens, "sampling": sampling.__dict__,
                "chat_template": not args.no_chat_template, "warmup": "one untimed run per mode, "
                f"{bench.WARMUP_TOKENS} tokens or up to its first prune event", "context_lengths": args.context_lengths}
    out = {"settings": settings, "machine": result["machine"], "modes": result["modes"],
           "prompts": result["prompts"], "summary": summary, "quality": result["quality"], "runs": result["runs"]}
    print(report.header_line(result["machine"]))
    if args.context_lengths:
        rows = report.context_rows(summary, lengths, result["modes"], budget_prompt,
                                   result["machine"]["kv_bytes_per_token"])
        ref = next(c["tpot_ms"] for c in summary["cells"] if c["prompt"] == budget_prompt and c["mode"] == "baseline")
        out["context"] = {"rows": rows, "budget": args.budget, "baseline_at_budget_tpot_ms": ref}
        print(f"\nTPOT vs context length ({args.runs} runs, {args.max_new_tokens} new tokens, medians)\n")
        print(report.context_table(rows, ref, args.budget))
    else:
        print(f"\nResults vs baseline ({len(plan.prompts)} prompts x {args.runs} runs, {args.max_new_tokens} "
              f"new tokens)\n")
        print(report.mode_table(summary))
        print("\nPer-prompt detail\n")
        print(report.prompt_table(summary, [p.label for p in plan.prompts]))
    Path(args.output).write_text(json.dumps(out, indent=1))
    print(f"\nwrote {args.output}", file=sys.stderr)
    return 0
