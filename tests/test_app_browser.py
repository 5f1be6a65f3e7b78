"""The page in a real browser (Debian's chromium through playwright): generate, stop, close the tab.

TRIATTN_SCREENSHOT=path saves a full-page screenshot of a finished comparison there
(the README's assets/screenshot.png comes from this test).
"""
import os
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"{CHROMIUM} is absent (apt-get install chromium)")
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def _open(browser, url):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    page.wait_for_selector("#generate")
    return page


def _set(page, elem_id, value):
    box = page.locator(f"#{elem_id} input, #{elem_id} textarea").first
    box.fill(str(value))
    box.blur()


def _text(page, elem_id) -> str:
    return page.locator(f"#{elem_id} textarea").input_value()


def _status(page) -> str:
    return page.locator("#status").inner_text()


def _wait_text(page, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if _text(page, "baseline-output") and _text(page, "pruned-output") and "Generating" in _status(page):
            return
        time.sleep(0.05)
    raise AssertionError(f"no streamed text; status: {_status(page)!r}")


def test_generate_fills_both_panes_and_the_table(browser, default_app_server, tmp_path):
    page = _open(browser, default_app_server.url)
    expect(page.locator("#model-notice")).to_contain_text("tiny demo model")
    page.get_by_text("class Stack:").first.click()  # an example prompt that suits the demo model
    expect(page.locator("#prompt textarea")).to_have_value("class Stack:")
    _set(page, "budget", 48)  # small enough that the pruned run visibly parts from the baseline
    page.click("#generate")
    expect(page.locator("#status")).to_contain_text("Done", timeout=60000)
    assert _text(page, "baseline-output") and _text(page, "pruned-output")
    table = page.locator("#metrics").inner_text()
    for word in ("baseline", "pruned", "Change", "TTFT", "Prune events"):
        assert word in table
    assert "Pruned vs baseline" in _status(page)
    assert "token #" in table  # the outputs diverge, and the table says where
    assert page.locator("#eviction-view").get_by_text("evicted (some layers)").count() > 0
    time.sleep(2.0)  # let the plots draw
    shot = Path(os.environ.get("TRIATTN_SCREENSHOT") or tmp_path / "screenshot.png")
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    page.close()


def _start_long_run(browser, server):
    page = _open(browser, server.url)
    _set(page, "prompt", "def read_lines(path):")
    _set(page, "budget", 64)
    _set(page, "max-new-tokens", 1500)  # within the demo model's 2048-token context
    page.click("#generate")
    _wait_text(page)
    return page


def test_stop_really_stops(browser, default_app_server):
    page = _start_long_run(browser, default_app_server)
    page.click("#stop")
    expect(page.locator("#status")).to_contain_text("Stopped", timeout=10000)
    time.sleep(0.5)
    seen = (_text(page, "baseline-output"), _text(page, "pruned-output"))
    assert default_app_server.cpu_percent(1.0) < 40, "the server is still generating"
    assert (_text(page, "baseline-output"), _text(page, "pruned-output")) == seen, "text still growing"
    assert "Done" not in _status(page)
    page.close()


def test_closing_the_tab_stops_the_generation(browser, default_app_server):
    page = _start_long_run(browser, default_app_server)
    page.close()
    time.sleep(2.0)
    assert default_app_server.cpu_percent(1.0) < 40, "the server is still generating for a closed tab"
    page = _open(browser, default_app_server.url)  # and the next visitor is served at once
    _set(page, "max-new-tokens", 10)
    page.click("#generate")
    expect(page.locator("#status")).to_contain_text("Done", timeout=15000)
    page.close()
