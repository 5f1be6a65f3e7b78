"""The page in a real browser (Debian's chromium through playwright): generate, stop, close the tab.

TRIATTN_SCREENSHOT=path saves a full-page screenshot of the first click on the first example there,
TRIATTN_SCREENSHOT_PASSAGE=path one of a long-passage example (the README's assets/screenshot.png and
assets/screenshot-passage.png come from these tests).
"""
import os
import re
import time
from pathlib import Path

import pytest
from browser import needs_chromium, open_page, set_field, status_of, text_of

pytestmark = needs_chromium
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect



def _wait_text(page, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text_of(page, "baseline-output") and text_of(page, "pruned-output") and "Generating" in status_of(page):
            return
        time.sleep(0.05)
    raise AssertionError(f"no streamed text; status: {status_of(page)!r}")


def _no_warning(page):
    toasts = page.locator("[data-testid='toast-body']")  # gr.Warning, gr.Error and gr.Info pop up as these
    assert toasts.count() == 0, toasts.all_inner_texts()


def test_first_click_on_the_first_example_shows_a_difference(browser, default_app_server, tmp_path):
    """A new visitor changes nothing and presses Generate: English in both panes, the table filled, the
    outputs parting, which precision ran, no warning, and how long the runs took."""
    from triattn.web.choices import example_prompts
    page = open_page(browser, default_app_server.url)
    expect(page.locator("#model-notice")).to_contain_text("SmolLM2-135M-Instruct")
    expect(page.locator("#prompt textarea")).to_have_value(example_prompts()[0])
    page.click("#generate")
    expect(page.locator("#status")).to_contain_text("Done", timeout=60000)
    status = status_of(page)
    assert re.search(r"Done after [0-9.]+ s", status), status
    base, pruned = text_of(page, "baseline-output"), text_of(page, "pruned-output")
    english = (" the ", " and ", " a ", " to ", " is ")  # English, whichever words the kernel's greedy path took
    assert len(base.split()) > 50 and any(w in base for w in english) and any(w in pruned for w in english)
    table = page.locator("#metrics").inner_text()
    for word in ("baseline", "pruned", "Change", "TTFT", "Prune events"):
        assert word in table
    assert "Pruned vs baseline" in status and "token #" in table  # the outputs diverge, and the table says where
    assert "f32 precision" in page.locator("#baseline-output").inner_text()
    assert page.locator("#eviction-view").get_by_text("evicted (some layers)").count() > 0
    _no_warning(page)
    page.wait_for_selector("#latency-plot canvas, #latency-plot svg")
    shot = Path(os.environ.get("TRIATTN_SCREENSHOT") or tmp_path / "screenshot.png")
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    page.close()


def test_a_long_passage_the_pruned_cache_forgets(browser, default_app_server, tmp_path):
    """The lighthouse example at the page's budget of 64: the baseline names the dog, the pruned run
    (which evicted the sentence that names it) does not."""
    page = open_page(browser, default_app_server.url)
    page.get_by_text("A story about a lighthouse keeper").first.click()
    expect(page.locator("#prompt textarea")).to_have_value(re.compile(r"What was the dog called\?"))
    page.click("#generate")
    expect(page.locator("#status")).to_contain_text("Done", timeout=90000)
    assert "Pepper" in text_of(page, "baseline-output")
    assert "Pepper" not in text_of(page, "pruned-output")
    _no_warning(page)
    shot = Path(os.environ.get("TRIATTN_SCREENSHOT_PASSAGE") or tmp_path / "screenshot-passage.png")
    page.screenshot(path=str(shot), full_page=True)
    page.close()


def _start_long_run(browser, server):
    page = open_page(browser, server.url)
    set_field(page, "prompt", "Count from 1 to 1000, one number per line.")  # a long answer
    set_field(page, "max-new-tokens", 1500)
    page.click("#generate")
    _wait_text(page)
    return page


def test_stop_really_stops(browser, default_app_server):
    ended = default_app_server.runs_ended()
    page = _start_long_run(browser, default_app_server)
    page.click("#stop")
    expect(page.locator("#status")).to_contain_text("Stopped", timeout=10000)
    default_app_server.wait_until(lambda: default_app_server.runs_ended() > ended, "the server to end the run")
    seen = (text_of(page, "baseline-output"), text_of(page, "pruned-output"))
    assert seen[0] and seen[1]
    assert "Done" not in status_of(page)
    page.close()


def test_closing_the_tab_stops_the_generation(browser, default_app_server):
    ended = default_app_server.runs_ended()
    page = _start_long_run(browser, default_app_server)
    page.close()
    default_app_server.wait_until(lambda: default_app_server.runs_ended() > ended,
                                  "the server to end the run of a closed tab")
    page = open_page(browser, default_app_server.url)  # and the next visitor is served at once
    set_field(page, "max-new-tokens", 10)
    page.click("#generate")
    expect(page.locator("#status")).to_contain_text("Done", timeout=15000)
    page.close()
