"""The web app through its API (gradio_client), launched as `python app.py --model-dir ...`: streaming,
cancelling and the queue. Bad input, concurrency and safety are in test_app_reliability.py."""
import re

import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402


def _args(model, prompt="def read_lines(path):", budget=24, recent=4, sinks=2, interval=3, max_new=120,
          policy="knorm", evict="hard"):
    return (prompt, model, "CPU", policy, evict, budget, recent, sinks, interval, max_new, 0.0, 0, "policy")


@pytest.fixture(scope="module")
def client(app_server):
    return Client(app_server.url, verbose=False)


def test_streamed_compare_fills_both_panes_and_the_table(client, app_server, gptoss_dir):
    job = client.submit(*_args(str(gptoss_dir.resolve())), api_name="/generate")
    outputs = list(job)
    assert len(outputs) >= 2, "nothing was streamed"
    base = [o[0]["value"] for o in outputs]
    pruned = [o[1]["value"] for o in outputs]
    assert base[-1] and pruned[-1]
    assert all(b.startswith(a) for a, b in zip(base, base[1:]))  # text only grows
    assert len(set(base)) > 1 or len(set(pruned)) > 1, "text did not grow while streaming"
    final = outputs[-1]
    assert final[2].startswith("**Done")
    table = final[4]
    rows = {r[0]: dict(zip(table["headers"], r)) for r in table["data"]}
    assert set(rows) == {"baseline", "pruned", "Change"}
    assert int(rows["pruned"]["Prune events"]) > 0 and rows["baseline"]["Prune events"] == "0"
    assert int(rows["pruned"]["KV tokens"]) < int(rows["baseline"]["KV tokens"])
    assert rows["Change"]["KV tokens"].startswith("-")
    assert re.fullmatch(r"\d+\.\d% \(\d+ of \d+\)", rows["Change"]["Token agreement"])  # a share and its count
    assert rows["Change"]["ΔNLL (forced)"][0] in "+-"
    for plot in final[5:7]:  # both runs have points on both plots, which are shown once they have points
        assert plot["visible"] is True
        assert {r[1] for r in plot["value"]["data"] if r[2] is not None} == {"baseline", "pruned"}
    view = final[7]
    labels = {t["class_or_confidence"] for t in view}
    assert "evicted (some layers)" in labels or "evicted (all layers)" in labels


def test_cancelling_stops_the_generation(client, app_server, gptoss_dir):
    ended = app_server.runs_ended()
    job = client.submit(*_args(str(gptoss_dir.resolve()), budget=64, recent=16, sinks=4, interval=16,
                               max_new=4000), api_name="/generate")
    app_server.wait_until(lambda: job.outputs() and job.outputs()[-1][1]["value"], "the first streamed tokens")
    job.cancel()
    app_server.wait_until(lambda: app_server.runs_ended() > ended, "the server to end the cancelled run")
    assert job.outputs() and not job.outputs()[-1][2].startswith("**Done")


def test_one_pair_at_a_time_and_the_next_one_waits_in_line(app_server, gptoss_dir):
    first, second = Client(app_server.url, verbose=False), Client(app_server.url, verbose=False)
    long_run = first.submit(*_args(str(gptoss_dir.resolve()), budget=64, recent=16, sinks=4, interval=16,
                                   max_new=4000), api_name="/generate")
    app_server.wait_until(lambda: long_run.outputs(), "the first run to stream")
    waiting = second.submit(*_args(str(gptoss_dir.resolve()), max_new=5), api_name="/generate")
    app_server.wait_until(lambda: waiting.status().code.name == "IN_QUEUE", "the second run to join the queue")
    assert waiting.status().rank is not None and not long_run.done()
    long_run.cancel()
    assert waiting.result(timeout=30)[2].startswith("**Done")
