"""infer: one prompt, streamed to the terminal, then a metrics summary (or one JSON object).
With --compare, the full-cache baseline and the pruned run go interleaved token by token (as on the
page); both texts, the page's table, its verdict on speed (a direction only when the paired interval
excludes 0) and the quality cost follow. With several --policy (or --evict) values, --compare runs the
arena (web/arena.py): the baseline and every pruned run in turn, then every text and the leaderboard;
--report FILE writes the arena as one HTML page (FILE ending in .html) or JSON (.json)."""
import json
import sys

from ..core.metrics import peak_rss_mb
from .common import add_eviction_args, add_model_args, add_sampling_args, eviction_from, open_model, sampling_from


def add_parser(sub):
    p = sub.add_parser("infer", help="generate for one prompt with KV pruning",
                       description="Generate for one prompt with the chosen eviction policy and mechanism.")
    add_model_args(p)
    p.add_argument("--prompt", required=True, help="the prompt text")
    add_eviction_args(p, multi=True)
    p.set_defaults(policy=None, evict=None)  # a --preset fills what is not given
    add_sampling_args(p)
    p.add_argument("--compare", action="store_true",
                   help="also run the baseline (full cache), interleaved with the pruned run token by token; print "
                        "both texts, a metrics table with a Change row, the verdict on speed, and how much "
                        "pruning changed the output")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of streaming text")
    p.add_argument("--report", metavar="FILE", default=None,
                   help="with --compare: write the comparison (every output, the leaderboard, the plots, the eviction "
                        "views, settings and versions) as one self-contained HTML page (FILE.html) or JSON (FILE.json)")
    return "infer"


def _peak() -> str:
    peak = peak_rss_mb()
    return "" if peak is None else f" | peak RSS {peak:.0f} MB (the process)"


def run(args):
    from ..core.engine import check_request
    from ..core.runner import check_runnable
    from ..core.inputs import prompt_ids as encode
    from ..policies import get_policy
    policies, evicts = args.policy or [None], args.evict or [None]
    if len(policies) > 1 or len(evicts) > 1 or args.report:
        return _arena(args, policies, evicts)
    eviction, sampling = eviction_from(args, policies[0], evicts[0]), sampling_from(args)
    policy = get_policy(eviction.policy)
    if policy.mechanism is not None and args.evict:
        raise ValueError(f"--evict does not apply to {eviction.policy}: it evicts with its own mechanism "
                         f"({eviction.evict})")
    if args.compare and not eviction.prunes:
        raise ValueError("--compare needs a pruning --policy (the baseline already is policy none)")
    if not args.prompt.strip():  # before the model is loaded
        raise ValueError("the prompt is empty")
    model, tok = open_model(args)
    prompt_ids = encode(tok, args.prompt, model.info.max_context, chat=not args.no_chat_template)
    check_request(model.info, len(prompt_ids), eviction, args.max_new_tokens)
    check_runnable(model, eviction)
    if args.compare:
        return _compare(args, model, tok, prompt_ids, eviction, sampling)
    from ..core.runs import run as run_once
    stream = None if args.json else (lambda piece: (sys.stdout.write(piece), sys.stdout.flush()))
    result = run_once(model, tok, prompt_ids, eviction, sampling, args.max_new_tokens, on_text=stream,
                      calibration=policy.prepare(model.info.model_dir))
    m = result.metrics
    if args.json:
        out = {"text": result.text, "token_ids": result.token_ids, "prompt_tokens": len(prompt_ids),
               "eviction": eviction.as_dict(), "device": model.device, "metrics": m.as_dict(),
               "peak_rss_mb": peak_rss_mb(), **({"used": result.used} if result.used else {})}
        print(json.dumps(out))
        return 0
    from .notes import run_note
    note = run_note(m, eviction)
    prunes = ("prune events not reported" if m.prune_events is None else
              f"prune events {m.prune_events} ({m.prune_time_s * 1000:.1f} ms)")
    print(f"\n\n--- {m.new_tokens} tokens | TTFT {m.ttft_s * 1000:.1f} ms | TPOT {m.tpot_ms:.1f} ms (median) | "
          f"{m.throughput_tok_s:.1f} tok/s | KV max {m.kv_tokens_max} tokens ({m.kv_bytes_max / 2**20:.2f} MiB) | "
          f"{prunes}{_peak()}", file=sys.stderr)
    if result.describe():
        print(result.describe(), file=sys.stderr)
    if note:
        print(note, file=sys.stderr)
    return 0


