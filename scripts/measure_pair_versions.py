"""Does a change of the code slow the page's A/B pair? Time the pair (web/ab.Pair) of two checkouts
in one process, on one compiled model.

Both checkouts' packages are imported side by side (as triattn_before and triattn_after: the package
imports itself relatively) and run the pair on the card's first prompt (the baseline and one pruned
run taking turns token by token, greedy) on the same compiled model, in turns: before, after, after,
before (mirrored, so a drift that is linear over a repeat cancels), then after, before, before, after.
Each run prints each side's time per token (the mean of its decode steps); the figure per repeat is
after / before, reported as the median with its order-statistic interval (triattn/core/stats.py),
beside the medians themselves.

Why one process and one compiled model: two compiled copies of the same model differ in speed by
themselves. The same checkout against itself, 9 repeats, gave 0.933 [0.902-1.030] with a model
compiled per checkout in one process, and 0.904 [0.805-1.001] with a process per checkout (the copy
compiled second ran faster both times). So the model layer (triattn/openvino) must be the same files
in both checkouts; the script says so in one line when it is not.

    python scripts/measure_pair_versions.py BEFORE_DIR AFTER_DIR --repeats 15
"""
import argparse
import filecmp
import importlib
import statistics
import sys
import tempfile
from pathlib import Path

NAMES = ("before", "after")


def same_model_layer(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a / "triattn" / "openvino", b / "triattn" / "openvino", ignore=["__pycache__"])
    return not (cmp.left_only or cmp.right_only or filecmp.cmpfiles(cmp.left, cmp.right, cmp.common_files,
                                                                    shallow=False)[1])


def import_both(args, where: Path) -> dict:
    """{name: package} for both checkouts, imported under their own names from `where`."""
    for name in NAMES:
        (where / f"triattn_{name}").symlink_to(getattr(args, name).resolve() / "triattn")
    (where / "assets").symlink_to(args.after.resolve() / "assets")  # the packages find assets beside them
    sys.path.insert(0, str(where))
    return {name: importlib.import_module(f"triattn_{name}") for name in NAMES}


def pair_runner(pkg: str, model, args):
    cfg, text, ab = (importlib.import_module(f"{pkg}.{m}") for m in ("core.config", "core.text", "web.ab"))
    tok = text.load_tokenizer(args.model_dir)
    ids = text.encode_prompt(tok, args.prompts.read_text().split("\n")[0])

    def once(n: int) -> dict:
        p = ab.Pair(model, tok, ids, cfg.EvictionConfig(policy=args.policy, budget=args.budget), cfg.SamplingConfig(), n)
        for _ in p.steps():
            pass
        return {side: 1000 * statistics.fmean(r.time_s for r in run.records[1:])
                for side, run in (("baseline", p.baseline), ("pruned", p.pruned))}
    once(8)  # warm-up
    return once


def measure(runners: dict, repeats: int, max_new: int) -> list[dict]:
    rows = []
    for i in range(repeats):
        order = ("before", "after", "after", "before") if i % 2 == 0 else ("after", "before", "before", "after")
        got = {"before": [], "after": []}
        for name in order:
            got[name].append(runners[name](max_new))
        rows.append({n: {s: statistics.fmean(g[s] for g in runs) for s in ("baseline", "pruned")}
                     for n, runs in got.items()})
        print(f"repeat {i + 1}: " + ", ".join(f"{n} {rows[-1][n]['baseline']:.2f}/{rows[-1][n]['pruned']:.2f} ms"
                                              for n in order[:2]), flush=True)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("before", type=Path)
    p.add_argument("after", type=Path)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--model-dir", type=Path, default=Path("assets/smollm2-135m-instruct").resolve())
    p.add_argument("--prompts", type=Path, default=Path("assets/prompts/card.txt").resolve())
    p.add_argument("--policy", default="triattention")
    p.add_argument("--budget", type=int, default=128)
    p.add_argument("--max-new-tokens", type=int, default=100)
    args = p.parse_args()
    if not same_model_layer(args.before, args.after):
        sys.exit("the checkouts' model layers (triattn/openvino) differ: this script times the code above it, "
                 "on one compiled model")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from triattn.core.stats import median_interval
    with tempfile.TemporaryDirectory() as where:
        import_both(args, Path(where))
        mod = importlib.import_module("triattn_after.openvino.model")
        model = mod.load_model(args.model_dir, form="paged")
        rows = measure({n: pair_runner(f"triattn_{n}", model, args) for n in NAMES}, args.repeats,
                       args.max_new_tokens)
    for side in ("baseline", "pruned"):
        ratio = median_interval([r["after"][side] / r["before"][side] for r in rows])
        med = {n: statistics.median(r[n][side] for r in rows) for n in NAMES}
        print(f"{side}: TPOT before {med['before']:.2f} ms, after {med['after']:.2f} ms; after / before "
              f"{ratio.value:.3f} [{ratio.lo:.3f}-{ratio.hi:.3f}] ({ratio.level:.1%} interval, {len(rows)} repeats)")


if __name__ == "__main__":
    main()
