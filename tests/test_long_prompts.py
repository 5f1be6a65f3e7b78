"""Long prompts on the page, the way a visitor sends them: several comparisons in a row on the default
model, long and short mixed, each run leading in turn, a Stop in the middle of a long one, and the
server still serving afterwards. Each long prompt is cut to the budget right after its prefill,
which is where the page once crashed (a memory release that corrupted the heap)."""
import argparse
import functools
from pathlib import Path

import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402

from browser import needs_chromium, open_page, set_field  # noqa: E402
from triattn.core.inputs import prompt_ids  # noqa: E402
from triattn.openvino.tiny import default_model_dir  # noqa: E402
from triattn.core.text import load_tokenizer  # noqa: E402

NEW_TOKENS = 24
STOP_NEW_TOKENS = 400  # long enough that Stop lands while the run is generating
BUDGET = 256
SOURCE = Path(argparse.__file__).read_text(encoding="utf-8")  # Python's own argparse.py: long, plain text


@pytest.fixture(scope="module")
def long_prompts():
    """Prompts of about 1,500 and about 2,800 tokens, and one for the Stop test that leaves room for
    STOP_NEW_TOKENS (each fewer where the model's context is smaller), as the page will encode them,
    with their token counts."""
    from triattn.openvino.model import read_info
    model_dir = default_model_dir(lambda m: None)
    tok, ctx = load_tokenizer(model_dir), read_info(model_dir).max_context
    out = []
    for target in (1500, min(2800, ctx - NEW_TOKENS - 8), min(2800, ctx - STOP_NEW_TOKENS - 8)):
        lo, hi = 1, len(SOURCE)
        while lo < hi:  # the longest prefix of the source that encodes to at most `target` tokens
            mid = (lo + hi + 1) // 2
            if len(prompt_ids(tok, SOURCE[:mid], ctx)) <= target:
                lo = mid
            else:
                hi = mid - 1
        out.append((SOURCE[:lo], len(prompt_ids(tok, SOURCE[:lo], ctx))))
    return out


def _args(prompt, max_new=NEW_TOKENS):
    return (prompt, "default", "CPU", "knorm", "hard", BUDGET, 32, 4, 32, max_new, 0.0, 0)


def _table(final) -> dict:
    t = final[4]
    return {r[0]: dict(zip(t["headers"], r)) for r in t["data"]}


def test_long_and_short_comparisons_in_a_row_each_run_leading(default_app_server, long_prompts):
    """Four comparisons on one visitor (so the lead alternates: baseline, pruned, baseline, pruned),
    prompts of ~1,500 and ~2,800 tokens and a short one, then a fifth: every one finishes, the
    long ones are cut to the budget, and the server process is alive at the end."""
    (mid, n_mid), (long, n_long), _ = long_prompts
    assert n_mid >= 1000 and n_long > BUDGET * 4
    client = Client(default_app_server.url, verbose=False)
    for prompt, n in ((mid, n_mid), (long, n_long), ("Explain MoE transformer architectures.", None), (long, n_long)):
        final = client.predict(*_args(prompt), api_name="/generate")
        assert final[2].startswith("**Done"), final[2]
        rows = _table(final)
        assert int(rows["baseline"]["Tokens"]) > 0 and int(rows["pruned"]["Tokens"]) > 0
        if n is not None:
            assert int(rows["pruned"]["Prune events"]) >= 1  # the prompt was cut
    assert client.predict(*_args("def read_lines(path):", 8), api_name="/generate")[2].startswith("**Done")
    assert default_app_server.proc.poll() is None


@needs_chromium
def test_stop_in_the_middle_of_a_long_prompt_then_more_comparisons(browser, default_app_server, long_prompts):
    """In a real browser: a prompt of 1,500 to 2,800 tokens, Stop while it generates, then a long and a short
    comparison: both finish."""
    expect = pytest.importorskip("playwright.sync_api").expect
    (mid, _), _, (long, n_long) = long_prompts
    assert n_long >= 1500
    page = open_page(browser, default_app_server.url)
    fill = functools.partial(set_field, page)

    def generate(until: str, stop_when: str | None = None):
        """Click Generate and wait until the status, changed since the click, contains `until`
        (pressing Stop first once it contains `stop_when`)."""
        page.evaluate("""() => { window.statusChanged = false;
            new MutationObserver(() => { window.statusChanged = true; })
                .observe(document.querySelector('#status'), {subtree: true, childList: true,
                                                             characterData: true}); }""")
        page.click("#generate")
        if stop_when:
            expect(page.locator("#status")).to_contain_text(stop_when, timeout=120000)
            page.click("#stop")
        page.wait_for_function("w => window.statusChanged && document.querySelector('#status')"
                               ".innerText.includes(w)", arg=until, timeout=120000)
    fill("prompt", long)
    fill("budget", BUDGET)
    fill("max-new-tokens", STOP_NEW_TOKENS)
    generate("Stopped", stop_when="Generating")
    for prompt in (mid, "class Stack:"):
        fill("prompt", prompt)
        fill("max-new-tokens", NEW_TOKENS)
        generate("Done")
    page.close()
    assert default_app_server.proc.poll() is None
