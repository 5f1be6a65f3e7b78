"""profile: per-phase time of a decode step, baseline vs pruned modes, at a given context length."""
from .common import add_eviction_args, add_model_args, fill_eviction_defaults, open_model, positive_int


def add_parser(sub):
    p = sub.add_parser("profile", help="where a decode step's time goes, baseline vs pruned",
                       description="Times input preparation, infer, output reads, pruning and the rest of the "
                                   "loop for every decode step; prompts are the first N tokens of the shipped text.")
    add_model_args(p)
    add_eviction_args(p, multi=True)
    p.add_argument("--context", type=positive_int, default=1024, help="prompt length in tokens (default 1024)")
    p.add_argument("--max-new-tokens", type=positive_int, default=100)
    p.add_argument("--runs", type=positive_int, default=2)
    return "profile"


def run(args):
    from ..bench import profile
    from ..bench.plan import context_prompts
    from ..core.config import EvictionConfig, full_cache
    fill_eviction_defaults(args)
    model, tok = open_model(args)
    prompt = context_prompts(tok, [args.context], args.max_new_tokens, model.info.max_context)[0].ids
    modes = {"baseline": full_cache()}
    for policy in args.policy:
        for evict in args.evict:
            modes[f"{policy}/{evict}"] = EvictionConfig(policy=policy, evict=evict, budget=args.budget,
                                                        recent_window=args.recent_window,
                                                        sink_tokens=args.sink_tokens, prune_interval=args.prune_interval)
    print(f"context {args.context}, {args.max_new_tokens} new tokens, {args.runs} runs, model {model.info.model_dir}")
    print(profile.table(profile.profile(model, prompt, modes, args.max_new_tokens, args.runs)))
