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
    p.add_argument("--runs", type=positive_int, default=5,
                   help="timed runs per prompt and mode, alternating (default 5: the fewest whose min..max is a "
                        "94%% interval for the median)")
    p.add_argument("--prompts", default=None,
                   help="file with one prompt a line (default: the model card's three, assets/prompts/card.txt)")
    p.add_argument("--context-lengths", type=positive_int, nargs="+", metavar="N",
                   help="instead of prompts: contexts of exactly N tokens from the shipped text sample; "
                        "reports TPOT per length, its ratio to the baseline and to the baseline at context = budget")
    p.add_argument("--with-card", action="store_true",
                   help="also run the model card's own configuration (knorm-seed rule, K/V zeroing, pruning at "
                        "every step, no sinks) in the same interleaved runs")
    from ..bench.plan import INTERLEAVE
    p.add_argument("--interleave", choices=list(INTERLEAVE), default="runs",
                   help="how modes alternate (default runs): " + "; ".join(f"{k}: {v}" for k, v in INTERLEAVE.items()))
    p.add_argument("--plot", default=None, metavar="PNG",
                   help="with --context-lengths: draw TPOT against context length (baseline, pruned modes, "
                        "baseline at context = budget) to this PNG file")
    p.add_argument("--targets", action="store_true",
                   help="check the performance targets in one run: the card scenario (budget 128, recent 32, "
                        "200 tokens) and a 2048-token context (budget 256, 100 tokens), one --policy with hard "
                        "compaction at the default interval; prints each figure, its target and whether it is met")
    p.add_argument("--vs-genai", action="store_true",
                   help="time our full-cache baseline against OpenVINO GenAI's LLMPipeline on the same model, device "
                        "and precision, whole runs alternating, on the card's first prompt and a 2,000-token "
                        "context (or --context-lengths); prints TTFT and TPOT medians, their ratios and targets")
    p.add_argument("--arena", action="store_true",
                   help="TPOT of the first --policy (hard eviction, --budget) in an arena of five runs against the "
                        "same run in an A/B pair, alternating over --runs repeats (at least 5); prints the median "
                        "ratio, its interval and the target (within 5%%)")
    p.add_argument("--output", default="results.json", help="JSON file for every run (default results.json)")
    return "bench"


def run(args):
    if args.arena:
        return run_arena(args)
    if args.vs_genai:  # first: it refuses --targets, which would otherwise run instead
        return run_vs_genai(args)
    if args.targets:
        return run_targets(args)
    fill_eviction_defaults(args)
    from ..bench import plan as bench
    from ..bench import report
    if args.runs < 1:
        raise ValueError("runs must be at least 1")
    sampling = sampling_from(args)
    modes = bench.make_modes(args.policy, args.evict, [args.budget], args.recent_window, args.sink_tokens,
                             args.prune_interval, args.genai_aggregation, with_card=args.with_card,
                             keep_prompt=args.keep_prompt)
    texts = None if args.context_lengths else bench.read_prompts(args.prompts or bench.CARD_PROMPTS)
    check_output_file(args.output)
    if args.plot is not None:
        if not args.context_lengths:
            raise ValueError("--plot draws the long-context runs: give --context-lengths too")
        check_output_file(args.plot)
    model, tok = open_model(args)
    check_budgets(model, [m.eviction for m in modes])
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
        plan = bench.context_plan(prompts, modes, extra, budget_prompt)
    else:
        plan = bench.prompt_plan(bench.text_prompts(tok, texts, chat=not args.no_chat_template), modes)

    result = bench.benchmark(model, tok, plan, sampling, args.max_new_tokens, args.runs, bar=progress_bar,
                             interleave=args.interleave)
    summary = report.summarize(result["runs"], result["quality"], [m.name for m in modes], len(plan.prompts))
    settings = {"runs": args.runs, "max_new_tokens": args.max_new_tokens, "sampling": sampling.__dict__,
                "chat_template": not args.no_chat_template, "interleave": args.interleave,
                "warmup": "one untimed run per mode, "
                f"{bench.WARMUP_TOKENS} tokens or up to its first prune event", "context_lengths": args.context_lengths}
    out = {"settings": settings, "machine": result["machine"], "modes": result["modes"],
           "prompts": result["prompts"], "summary": summary, "quality": result["quality"], "runs": result["runs"]}
    print(report.header_line(result["machine"]))
    if args.context_lengths:
        rows = report.context_rows(summary, lengths, result["modes"], budget_prompt,
                                   result["machine"]["kv_bytes_per_token"],
                                   report.paired_refs(result["runs"], budget_prompt))
        report.context_spreads(rows, result["runs"], lengths, modes[0].name, budget_prompt)
        ref = next(c["tpot_ms"] for c in summary["cells"] if c["prompt"] == budget_prompt and c["mode"] == "baseline")
        out["context"] = {"rows": rows, "budget": args.budget, "baseline_at_budget_tpot_ms": ref}
        print(f"\nTPOT vs context length ({args.runs} runs, {args.max_new_tokens} new tokens, medians)\n")
        print(report.context_table(rows, args.budget))
        if args.plot is not None:
            from ..bench.perfplot import plot_context
            m = result["machine"]
            title = (f"{Path(m['model_dir']).name} ({m['model_type']}), {m['device']} {m['precision']} precision, "
                     f"{args.runs} runs, {args.max_new_tokens} new tokens")
            print(f"wrote {plot_context(rows, args.budget, title, args.plot)}", file=sys.stderr)
    else:
        print(f"\nResults vs baseline ({len(plan.prompts)} prompts x {args.runs} runs, {args.max_new_tokens} "
              f"new tokens)\n")
        print(report.mode_table(summary))
        from .notes import bench_notes
        for note in bench_notes(summary, {m.name: m.eviction.budget for m in modes}):
            print(note)
        print("\nPer-prompt detail\n")
        print(report.prompt_table(summary, [p.label for p in plan.prompts]))
    Path(args.output).write_text(json.dumps(out, indent=1))
    print(f"\nwrote {args.output}", file=sys.stderr)
    return 0


