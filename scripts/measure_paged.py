"""Our loop on the paged form against OpenVINO GenAI's LLMPipeline (prefix caching off), side by side
in one process: per prompt, each side once to warm up, then `--runs` rounds taking turns to lead.

Sides: our full-cache baseline (`--form`, default paged), GenAI, and on prompts of at least
`--pruned-from` tokens our pruned run (triattention, budget 256, prompt read in pieces of 512).
Prints per side the median TTFT and TPOT with their order-statistic intervals, and the medians of
the per-round ratios ours / GenAI with theirs (rounds pair runs taken at nearly the same time, so a
shared machine's drift reaches both). Uses the `bench --vs-genai` runners (triattn.bench.vsgenai).

    python scripts/measure_paged.py --runs 5 --lengths 2000 7000 --max-new-tokens 64
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from triattn.bench import vsgenai  # noqa: E402
from triattn.core.config import EvictionConfig  # noqa: E402
from triattn.openvino.tiny import default_model_dir  # noqa: E402
from triattn.core.stats import median_interval  # noqa: E402
from triattn.core.text import load_tokenizer  # noqa: E402
from triattn.openvino.model import load_model  # noqa: E402

PRUNED = EvictionConfig(policy="triattention", evict="hard", budget=256, prefill_chunk=512)


def figures(runs: list[dict]) -> dict:
    return {"ttft_ms": [1000 * r["ttft_s"] for r in runs],
            "tpot_ms": [1000 * statistics.median(r["steps_s"]) for r in runs]}


def fmt(xs, unit="ms") -> str:
    i = median_interval(xs)
    return f"{i.value:.4g} [{i.lo:.4g}, {i.hi:.4g}] {unit}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model-dir", default=None)
    p.add_argument("--form", default="paged", choices=["paged", "stateful"])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--lengths", type=int, nargs="+", default=[2000, 7000])
    p.add_argument("--pruned-from", type=int, default=4000)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--output", default=None)
    a = p.parse_args()
    model_dir = a.model_dir or default_model_dir(print)
    model = load_model(model_dir, "CPU", "f32", form=a.form)
    print(f"model {model_dir}, form {model.form}, precision {model.precision}")
    tok = load_tokenizer(model_dir)
    prompts = vsgenai.prompts(tok, model.info.max_context, a.max_new_tokens, lengths=a.lengths)
    pipe = vsgenai.pipeline(model)
    base_s, pruned_s = model.new_session(), model.new_session()
    out = {}
    for label, ids in prompts.items():
        sides = {"ours": lambda ids: vsgenai.our_run(model, ids, a.max_new_tokens, base_s),
                 "genai": lambda ids: vsgenai.genai_run(pipe, ids, a.max_new_tokens)}
        if len(ids) >= a.pruned_from:
            sides["ours_pruned"] = lambda ids: vsgenai.our_run(model, ids, a.max_new_tokens, pruned_s, PRUNED)
        for run in sides.values():
            run(ids)
        got = {n: [] for n in sides}
        for r in range(a.runs):
            for n in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
                got[n].append(sides[n](ids))
                print(f"  {label} round {r} {n}: ttft {got[n][-1]['ttft_s']:.3f} s", file=sys.stderr, flush=True)
        f = {n: figures(rs) for n, rs in got.items()}
        print(f"\n{label} ({len(ids)} tokens, {a.runs} rounds, {a.max_new_tokens} new tokens; "
              f"same greedy tokens ours/GenAI in every round: "
              f"{all(x['tokens'] == y['tokens'] for x, y in zip(got['ours'], got['genai']))})")
        for n in sides:
            print(f"  {n:12s} TTFT {fmt(f[n]['ttft_ms'])}  TPOT {fmt(f[n]['tpot_ms'])}")
        for n in [s for s in sides if s != "genai"]:
            for m in ("ttft_ms", "tpot_ms"):
                ratios = [x / y for x, y in zip(f[n][m], f["genai"][m])]
                print(f"  {n} / genai {m[:4].upper()} ratio {fmt(ratios, '')}")
        out[label] = {"prompt_tokens": len(ids), **f}
    if a.output:
        Path(a.output).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
