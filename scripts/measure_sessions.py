"""Do sessions of one compiled model step at the same speed? Each session is an infer request of
its own, with its own buffers.

Opens N paged sessions of the default model, reads the same short prompt into each, then steps
them in turn one token at a time (the lead rotating each round, as in the arena), and prints each
session's median step time. Repeated with fresh sessions, so a difference that stays within a run
but moves between runs shows as such.

    python scripts/measure_sessions.py --sessions 6 --steps 200 --repeats 3
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from triattn.core.text import encode_prompt, load_tokenizer  # noqa: E402
from triattn.openvino.model import load_model  # noqa: E402
from triattn.paths import ASSETS  # noqa: E402

PROMPT = "Explain the difference between a list and a tuple in Python, with examples."


def one_run(model, ids: np.ndarray, n: int, steps: int) -> list[float]:
    """Each session's median step time (ms) over `steps` rounds."""
    sessions = [model.new_session() for _ in range(n)]
    times = [[] for _ in range(n)]
    try:
        for s in sessions:
            s.reset()
            s.reserve(ids.size + steps + 1)
            s.forward(ids, np.arange(ids.size), keys=False, copy=False)
        for step in range(steps):
            k = step % n
            for j in list(range(k, n)) + list(range(k)):
                t0 = time.perf_counter()
                sessions[j].forward(np.array([1]), np.array([ids.size + step]), keys=False, copy=False)
                times[j].append(time.perf_counter() - t0)
    finally:
        for s in sessions:
            s.close()
    return [1000 * statistics.median(t) for t in times]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sessions", type=int, default=6)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--model-dir", default=str(ASSETS / "smollm2-135m-instruct"))
    args = p.parse_args()
    model, tok = load_model(args.model_dir, form="paged"), load_tokenizer(args.model_dir)
    ids = np.array(encode_prompt(tok, PROMPT))
    one_run(model, ids, args.sessions, 8)  # warm-up
    for r in range(args.repeats):
        med = one_run(model, ids, args.sessions, args.steps)
        print(f"run {r + 1}: median step per session " + ", ".join(f"{m:.2f}" for m in med)
              + f" ms; slowest / fastest {max(med) / min(med):.3f}", flush=True)


if __name__ == "__main__":
    main()
