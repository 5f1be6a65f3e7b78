"""How long a Stop takes while a long prompt is read: the page's comparison (ab.Pair) on the bundled
model, a prompt of over 5,000 tokens (the lighthouse story five times), Stop (Pair.cancel, from
another thread, as the page's Stop button) at a random moment of the prompt's reading; the time from
the Stop to both runs ended. Prints each delay, their median and its interval (core.stats).

    python scripts/measure_stop.py [--repeats 7] [--within 30] [--form paged|stateful]
"""
import argparse
import random
import threading
import time

from triattn.core.config import EvictionConfig, SamplingConfig
from triattn.core.inputs import prompt_ids
from triattn.core.runs import ENGLISH_MODEL
from triattn.core.stats import median_interval
from triattn.core.text import load_tokenizer
from triattn.errors import Cancelled
from triattn.openvino.model import load_model
from triattn.web.ab import Pair
from triattn.web.choices import example_prompts


def long_prompt() -> str:
    story = next(p for p in example_prompts() if "lighthouse" in p[:80])
    head, body = story.split("\n\n", 1)
    return head + "\n\n" + "\n\n".join([body] * 5)


def run(pair, steps: list):
    try:
        for name in pair.steps():
            steps.append(name)
    except Cancelled:  # the Stop: the runs end here
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--within", type=float, default=30.0, help="Stop at a random moment of the first WITHIN seconds")
    ap.add_argument("--form", choices=["paged", "stateful"], default="paged", help="cache form (default paged, as the page)")
    args = ap.parse_args()
    model, tok = load_model(ENGLISH_MODEL, form=args.form), load_tokenizer(ENGLISH_MODEL)
    ids = prompt_ids(tok, long_prompt(), model.info.max_context)
    rng, delays = random.Random(0), []
    for i in range(args.repeats):
        pair = Pair(model, tok, ids, EvictionConfig(policy="triattention", budget=128, recent_window=16),
                    SamplingConfig(), 150, pruned_first=i % 2 == 1)
        steps = []
        runner = threading.Thread(target=run, args=(pair, steps))
        runner.start()
        time.sleep(rng.uniform(0.5, args.within))  # a moment within the prompt's reading
        stopped = time.perf_counter()
        pair.cancel()
        runner.join()
        delays.append(time.perf_counter() - stopped)
        print(f"stop {i + 1}: {delays[-1]:.2f} s (prompt {len(ids)} tokens; tokens made {len(steps)})", flush=True)
    print(f"delay from Stop to both runs ended: {median_interval(delays)}")


if __name__ == "__main__":
    main()
