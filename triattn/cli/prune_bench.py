"""prune-bench: the time of one prune event (score + select + compaction of the cache, on the paged
pool by default or the stateful form's host mirror) at gpt-oss-20b shapes, with synthetic keys,
against its targets."""
import json
import sys
from pathlib import Path

from .common import positive_int


def add_parser(sub):
    from ..bench.prunebench import SIZES, TARGETS
    targets = "; ".join(f"{form}: " + ", ".join(f"<= {1e3 * t:.0f} ms at {n}" for n, t in by_size.items())
                        for form, by_size in TARGETS.items())
    p = sub.add_parser("prune-bench", help="time one prune event at gpt-oss-20b shapes (no model needed)",
                       description="Score, select and compact a synthetic cache shaped like gpt-oss-20b's (24 "
                                   "layers, 64 query heads, 8 KV heads, head_dim 64, YaRN RoPE) of budget + 128 "
                                   "tokens back to the budget, as a prune event does; prints the medians next to "
                                   f"the targets ({targets} tokens).")
    p.add_argument("--policy", nargs="+", default=["triattention", "triattention-head", "snapkv", "h2o"],
                   help="scoring policies, one table each (default triattention triattention-head snapkv h2o)")
    p.add_argument("--tokens", type=positive_int, nargs="+", default=list(SIZES), metavar="N",
                   help="cached tokens at the event (default " + " ".join(map(str, SIZES)) + ")")
    p.add_argument("--form", default="paged", choices=list(TARGETS),
                   help="the cache compacted: paged (default): the block pool of the paged form, as a paged run "
                        "cuts it; stateful: the host mirror of K and V the stateful form rewrites its states from")
    p.add_argument("--repeats", type=positive_int, default=7,
                   help="events timed per size, the sizes taking turns (default 7)")
    p.add_argument("--output", default="prune-bench.json",
                   help="JSON file for every figure and every event's times (default prune-bench.json)")
    return "prune-bench"


def run(args):
    from ..policies import get_policy
    from ..bench.prunebench import INTERVAL, run, table
    from ..core.metrics import peak_rss_mb
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
        result = run(name, args.tokens, args.repeats, form=args.form)
        axis = "per KV head" if get_policy(name).per_kv_head else "per layer"
        print(f"prune event, {name} ({axis}), gpt-oss-20b shapes, synthetic keys, {args.form} form: score + select + "
              f"{result['compaction']}, float32; medians of {args.repeats} with their interval; load average "
              f"{result['load_average']:.2f}\n")
        print(table(result) + "\n")
        results.append(result)
    pools = [(r["tokens"], r["pool_bytes"]) for r in results[0]["rows"] if "pool_bytes" in r]
    if pools:  # what a run at these widths holds: it must fit the machine
        peak = peak_rss_mb()
        print("pool (K and V, f32, whole blocks): " + ", ".join(f"{b / 2**20:.0f} MiB at {n} tokens" for n, b in pools)
              + ("" if peak is None else f"; this process peaked at {peak:.0f} MB resident"))
    Path(args.output).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.output}", file=sys.stderr)
    return 0
