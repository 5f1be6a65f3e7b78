"""The Arena in a real browser (Debian's chromium through playwright): four policies against the
baseline on the lighthouse example, the leaderboard, the expected-answer column, the plots with every
run, the downloaded report opened offline, Stop mid-run, and bad input."""
import re

import pytest
from browser import needs_chromium, open_page, set_field

pytestmark = needs_chromium
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

RUNS = ["knorm / hard", "streaming / hard", "triattention / hard", "random / hard"]


def _arena(page, budget=128, max_new=12):
    page.locator("#mode").get_by_text("Arena", exact=True).click()
    expect(page.locator("#arena-run")).to_be_visible()
    expect(page.locator("#generate")).to_be_hidden()
    set_field(page, "budget", budget)
    set_field(page, "max-new-tokens", max_new)


def _lighthouse(page):
    page.get_by_text("A story about a lighthouse keeper").first.click()
    expect(page.locator("#prompt textarea")).to_have_value(re.compile(r"What was the dog called\?"))


def _table(locator) -> list[list[str]]:
    """An HTML table's rows, the header first."""
    return [[c.inner_text().strip() for c in r.locator("th, td").all()] for r in locator.locator("tr").all()]


def _grid(locator) -> list[list[str]]:
    """The page's data grid (gr.Dataframe): its header titles, then its cells row by row."""
    head = [h.get_attribute("title") for h in locator.locator("[role=columnheader][title]").all()]
    cells = {}
    for c in locator.locator("[role=gridcell][data-row][data-col]").all():
        cells[int(c.get_attribute("data-row")), int(c.get_attribute("data-col"))] = c.inner_text().strip()
    n = 1 + max((r for r, _ in cells), default=-1)
    return [head] + [[cells.get((r, k), "") for k in range(len(head))] for r in range(n)]


def test_arena_of_four_on_the_lighthouse_and_its_report_offline(browser, default_app_server, tmp_path):
    page = open_page(browser, default_app_server.url)
    _lighthouse(page)
    _arena(page)
    page.click("#arena-run")
    expect(page.locator("#arena-status")).to_contain_text("Done", timeout=300000)
    expect(page.locator("#arena-html")).to_be_visible(timeout=60000)
    status = page.locator("#arena-status").inner_text()
    assert "Expected answer “Pepper”" in status
    outputs = {}
    for i in range(5):
        box = page.locator(f"#arena-output-{i}")
        expect(box).to_be_visible()
        outputs[box.locator("label, span").first.inner_text().split(":")[0].strip()] = \
            box.locator("textarea").input_value()
    assert list(outputs)[0] == "baseline" and len(outputs) == 5
    board = _grid(page.locator("#arena-leaderboard"))
    head, rows = board[0], board[1:]
    assert len(rows) == 4 and head[:3] == ["Rank", "Run", "Expected answer"]  # the answer beside the run's name
    assert sorted(r[1] for r in rows) == sorted(f"{r.split(' / ')[0]}/hard@128" for r in RUNS)
    nll = [float(r[3]) for r in rows]
    assert nll == sorted(nll)  # ranked by quality cost
    for r in rows:  # the expected-answer column, checked against each run's own output
        assert r[2] == ("kept" if "pepper" in outputs[r[1]].lower() else "lost")
    kept = [n for n, text in outputs.items() if "pepper" in text.lower()]
    assert f"kept by {', '.join(kept) if kept else 'no run'}" in status
    for plot in ("arena-latency-plot", "arena-kv-plot"):
        legend = page.locator(f"#{plot}").inner_text()
        for name in outputs:
            assert name in legend, (plot, legend)
    with page.expect_download() as dl:
        page.click("#arena-html")
    report = tmp_path / "report.html"
    dl.value.save_as(report)
    offline = browser.new_context(offline=True)
    view = offline.new_page()
    view.goto(report.as_uri())
    expect(view.locator("#headline")).to_contain_text("Expected answer")
    got = _table(view.locator("table.leaderboard"))
    assert got[1:] == rows
    for name, text in outputs.items():
        assert text.strip() in view.locator("pre.output").all_inner_texts()[list(outputs).index(name)]
    imgs = view.locator("img")
    assert imgs.count() == 2
    assert all(view.evaluate("i => i.complete && i.naturalWidth > 0", imgs.nth(k).element_handle()) for k in range(2))
    offline.close()
    page.close()


def test_stop_mid_arena_leaves_a_usable_page(browser, default_app_server):
    page = open_page(browser, default_app_server.url)
    set_field(page, "prompt", "Count from 1 to 1000, one number per line.")
    _arena(page, budget=64, max_new=400)
    page.click("#arena-run")
    expect(page.locator("#arena-status")).to_contain_text("Generating", timeout=120000)
    page.click("#stop")
    expect(page.locator("#arena-status")).to_contain_text("Stopped", timeout=60000)
    # the page still works: a short arena runs to its end
    set_field(page, "max-new-tokens", 4)
    page.click("#arena-run")
    expect(page.locator("#arena-status")).to_contain_text("Done", timeout=300000)
    expect(page.locator("#arena-status")).not_to_contain_text("Measuring", timeout=300000)  # the event's end
    made = page.locator("#arena-output-1 textarea").input_value()
    assert made
    # settings refused before anything runs: one line in the status, the last arena's results stay, unmarked
    set_field(page, "arena-budgets", "64, lots")
    page.click("#arena-run")
    expect(page.locator("#arena-status")).to_contain_text("Not run: budgets are whole numbers", timeout=30000)
    assert page.locator("#arena-output-1 textarea").input_value() == made
    expect(page.locator("#arena-output-1")).not_to_contain_text("Error")
    page.close()


def test_bad_arena_input_gets_one_clear_line(browser, default_app_server):
    page = open_page(browser, default_app_server.url)
    _arena(page)
    toasts = page.locator("[data-testid='toast-body']")
    set_field(page, "arena-budgets", "64, 128")  # 4 runs x 2 budgets: 8
    page.click("#arena-run")
    expect(toasts.first).to_contain_text("at most 4 pruned runs", timeout=30000)
    page.close()
