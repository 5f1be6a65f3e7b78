"""sweep: quality and speed over KV budgets x policies (x mechanisms), as CSV, JSON and PNG plots."""
import sys
from pathlib import Path

from .common import (add_genai_args, add_keep_prompt_arg, add_model_args, add_sampling_args, check_budgets,
                     check_output_file,
                     open_model, positive_int, progress_bar, sampling_from)


def add_parser(sub):
    from ..core.config import MECHANISMS
    from ..policies import pruning_policies
    pruning = pruning_policies()
    p = sub.add_parser("sweep", help="quality and TPOT over a grid of budgets x policies, with plots",
                       description="Every budget x policy x mechanism is compared with one baseline over the "
                                   "prompts (interleaved runs, untimed warm-ups); writes sweep.csv, sweep.json, "
                                   "quality.png and tpot.png.")
    add_model_args(p)
    p.add_argument("--budgets", type=positive_int, nargs="+", default=[32, 64, 128], metavar="N",
                   help="KV budgets in tokens (default 32 64 128)")
    p.add_argument("--policies", nargs="+", choices=pruning, default=["knorm", "knorm-seed", "streaming"],
                   help="eviction policies (default knorm knorm-seed streaming)")
    p.add_argument("--evict", nargs="+", choices=list(MECHANISMS), default=["hard"],
                   help="mechanisms (default hard)")
    p.add_argument("--recent-window", type=positive_int, default=16,
                   help="newest tokens always kept (default 16, so that a budget of 32 leaves room to choose)")
    p.add_argument("--sink-tokens", type=positive_int, default=4, help="first tokens always kept (default 4)")
    p.add_argument("--prune-interval", type=positive_int, default=None,
                   help="tokens the cache may grow past the budget before it is cut back (default max(16, budget // 8))")
    add_keep_prompt_arg(p)
    add_genai_args(p)
    add_sampling_args(p)
    p.add_argument("--runs", type=positive_int, default=1, help="timed runs per prompt and configuration (default 1)")
    p.add_argument("--prompts", default=None, help="one prompt a line (default: assets/prompts/card.txt)")
    p.add_argument("--output", default="out/sweep", help="output folder (default out/sweep)")
    p.add_argument("--title", default=None, help="plot title (default: model folder, device, prompts, tokens)")
    p.add_argument("--agreement-steps", type=positive_int, default=16, metavar="N",
                   help="paged form: at each point a policy would cut, compare its top k with the attention "
                        "of the next N decode steps of a full-cache run (default 16)")
    p.add_argument("--agreement-plot", default=None, metavar="PNG",
                   help="also write the agreement figure here (it is always in the output folder)")
    return "sweep"


def run(args):
    from ..bench import plan as bench
    from ..bench.sweep import rows_table, run_sweep
    if args.runs < 1:
        raise ValueError("runs must be at least 1")
    sampling = sampling_from(args)
    modes = bench.make_modes(args.policies, args.evict, args.budgets, args.recent_window, args.sink_tokens,
                             args.prune_interval, args.genai_aggregation, keep_prompt=bool(args.keep_prompt))
    texts = bench.read_prompts(args.prompts or bench.CARD_PROMPTS)
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output {out} exists and is not a folder")
    model, tok = open_model(args)
    check_budgets(model, [m.eviction for m in modes])
    if args.agreement_plot:
        check_output_file(args.agreement_plot)
    res = run_sweep(model, tok, texts, modes, sampling, args.max_new_tokens, args.runs, out,
                    chat=not args.no_chat_template, bar=progress_bar, title=args.title,
                    agreement_steps=args.agreement_steps, agreement_plot=args.agreement_plot)
    print(rows_table(res["rows"]))
    if res["note"]:
        print(res["note"], file=sys.stderr)
    for f in res["files"]:
        print(f"wrote {f}", file=sys.stderr)
    return 0