FIXED_BY_TARGETS = ("preset", "budget", "recent_window", "prune_interval", "context_lengths", "prompts")


def run_targets(args):
    from ..bench import report
    from ..bench import targets
    from ..policies import get_policy
    given = [f"--{a.replace('_', '-')}" for a in FIXED_BY_TARGETS if getattr(args, a) is not None]
    if args.with_card or args.evict != ["hard"] or len(args.policy) != 1 or given:
        raise ValueError("--targets runs fixed scenarios with hard compaction and one --policy; drop "
                         + (", ".join(given) if given else "--with-card / --evict / extra policies"))
    if not get_policy(args.policy[0]).prunes:
        raise ValueError("--targets needs a pruning --policy")
    check_output_file(args.output)
    sampling = sampling_from(args)
    model, tok = open_model(args)
    sinks = 4 if args.sink_tokens is None else args.sink_tokens
    out = targets.run(model, tok, sampling, args.runs, args.policy[0], sinks, chat=not args.no_chat_template,
                      bar=progress_bar)
    print(report.header_line(out["card"]["machine"]))
    c, long = targets.CARD, targets.LONG
    print(f"\nPerformance targets ({args.policy[0]}/hard, {args.runs} runs each, {out['card']['machine']['precision']} "
          f"precision; medians of each round's ratio with their interval; card scenario: "
          f"{len(out['card']['prompts'])} prompts, {c['max_new_tokens']} new tokens, budget {c['budget']}, recent "
          f"{c['recent_window']}; long: {long['context']} tokens, {long['max_new_tokens']} new tokens, budget "
          f"{long['budget']})\n")
    print(targets.table(out["figures"]))
    print("\nCard scenario\n")
    print(report.mode_table(out["card"]["summary"]))
    print("\nLong context\n")
    print(report.context_table(out["long"]["context_rows"], long["budget"]))
    settings = {"runs": args.runs, "sampling": sampling.__dict__, "chat_template": not args.no_chat_template,
                "interleave": "steps", "card": c, "long": long, "limits": targets.LIMITS}
    Path(args.output).write_text(json.dumps({"settings": settings, **out}, indent=1, default=str))
    print(f"\nwrote {args.output}", file=sys.stderr)
    return 0




def run_vs_genai(args):
    from ..bench import plan as bench
    from ..bench import vsgenai
    from ..bench.report import header_line
    if args.targets or args.with_card or args.plot is not None:
        raise ValueError("--vs-genai times the baseline only: drop --targets, --with-card and --plot")
    check_output_file(args.output)
    model, tok = open_model(args)
    prompts = vsgenai.prompts(tok, model.info.max_context, args.max_new_tokens, not args.no_chat_template,
                              args.prompts, args.context_lengths)
    bar = progress_bar(total=2 * args.runs * len(prompts), desc="runs")
    rows = vsgenai.compare(model, prompts, args.max_new_tokens, args.runs, bar)
    bar.close()
    machine = bench.machine_info(model)
    print(header_line(machine))
    print(f"\nOur baseline vs OpenVINO GenAI LLMPipeline ({args.runs} runs each, alternating, up to "
          f"{args.max_new_tokens} new tokens, greedy, {machine['precision']} precision for both; medians of each "
          f"round's ratio ours / GenAI with their interval)\n")
    lim = vsgenai.LIMITS
    print(vsgenai.table(rows))
    Path(args.output).write_text(json.dumps({"machine": machine, "limits": lim, "rows": rows},
                                            indent=1))
    print(f"\nwrote {args.output}", file=sys.stderr)
    return 0


def run_arena(args):
    """bench --arena: bench/arena.py, on the card's first prompt (or the first of --prompts)."""
    fill_eviction_defaults(args)
    from ..bench import arena, plan
    from ..core.inputs import prompt_ids
    model, tok = open_model(args)
    text = plan.read_prompts(args.prompts or plan.CARD_PROMPTS)[0]
    cfgs = arena.configs(args.policy[0], args.budget, args.recent_window, args.sink_tokens)
    res = arena.run(model, tok, prompt_ids(tok, text, model.info.max_context), cfgs, args.max_new_tokens,
                    max(args.runs, 5))
    print(arena.describe(res, len(cfgs) + 1, args.max_new_tokens))
    Path(args.output).write_text(json.dumps(res, indent=1))
    return 0
