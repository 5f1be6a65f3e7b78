"""On the page, is the pruned run's time to first token above the baseline's? The page's own pair.

Runs the page's A/B pair (web/ab.Pair, the page's defaults: triattention, hard, budget 64, recent
window 16) on the lighthouse example (assets/prompts/passages.txt, ~1,050 tokens), the baseline
leading as in every other run on the page, greedy, a few new tokens. Each repeat's figure is the
pruned run's TTFT over the baseline's, reported as the median with its order-statistic interval
(triattn/core/stats.py); "not above" holds when the whole interval is at or below 1.

    python scripts/measure_page_ttft.py --repeats 7
"""
import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from triattn.core.config import SamplingConfig  # noqa: E402
from triattn.core.stats import median_interval  # noqa: E402
from triattn.core.text import encode_prompt, load_tokenizer, split_prompts  # noqa: E402
from triattn.openvino.model import load_model  # noqa: E402
from triattn.paths import ASSETS  # noqa: E402
from triattn.web.ab import Pair  # noqa: E402
from triattn.web.ui import PAGE_DEFAULTS  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--max-new-tokens", type=int, default=8)
    p.add_argument("--model-dir", default=str(ASSETS / "smollm2-135m-instruct"))
    args = p.parse_args()
    text = next(t for t in split_prompts((ASSETS / "prompts" / "passages.txt").read_text()) if "lighthouse" in t)
    model, tok = load_model(args.model_dir, form="paged"), load_tokenizer(args.model_dir)
    ids = encode_prompt(tok, text)
    rows = []
    for i in range(args.repeats + 1):  # the first: a warm-up, not counted
        pair = Pair(model, tok, ids, PAGE_DEFAULTS, SamplingConfig(), args.max_new_tokens, pruned_first=False)
        for _ in pair.steps():
            pass
        row = (pair.baseline.records[0].time_s, pair.pruned.records[0].time_s)
        if i:
            rows.append(row)
            print(f"repeat {i}: TTFT baseline {1000 * row[0]:.0f} ms, pruned {1000 * row[1]:.0f} ms", flush=True)
    ratio = median_interval([pr / b for b, pr in rows])
    print(f"{len(ids)}-token prompt, {PAGE_DEFAULTS.policy} budget {PAGE_DEFAULTS.budget}, baseline leading: "
          f"TTFT baseline {1000 * statistics.median(b for b, _ in rows):.0f} ms, pruned "
          f"{1000 * statistics.median(pr for _, pr in rows):.0f} ms; pruned / baseline {ratio.value:.3f} "
          f"[{ratio.lo:.3f}-{ratio.hi:.3f}] ({ratio.level:.1%} interval, {len(rows)} repeats): "
          f"{'not above' if ratio.hi <= 1 else 'above' if ratio.lo > 1 else 'not shown at this noise'}")


if __name__ == "__main__":
    main()
