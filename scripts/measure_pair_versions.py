"""Does a change of the code slow the page's A/B pair? Time the pair (web/ab.Pair) in two checkouts.

Each run is a process of its own in one checkout: the pair on the card's first prompt (the
baseline and one pruned run taking turns token by token, greedy, 100 new tokens), printing each
side's time per token (the mean of its decode steps). Repeats alternate which checkout runs first,
so a drifting machine reaches both alike; the figure per repeat is after / before, reported as the
median with its order-statistic interval (triattn/core/stats.py), beside the medians themselves.

    python scripts/measure_pair_versions.py BEFORE_DIR AFTER_DIR --repeats 5
"""
import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

RUN = r"""
import json, statistics, sys
from triattn.core.config import EvictionConfig, SamplingConfig
from triattn.core.text import encode_prompt, load_tokenizer
from triattn.openvino.model import load_model
from triattn.web.ab import Pair
model_dir, policy, budget, max_new = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
prompt = open(sys.argv[5]).read().split("\n")[0]
kw = {"form": "paged"} if "form" in load_model.__code__.co_varnames else {}
model, tok = load_model(model_dir, **kw), load_tokenizer(model_dir)
ids = encode_prompt(tok, prompt)
def once(n):
    p = Pair(model, tok, ids, EvictionConfig(policy=policy, budget=budget), SamplingConfig(), n)
    for _ in p.steps():
        pass
    return {side: 1000 * statistics.fmean(r.time_s for r in run.records[1:])
            for side, run in (("baseline", p.baseline), ("pruned", p.pruned))}
once(8)  # warm-up
print(json.dumps(once(max_new)))
"""


def run_in(checkout: Path, args) -> dict:
    out = subprocess.run([sys.executable, "-c", RUN, str(args.model_dir), args.policy, str(args.budget),
                          str(args.max_new_tokens), str(args.prompts)], cwd=checkout, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("before", type=Path)
    p.add_argument("after", type=Path)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--model-dir", type=Path, default=Path("assets/smollm2-135m-instruct").resolve())
    p.add_argument("--prompts", type=Path, default=Path("assets/prompts/card.txt").resolve())
    p.add_argument("--policy", default="triattention")
    p.add_argument("--budget", type=int, default=128)
    p.add_argument("--max-new-tokens", type=int, default=100)
    args = p.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from triattn.core.stats import median_interval
    rows = []
    for i in range(args.repeats):
        order = ("before", "after") if i % 2 == 0 else ("after", "before")
        got = {name: run_in(getattr(args, name), args) for name in order}
        rows.append(got)
        print(f"repeat {i + 1}: " + ", ".join(f"{n} {got[n]['baseline']:.2f}/{got[n]['pruned']:.2f} ms" for n in order),
              flush=True)
    for side in ("baseline", "pruned"):
        ratio = median_interval([r["after"][side] / r["before"][side] for r in rows])
        med = {n: statistics.median(r[n][side] for r in rows) for n in ("before", "after")}
        print(f"{side}: TPOT before {med['before']:.2f} ms, after {med['after']:.2f} ms; after / before "
              f"{ratio.value:.3f} [{ratio.lo:.3f}-{ratio.hi:.3f}] ({ratio.level:.1%} interval, {len(rows)} repeats)")


if __name__ == "__main__":
    main()
