"""prune-bench: the time of one prune event (score + select + compaction of the host mirror) at
gpt-oss-20b shapes, with synthetic keys, against its targets."""
import json
import sys
from pathlib import Path

from .common import positive_int


def add_parser(sub):
    from ..bench.prunebench import TARGETS
    p = sub.add_parser("prune-bench", help="time one prune event at gpt-oss-20b shapes (no model needed)",
                       description="Score, select and compact a synthetic cache shaped like gpt-oss-20b's (24 "
                                   "layers, 64 query heads, 8 KV heads, head_dim 64, YaRN RoPE) of budget + 128 "
                                   "tokens back to the budget, as a prune event does; prints the medians next to "
                                   "the targets (" + ", ".join(f"<= {1e3 * t:.0f} ms at {n}" for n, t in
                                                              TARGETS.items()) + " tokens).")
    p.add_argument("--policy", nargs="+", default=["triattention", "triattention-head", "snapkv", "h2o"],
                   help="scoring policies, one table each (default triattention triattention-head snapkv h2o)")
    p.add_argument("--tokens", type=positive_int, nargs="+", default=list(TARGETS), metavar="N",
                   help="cached tokens at the event (default " + " ".join(map(str, TARGETS)) + ")")
    p.add_argument("--repeats", type=positive_int, default=7,
                   help="events timed per size, the sizes taking turns (default 7)")
    p.add_argument("--output", default="prune-bench.json",
                   help="JSON file for every figure and every event's times (default prune-bench.json)")
    return "prune-bench"


def run(args):
    from ..policies import get_policy
    from ..bench.prunebench import INTERVAL, run, table
    for name in args.policy:
        policy = get_policy(name)
        if not policy.prunes or policy.runtime != "loop":
            raise ValueError(f"policy {name!r} does not score tokens in our decode loop")
    if args.repeats < 1 or min(args.tokens) <= 2 * INTERVAL:
        raise ValueError(f"give --repeats >= 1 and --tokens above {2 * INTERVAL}")
    from .common import check_output_file
    check_output_file(args.output)
    results = []
    for name in args.policy:
        result = run(name, args.tokens, args.repeats)
        axis = "per KV head" if get_policy(name).per_kv_head else "per layer"
        print(f"prune event, {name} ({axis}), gpt-oss-20b shapes, synthetic keys, hard compaction of the host "
              f"K/V mirror, float32 keys; medians of {args.repeats} with their interval; load average "
              f"{result['load_average']:.2f}\n")
        print(table(result) + "\n")
        results.append(result)
    Path(args.output).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.output}", file=sys.stderr)
    return 0
