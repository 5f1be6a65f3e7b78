"""The bad-input matrix, written once and run against the CLI (test_cli_reliability.py) and the
page (test_app_reliability.py). Each case is a change to a good request, as the page takes it
(`page`: the handler's fields) and as the CLI takes it (`cli`: options; None where the CLI has no
such input), and the line both must answer with. Where the front ends word a refusal of their own
(argparse's and Gradio's checks of a menu or a number's type), `cli_message` / `page_message` say so;
`ours` marks refusals triattn itself makes (they must not log a traceback).
"""
from dataclasses import dataclass, field

TOO_LONG = "word " * 5000  # about 5000 tokens; the tiny models' context is 4096


@dataclass(frozen=True)
class Case:
    message: str
    page: dict | None = None
    cli: list | None = None
    cli_message: str | None = None
    page_message: str | None = None
    ours: bool = True
    tags: tuple = field(default=())

    @property
    def id(self) -> str:
        return self.message[:60]


CASES = [
    Case("the prompt is empty", dict(prompt=""), ["--prompt", ""]),
    Case("the prompt is empty", dict(prompt=" \n\t "), ["--prompt", " \n\t "]),
    Case("the prompt is empty", dict(prompt=None)),
    Case("exceed the model's context of 4096", dict(prompt=TOO_LONG), ["--prompt", TOO_LONG]),
    Case("far longer than the model's context", dict(prompt="x" * 200_000), ["--prompt", "x" * 200_000]),
    Case("must exceed sink tokens + recent window", dict(budget=6, recent=4, sinks=2),
         ["--budget", "24", "--recent-window", "16", "--sink-tokens", "8"]),
    Case("budget (5000 tokens) is above the model's context of 4096 tokens", dict(budget=5000), ["--budget", "5000"]),
    Case("budget must be at least 2", dict(budget=0), ["--budget", "0"]),
    Case("budget must be at least 2, got -3", dict(budget=-3), ["--budget", "-3"], cli_message="expected a number >= 0"),
    Case("budget must be a whole number", dict(budget="abc"), ["--budget", "2.5"], cli_message="expected a whole number"),
    Case("budget must be a whole number of sensible size", dict(budget=10 ** 400)),
    Case("budget is empty", dict(budget=None)),
    Case("recent window must be at least 0", dict(recent=-1), ["--recent-window", "-1"],
         cli_message="expected a number >= 0"),
    Case("sink tokens must be a whole number, got 1.5", dict(sinks=1.5), ["--sink-tokens", "1.5"],
         cli_message="expected a whole number"),
    Case("prune interval must be at least 1", dict(interval=0), ["--prune-interval", "0"],
         cli_message="prune_interval must be at least 1"),
    Case("max new tokens must be at least 1", dict(max_new=0), ["--max-new-tokens", "0"],
         cli_message="max_new_tokens must be at least 1"),
    Case("max_new_tokens is capped at 4096", dict(max_new=10 ** 9), ["--max-new-tokens", "999999999"]),
    Case("new tokens exceed the model's context of 4096", dict(max_new=4096), ["--max-new-tokens", "4096"]),
    Case("seed must be at least 0", dict(seed=-1), ["--seed", "-1"], cli_message="expected a number >= 0"),
    Case("temperature must be between 0 and 10", dict(temperature=50), ["--temperature", "-1"],
         page_message="greater than maximum", ours=False),
    Case("temperature must be a number", None, ["--temperature", "nan"]),
    Case("top_p must be in (0, 1]", None, ["--top-p", "0"]),
    Case("unknown policy", dict(policy="lfu"), ["--policy", "lfu"], cli_message="invalid choice: 'lfu'",
         page_message="not in the list of choices", ours=False),
    Case("unknown eviction mechanism", dict(evict="delete"), ["--evict", "delete"],
         cli_message="invalid choice: 'delete'", page_message="not in the list of choices", ours=False),
    Case("device 'NO-SUCH-DEVICE' is not available here", dict(device="NO-SUCH-DEVICE"),
         ["--device", "NO-SUCH-DEVICE"], page_message="not in the list of choices", ours=False),
    Case("unknown model", dict(model="/etc"), None, page_message="not in the list of choices", ours=False),
    Case("is not an OpenVINO IR file", dict(model="{garbage-xml}")),
    Case("Incorrect weights in bin file", dict(model="{truncated-bin}")),
    Case("the .xml and .bin are from different exports", dict(model="{foreign-bin}")),
    Case("is not a text-generation export", dict(model="{not-an-llm}")),
    Case("no tokenizer in", dict(model="{no-tokenizer}")),
]  # broken model folders in the CLI: test_cli_reliability.test_broken_model_directories (infer and calibrate)

PAGE_CASES = [c for c in CASES if c.page is not None]
CLI_CASES = [c for c in CASES if c.cli is not None]


def fill(value, broken_models: dict):
    """A '{kind}' placeholder becomes the path of that broken model copy."""
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return str(broken_models[value[1:-1]].resolve())
    return value
