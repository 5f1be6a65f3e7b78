"""perf: every performance figure with its target, measured side by side in one run.

1. Our full-cache loop against OpenVINO GenAI's LLMPipeline on --model-dir, on its default
   paged-attention form and on the stateful model our loop runs (bench/vsgenai.py).
2. Long context on each --long-model: baseline against a pruned run that reads the prompt in
   pieces, cutting before each (bench/longctx.py), each run in a process of its own on the cache
   form of --form (paged by default); then where the prefill's time goes, whole against in pieces
   (bench/prefill.py).
3. --real-dims: gpt-oss-20b's widths, baseline and pruned at 2,048 and 8,192 tokens (no targets).
The report is printed by bench/perfreport.py and drawn by bench/perfplot.py (--plot), also from a
saved run (--from).
"""
import json
import sys
from pathlib import Path

from ..core.config import DEFAULT_PREFILL_CHUNK
from .common import add_model_args, check_output_file, open_model, positive_int, progress_bar


REAL_DIMS_CONTEXTS = (2048, 8192)


def add_parser(sub):
    p = sub.add_parser("perf", help="every performance figure next to its target, in one run",
                       description="Times our baseline against OpenVINO GenAI, then long-context pruning (chunked "
                                   "prefill with eviction) against the baseline on each --long-model, and the "
                                   "real-dims model; prints each figure, its target and whether it is met, with the "
                                   "physical floor beside the TPOT ratio. Medians over --runs alternating runs.")
    add_model_args(p)
    p.add_argument("--long-model", action="append", default=[], metavar="DIR",
                   help="a model for the long-context figures, repeatable (e.g. the two bench presets of "
                        "make-tiny-model); its maximum position must fit --context")
    p.add_argument("--real-dims", default=None, metavar="DIR",
                   help="a make-tiny-model --preset real-dims model: baseline and pruned at 2,048 and 8,192 tokens")
    p.add_argument("--context", type=positive_int, default=16384, help="long-context prompt tokens (default 16384)")
    p.add_argument("--budget", type=positive_int, default=2048, help="pruned runs' KV budget (default 2048)")
    p.add_argument("--chunk", type=positive_int, default=DEFAULT_PREFILL_CHUNK,
                   help=f"prefill piece in tokens (default {DEFAULT_PREFILL_CHUNK}, the pruned runs' default)")
    p.add_argument("--baseline-chunk", type=int, default=0, metavar="N",
                   help="read the long-context baselines in pieces of N tokens too (default 0: in one forward); "
                        "the same cache, with one piece's working memory, for a model whose whole-prompt "
                        "forward does not fit the machine")
    p.add_argument("--recent-window", type=positive_int, default=128,
                   help="newest tokens pruned runs always keep (default 128)")
    p.add_argument("--policy", default="triattention", help="the pruning policy (default triattention)")
    p.add_argument("--runs", type=positive_int, default=5,
                   help="alternating runs per mode (default 5: the fewest whose min..max is a 94%% interval)")
    p.add_argument("--max-new-tokens", type=positive_int, default=32, help="tokens per run (default 32)")
    p.add_argument("--skip-genai", action="store_true", help="leave out the comparison with GenAI")
    p.add_argument("--output", default="perf.json", help="JSON file for every figure (default perf.json)")
    p.add_argument("--from", dest="from_file", default=None, metavar="FILE",
                   help="print (and with --plot draw) the figures of a saved perf JSON instead of measuring")
    p.add_argument("--plot", default=None, metavar="PREFIX",
                   help="draw the figures as PNGs: PREFIX-genai.png, PREFIX-<long model>.png, PREFIX-real-dims.png")
    return "perf"