def _compare(args, model, tok, prompt_ids, eviction, sampling):
    """The page's comparison in a terminal: both runs interleaved token by token (ab.Pair), then
    both texts, the page's table and the quality cost."""
    from ..web.ab import Pair
    from ..web.pagetext import pair_headline
    from ..core.quality import first_divergence
    from ..core.tables import describe_divergence, markdown, quality_columns
    pair = Pair(model, tok, prompt_ids, eviction, sampling, args.max_new_tokens, own_peak=True)
    for _ in pair.steps():
        pass
    quality = pair.measure_quality()
    b, p, figures = pair.baseline, pair.pruned, pair.pair_figures()
    if args.json:
        speed = None if figures.change is None else figures.change.as_dict()
        out = {"text": p.text, "token_ids": p.token_ids, "prompt_tokens": len(prompt_ids),
               "eviction": eviction.as_dict(), "device": model.device, "metrics": p.metrics.as_dict(),
               "baseline": {"text": b.text, "token_ids": b.token_ids, "metrics": b.metrics.as_dict()},
               "quality": quality.as_dict(), "compared_tokens": figures.tokens, "tpot_change": speed,
               "peak_rss_mb": pair.peak_mb if pair.peak_mb is not None else peak_rss_mb(),
               **({"used": p.used} if p.used else {})}
        print(json.dumps(out))
        return 0
    name = f"{eviction.policy}/{eviction.evict}, budget {eviction.budget}"
    print(f"=== baseline (full cache) ===\n{b.text}\n\n=== {name} ===\n{p.text}\n")
    div = describe_divergence(first_divergence(b.token_ids, p.token_ids), tok, finished=True)
    print(markdown(b.metrics, p.metrics, figures, eviction.policy, {"Outputs diverge at": div,
                                                                     **quality_columns(quality)}, pair.peak_mb))
    print(pair_headline(pair))
    if quality.delta_nll is None:
        print("ΔNLL, PPL ratio, top-1 agreement (forced): not available (this policy cannot be fed the baseline's "
              "tokens)")
    if p.describe():
        print(p.describe())
    from .notes import run_note
    note = run_note(p.metrics, eviction)
    if note:
        print(note)
    return 0


def _arena(args, policies, evicts):
    """The page's arena in a terminal: the baseline and every pruned run in turn, then every text, the
    leaderboard and the headline; --report writes it all to one file."""
    from ..core.answers import expected_for
    from ..core.inputs import prompt_ids as encode
    from ..core.tables import LEADERBOARD, leaderboard_rows, table
    from ..web.arena import Arena, check_arena, label
    from ..web.arenareport import record, write
    if not args.compare:
        raise ValueError("several policies, or --report, need --compare (they run against the baseline)")
    if args.report and not args.report.lower().endswith((".html", ".htm", ".json")):
        raise ValueError(f"--report FILE ends in .html or .json, got {args.report!r}")
    evictions = {}
    for p in policies:
        for ev in evicts:
            e = eviction_from(args, p, ev)
            evictions.setdefault(label(e), e)  # a policy with its own mechanism runs once
    check_arena(list(evictions.values()))
    if not args.prompt.strip():
        raise ValueError("the prompt is empty")
    model, tok = open_model(args)
    prompt_ids = encode(tok, args.prompt, model.info.max_context, chat=not args.no_chat_template)
    arena = Arena(model, tok, prompt_ids, evictions.values(), sampling_from(args), args.max_new_tokens,
                  expected=expected_for(args.prompt), own_peak=True)
    for _ in arena.steps():
        pass
    arena.measure_quality()
    rec = record(arena, args.prompt)
    if args.report:
        write(args.report, rec)
    if args.json:
        print(json.dumps(rec, ensure_ascii=False))
        return 0
    for name, side in arena.sides.items():
        print(f"=== {name} ===\n{side.text}\n")
    print(table(LEADERBOARD, leaderboard_rows(arena.standings()), left=2))
    print(arena.headline())
    if args.report:
        print(f"report written to {args.report}")
    return 0
