"""One comparison clicked again and again in a real browser (Debian's chromium through playwright): the
lighthouse example at budget 128, five times. The headlines never contradict each other on speed, and
no table cell changes sign between repeats unless its interval is shown. Also: Stop while a 5,000-token
prompt is read, what the page says meanwhile, and the model menu bringing the model's own example.
Every wait is on the page's own state."""
import re

import pytest
from browser import needs_chromium, set_field, status_of, text_of

pytestmark = needs_chromium
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

# The table's header cells, and its body cells by row (the body is a grid of cells, drawn row by row).
ROWS = """() => {
  const header = [...document.querySelector('#metrics tr').querySelectorAll('th')].map(c => c.innerText.trim());
  const rows = {};
  for (const c of document.querySelectorAll('#metrics [role=gridcell][data-row]')) {
    (rows[c.dataset.row] ||= [])[+c.dataset.col] = c.innerText.trim();
  }
  return [header, Object.values(rows)];
}"""
SPEED = re.compile(r"time per token \d+% (lower|higher)|no measurable difference in time per token|too few decoded")


@pytest.fixture
def page(browser, default_app_server):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(default_app_server.url)
    page.wait_for_selector("#generate")
    yield page
    page.close()


def _lighthouse(page):
    page.get_by_text("A story about a lighthouse keeper").first.click()
    expect(page.locator("#prompt textarea")).to_have_value(re.compile(r"What was the dog called\?"))


def _change_row(page) -> dict:
    header, rows = page.evaluate(ROWS)
    change = next(r for r in rows if r and r[0] == "Change")
    assert header[0] == "Run" and len(change) == len(header), (header, change)
    return dict(zip(header, change))


def _finished(page):
    """Done, with the quality cost measured: Generate is ready again."""
    expect(page.locator("#status")).to_contain_text("Done", timeout=180_000)
    expect(page.locator("#generate")).to_have_text("Generate", timeout=180_000)
    expect(page.locator("#generate")).to_be_enabled()


def test_five_repeats_of_the_lighthouse_comparison_agree(page):
    _lighthouse(page)
    set_field(page, "budget", 128)
    headlines, changes = [], []
    for _ in range(5):
        page.click("#generate")
        expect(page.locator("#generate")).to_be_disabled(timeout=60_000)  # said running, not dropped unsaid
        _finished(page)
        status = status_of(page)
        headlines.append(SPEED.search(status).group(0))
        changes.append(_change_row(page))
        assert changes[-1]["ΔNLL (forced)"]  # the quality cost came after Done
    directions = {h.split()[-1] for h in headlines if h.startswith("time per token")}
    assert len(directions) <= 1, headlines  # never "lower" in one repeat and "higher" in another
    for column in changes[0]:
        signs = {c[column][0] for c in changes if re.match(r"[+-]\d", c[column]) and " to " not in c[column]}
        assert len(signs) <= 1, (column, [c[column] for c in changes])
    # the quality columns come first: in view at 1,400 px without scrolling sideways
    box = page.locator("#metrics th", has_text="ΔNLL").first.bounding_box()
    assert box["x"] + box["width"] <= 1400, box


def test_stop_while_a_5000_token_prompt_is_read(page):
    """The prompt is read in pieces by both runs; Stop ends them between two pieces: no token is
    made. Meanwhile the status says the prompt is being read, no loading banner covers the page, and
    Generate says a comparison is running."""
    _lighthouse(page)
    head, body = text_of(page, "prompt").split("\n\n", 1)
    set_field(page, "prompt", head + "\n\n" + "\n\n".join([body] * 5))
    page.click("#generate")
    expect(page.locator("#status")).to_contain_text("Reading the prompt", timeout=60_000)
    tokens = int(re.search(r"Reading the prompt \((\d+) tokens\)", status_of(page)).group(1))
    assert tokens > 5000
    assert not page.get_by_text("Loading the model").first.is_visible()
    expect(page.locator("#generate")).to_have_text(re.compile("Running"))
    page.click("#stop")
    expect(page.locator("#status")).to_contain_text("Stopped", timeout=120_000)
    assert text_of(page, "baseline-output") == "" and text_of(page, "pruned-output") == ""
    expect(page.locator("#generate")).to_be_enabled()


def test_the_python_model_brings_a_python_example_and_back(page):
    expect(page.locator("#prompt textarea")).to_have_value(re.compile(r"^Explain"))
    page.get_by_text("Model and device").click()
    page.locator("#model input").click()
    page.get_by_role("option", name=re.compile("writes Python")).click()
    expect(page.locator("#prompt textarea")).to_have_value("def fibonacci(n):")
    page.locator("#model input").click()
    page.get_by_role("option", name=re.compile("writes English")).click()
    expect(page.locator("#prompt textarea")).to_have_value(re.compile(r"^Explain"))