def _long(model_dir, setup, runs, precision, form, real_dims=False):
    from ..bench import longctx, perfreport
    from ..bench.probe import probe
    from ..core.calibration import CalibrationMissing, calibrate
    from ..policies import get_policy
    targets = not real_dims
    try:  # statistics the policy needs, made once before the timed processes
        get_policy(setup.policy).prepare(model_dir)
    except CalibrationMissing:
        print(f"{setup.policy}: measuring query statistics for {Path(model_dir).name} (once)", file=sys.stderr)
        calibrate(model_dir)
    n_runs = sum(runs if timed else 1 for _, _, timed in setup.modes().values())
    bar = progress_bar(total=n_runs + (1 if targets else 0), desc=Path(model_dir).name)
    got = longctx.measure(model_dir, setup, runs, precision, bar, form)
    section = {"setup": setup.__dict__, "modes": got, "figures": longctx.figures(got, setup, targets)}
    section["precision"], section["form"] = perfreport.precision_of(section), longctx.form_of(got)
    if targets:  # where the prefill's time goes: one forward whole against one piece, after the timed runs
        section["prefill"] = probe({"kind": "prefill", "model_dir": str(model_dir), "precision": precision,
                                    "form": form, "budget": setup.budget, "chunk": setup.chunk, "runs": runs})
        bar.update(1)
    bar.close()
    perfreport.print_long(perfreport.long_title(model_dir, setup.__dict__, runs, real_dims, section["precision"],
                                                section["form"]), section)
    return section


def _measure(args) -> dict:
    from ..bench import longctx, perfreport, vsgenai
    from ..bench.plan import machine_info
    from ..bench.report import header_line
    from ..openvino.model import read_info
    for d in args.long_model:
        if read_info(d).max_context < args.context + args.max_new_tokens:
            raise ValueError(f"{d} holds {read_info(d).max_context} positions, fewer than --context "
                             f"{args.context} + {args.max_new_tokens} new tokens")
    base = dict(budget=args.budget, chunk=args.chunk, policy=args.policy, max_new_tokens=args.max_new_tokens,
                recent_window=args.recent_window, baseline_chunk=args.baseline_chunk)
    setups = {d: longctx.LongSetup(context=args.context, **base) for d in args.long_model}
    if args.real_dims:
        setups.update({(args.real_dims, n): longctx.LongSetup(context=n, **{**base, "budget": min(args.budget, n // 2)})
                       for n in REAL_DIMS_CONTEXTS})
    for setup in setups.values():
        setup.check()
    model, tok = open_model(args)
    out = {"machine": machine_info(model), "runs": args.runs}
    print(header_line(out["machine"]))
    if not args.skip_genai:
        prompts = vsgenai.prompts(tok, model.info.max_context, args.max_new_tokens)
        bar = progress_bar(total=3 * args.runs * len(prompts), desc="vs GenAI")
        out["vs_genai"] = vsgenai.compare(model, prompts, args.max_new_tokens, args.runs, bar, stateful=True)
        bar.close()
        perfreport.print_genai(out["vs_genai"], perfreport.genai_title(args.runs, args.max_new_tokens, model.precision))
    out["long"] = {d: _long(d, setups[d], args.runs, args.precision, args.form) for d in args.long_model}
    if args.real_dims:
        out["real_dims_model"] = args.real_dims
        out["real_dims"] = {n: _long(args.real_dims, setups[(args.real_dims, n)], args.runs, args.precision,
                                     args.form, True)
                            for n in REAL_DIMS_CONTEXTS}
    return out


def _read_saved(path) -> dict:
    try:
        out = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read the perf results in {path}: {e}") from None
    if not isinstance(out, dict) or "machine" not in out:
        raise ValueError(f"{path} is not a file written by perf (no machine section)")
    return out


def run(args):
    from ..bench import perfplot, perfreport
    if args.plot:  # before a run of an hour, not after it
        check_output_file(f"{args.plot}-genai.png")
    if args.from_file:
        out = _read_saved(args.from_file)
        perfreport.refresh_figures(out)
        perfreport.print_all(out)
    else:
        check_output_file(args.output)
        out = _measure(args)
        Path(args.output).write_text(json.dumps(out, indent=1, default=str))
        print(f"\nwrote {args.output}", file=sys.stderr)
    if args.plot:
        for path in perfplot.plot_perf(out, args.plot):
            print(f"wrote {path}", file=sys.stderr)
    return 0
