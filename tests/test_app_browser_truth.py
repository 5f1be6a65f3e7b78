"""What the page says, read in a real browser (Debian's chromium through playwright): a long prompt's
headline, ov-genai's sizes and unreported evictions, an error that stays until the next good run, and a
1,000-token run that keeps the page short and responsive. Every wait is on the page's own state."""
import re

import pytest
from triattn.core.config import DEFAULT_PREFILL_CHUNK
from browser import needs_chromium, set_field, status_of

pytestmark = needs_chromium
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

# For every table cell: a word that the browser laid out over two lines has two boxes.
BROKEN_WORDS = """() => {
  const out = [];
  for (const cell of document.querySelectorAll('#metrics th span, #metrics td span')) {
    const text = cell.firstChild;
    if (!text || text.nodeType !== 3) continue;
    const re = /\\S+/g; let m;
    while ((m = re.exec(text.data)) !== null) {
      const r = document.createRange(); r.setStart(text, m.index); r.setEnd(text, m.index + m[0].length);
      const lines = new Set([...r.getClientRects()].map(b => Math.round(b.top)));
      if (lines.size > 1) out.push(m[0]);
    }
  }
  return out;
}"""
# Records when the status line changes during a run, with the baseline's token count at that time.
WATCH_STATUS = """() => {
  window.statusLog = [];
  const el = document.querySelector('#status');
  new MutationObserver(() => {
    const m = el.innerText.match(/baseline (\\d+),/);
    if (m) window.statusLog.push([performance.now(), +m[1]]);
  }).observe(el, {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture
def page(browser, default_app_server):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(default_app_server.url)
    page.wait_for_selector("#generate")
    yield page
    page.close()


def _generate(page, timeout_s=120, word="Done"):
    page.click("#generate")
    expect(page.locator("#status")).to_contain_text(word, timeout=timeout_s * 1000)
    return status_of(page)


def test_a_long_prompt_says_what_the_cache_held_while_decoding(page):
    page.get_by_text("A story about a lighthouse keeper").first.click()
    expect(page.locator("#prompt textarea")).to_have_value(re.compile(r"What was the dog called\?"))
    status = _generate(page)
    # the pruned run reads a long prompt in pieces, cut to the budget before each (the default)
    cut = re.search(r"read the prompt's (\d+) tokens (\d+) at a time, cutting its cache to the budget before each "
                    r"piece \(together one prune event, within its time to first token\), and decoded from (\d+)",
                    status)
    assert cut and int(cut.group(1)) > 1000 and int(cut.group(2)) == DEFAULT_PREFILL_CHUNK, status
    assert int(cut.group(3)) <= 64, status
    smaller = re.search(r"KV cache (\d+)% smaller while decoding", status)
    assert smaller and int(smaller.group(1)) > 80, status  # not the prompt before its cut
    assert page.evaluate(BROKEN_WORDS) == []  # no header or cell breaks a word
    page.get_by_text("What the numbers mean").click()
    glossary = page.get_by_text("Token agreement").last
    expect(glossary).to_be_visible()
    for term in ("ΔNLL (forced)", "PPL ratio", "Top-1 agreement"):
        assert page.get_by_text(re.compile(re.escape(term))).count() > 0
    expect(page.locator("#latency-plot")).to_be_visible()
    assert "1.000000" not in page.locator("#latency-plot").inner_text()


def test_ov_genai_shows_the_sizes_it_used_and_no_evictions(page):
    page.locator("#policy input").click()
    page.get_by_role("option", name=re.compile(r"^ov-genai — ")).click()
    set_field(page, "max-new-tokens", 60)
    status = _generate(page)
    label = page.locator("#pruned-output").inner_text()
    assert re.search(r"budget 64 tokens, used as whole blocks of \d+: cache \d+", label), label
    summary = page.locator("#eviction-summary").inner_text()
    assert "not reported" in summary and "never" not in summary
    if "larger while decoding" in status:  # a larger cache is explained where it is said
        assert "whole blocks" in status


def test_a_refused_setting_stays_until_the_next_good_run_and_keeps_the_last_results(page):
    set_field(page, "max-new-tokens", 20)
    _generate(page)
    made = page.locator("#baseline-output textarea").input_value()
    assert made
    set_field(page, "prompt", " ")
    _generate(page, word="Not run")
    toasts = page.locator("[data-testid='toast-body']")
    expect(toasts).to_have_count(0, timeout=30000)  # the toast goes ...
    assert "Not run: the prompt is empty" in status_of(page)  # ... the message stays
    assert "from the run before" in status_of(page)
    assert page.locator("#baseline-output textarea").input_value() == made  # nothing is lost
    expect(page.locator("#baseline-output")).not_to_contain_text("Error")
    expect(page.locator("#latency-plot")).to_be_visible()
    set_field(page, "prompt", "What is the capital of France?")
    status = _generate(page)
    assert "Not run" not in status and page.locator("#baseline-output textarea").input_value()


def test_a_1000_token_run_keeps_the_page_short_and_responsive(page):
    set_field(page, "prompt", "Count from 1 to 1000, one number per line.")
    set_field(page, "max-new-tokens", 1000)
    page.evaluate(WATCH_STATUS)
    status = _generate(page, timeout_s=400)
    tokens = re.search(r"baseline (\d+)", page.locator("#metrics").inner_text() + status)
    counts = [n for _, n in page.evaluate("window.statusLog")]
    assert len(counts) > 5 and counts == sorted(counts), counts  # the status followed the run to its end
    # the page still paints: the next animation frame comes (the event, not a time limit)
    assert page.evaluate("() => new Promise(r => requestAnimationFrame(() => r(1)))") == 1
    view = page.locator("#eviction-view").bounding_box()
    assert view["height"] <= 450, view  # scrolls inside its own box
    assert page.evaluate("document.documentElement.scrollHeight") < 4000
    assert page.locator("#eviction-view").get_by_text(re.compile("evicted")).count() > 0
    assert tokens is not None or "Done" in status


def test_the_terminal_names_our_share_option(default_app_server):
    log = default_app_server.log.read_text()
    assert "share=True" not in log and "--share" in log and f":{default_app_server.port}" in log
