"""eval: long-context accuracy of the baseline and each policy x budget on generated tasks of the
RULER kind (Hsieh et al. 2024), offline; a table, a JSON of every answer and a plot. Resumable."""
import shlex
import sys
from pathlib import Path

from .common import add_model_args, open_model, positive_int, progress_bar

DEFAULT_POLICIES = ["triattention", "knorm", "streaming", "ov-genai"]
DEFAULT_BUDGETS = [128, 256]
# 4,096 is not a default: on the 2-core machine this was made on, one full-cache prefill of 4,096
# tokens of the default model took about 20 s, ten times one of 1,024, and the grid with it would
# not end in 30 minutes (docs/evaluation.md, Time). Ask for it with --lengths.
DEFAULT_LENGTHS = [1024, 2048]
DEFAULT_SAMPLES = 5
# Enough for the answer after the answer prefix (a 7-digit number is 7-8 tokens here, a coded
# word 2-3), not for a digression: a longer answer only costs time.
MAX_NEW_TOKENS = {"niah_single": 16, "niah_multikey": 16, "niah_multivalue": 48, "niah_multiquery": 48,
                  "vt": 40, "fwe": 24}


def add_parser(sub):
    from ..core.config import PROMPT_SELECTIONS, EvictionConfig
    from ..eval.tasks import HAYSTACK, TASKS
    from ..policies import pruning_policies
    d = EvictionConfig()
    p = sub.add_parser("eval", help="long-context accuracy (tasks of the RULER kind) per policy x budget",
                       description="Generate needle-retrieval, variable-tracking and frequent-word tasks at the "
                                   "given lengths, run the baseline and every policy x budget greedily, score by "
                                   "containment; write answers.jsonl (resumable), eval.json, table.md and "
                                   "accuracy.png. Rerun the same command to continue an interrupted evaluation.")
    add_model_args(p)
    p.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS), help="tasks (default all)")
    p.add_argument("--lengths", type=positive_int, nargs="+", default=DEFAULT_LENGTHS, metavar="TOKENS",
                   help=f"context lengths in the model's tokens (default {' '.join(map(str, DEFAULT_LENGTHS))})")
    p.add_argument("--samples", type=positive_int, default=DEFAULT_SAMPLES,
                   help=f"samples per task and length (default {DEFAULT_SAMPLES})")
    p.add_argument("--seed", type=positive_int, default=0, help="seed of the generated tasks (default 0)")
    p.add_argument("--policies", nargs="+", choices=pruning_policies(), default=DEFAULT_POLICIES,
                   help=f"eviction policies (default {' '.join(DEFAULT_POLICIES)})")
    p.add_argument("--budgets", type=positive_int, nargs="+", default=DEFAULT_BUDGETS, metavar="N",
                   help=f"KV budgets in tokens (default {' '.join(map(str, DEFAULT_BUDGETS))})")
    p.add_argument("--prompt-select", nargs="+", choices=PROMPT_SELECTIONS, default=["policy"],
                   help="how pruned runs choose what of the prompt to keep, each a run of its own: policy (cut "
                        "while reading, the default) and/or query (read whole, kept by the attention of the "
                        "prompt's last 32 tokens; labelled POLICY+query)")
    p.add_argument("--recent-window", type=positive_int, default=d.recent_window,
                   help=f"newest tokens always kept (default {d.recent_window})")
    p.add_argument("--sink-tokens", type=positive_int, default=d.sink_tokens,
                   help=f"first tokens always kept (default {d.sink_tokens})")
    p.add_argument("--max-new-tokens", type=positive_int, default=None,
                   help="tokens to generate per answer (default per task: " +
                        ", ".join(f"{k} {v}" for k, v in MAX_NEW_TOKENS.items()) + ")")
    p.add_argument("--haystack", default=str(HAYSTACK), help="text the needles are hidden in (default: the "
                   "shipped English sample, assets/text/python-reference-sample.txt)")
    p.add_argument("--no-chat-template", action="store_true", help="feed the prompt as plain text")
    p.add_argument("--run-uninformative", action="store_true",
                   help="run the policies also where the baseline is below 50%% (default: skipped, marked "
                        "not informative)")
    p.add_argument("--output", default="out/eval", help="output folder (default out/eval)")
    return "eval"


def _shown(path) -> str:
    """A path as it is saved: relative to the checkout when inside it (the same on every machine)."""
    from ..paths import ASSETS
    p = Path(path).resolve()
    try:
        return str(p.relative_to(ASSETS.parent.resolve()))
    except ValueError:
        return str(p)


def _settings(args, model):
    from ..core.config import EvictionConfig, check_max_new_tokens
    from ..eval.run import Settings
    from ..eval.tasks import MIN_LENGTH
    if not Path(args.haystack).is_file():
        raise ValueError(f"no haystack file {args.haystack}")
    if args.samples < 1:
        raise ValueError("samples must be at least 1")
    if min(args.lengths) < MIN_LENGTH:
        raise ValueError(f"lengths must be at least {MIN_LENGTH} tokens, got {min(args.lengths)}")
    extra = {"recent_window": args.recent_window, "sink_tokens": args.sink_tokens}
    from ..core.runner import check_runnable
    for p in args.policies:
        for b in args.budgets:
            # a ValueError names what is wrong, or what the policy's runtime cannot run, before any run
            check_runnable(model, EvictionConfig(policy=p, budget=b, **extra))
    limits = {t: check_max_new_tokens(args.max_new_tokens or MAX_NEW_TOKENS[t]) for t in args.tasks}
    longest = max(args.lengths) + max(limits.values())
    if longest > model.info.max_context:
        raise ValueError(f"length {max(args.lengths)} + {max(limits.values())} new tokens exceed the model's "
                         f"context of {model.info.max_context} tokens")
    return Settings(model=_shown(model.info.model_dir), precision=args.precision, device=model.device,
                    tasks=tuple(args.tasks), lengths=tuple(sorted(set(args.lengths))), samples=args.samples,
                    seed=args.seed, policies=tuple(dict.fromkeys(args.policies)),
                    budgets=tuple(sorted(set(args.budgets))), max_new_tokens=limits,
                    haystack=_shown(args.haystack), chat=not args.no_chat_template,
                    run_uninformative=args.run_uninformative, eviction=extra,
                    prompt_selects=tuple(dict.fromkeys(args.prompt_select)))


def run(args):
    from ..eval import report
    from ..eval.run import evaluate
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output {out} exists and is not a folder")
    model, tok = open_model(args)
    settings = _settings(args, model)
    answers = evaluate(model, tok, settings, out, bar=progress_bar)
    (out / "command.txt").write_text("python -m triattn eval " + shlex.join(sys.argv[2:] if sys.argv[1:2] == ["eval"]
                                                                           else sys.argv[1:]) + "\n")
    title = (f"{Path(settings.model).name}, {settings.device}, {model.precision}, task seed {settings.seed}\n"
             f"accuracy over the tasks where the baseline reaches 50%")
    files = report.write(answers, settings, out, title)
    print((out / "table.md").read_text(encoding="utf-8"))
    for f in files + [out / "answers.jsonl", out / "command.txt"]:
        print(f"wrote {f}", file=sys.stderr)
    return 0
