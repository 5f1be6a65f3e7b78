"""The running app (`python app.py`, driven by gradio_client): every bad input is a clear error and
the next request is served; concurrent visitors get only their own results; a cancelled run
leaves nothing behind; the hub box takes hub ids only; no file or secret leaks."""
import re
import urllib.error
import urllib.request

import pytest
from bad_input import PAGE_CASES, fill
from conftest import ROOT, SECRET

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

PROMPTS = ["def read_lines(path):", "class Stack:", "What are the advantages of OpenVINO?"]


def _args(model, prompt="def read_lines(path):", budget=24, recent=4, sinks=2, interval=3, max_new=40,
          policy="knorm", evict="hard", device="CPU", temperature=0.0, seed=0):
    return (prompt, model, device, policy, evict, budget, recent, sinks, interval, max_new, temperature, seed,
            "policy")


@pytest.fixture(scope="module")
def client(app_server):
    return Client(app_server.url, verbose=False)


@pytest.fixture(scope="module")
def solo(client, gptoss_dir):
    """Each prompt's result when it runs alone (greedy, so it is the same every time)."""
    return {p: client.predict(*_args(str(gptoss_dir.resolve()), prompt=p), api_name="/generate") for p in PROMPTS}


def _texts(out):
    return out[0]["value"], out[1]["value"]


def _tokens_column(out):
    table = out[4]
    return [row[table["headers"].index("Tokens")] for row in table["data"][:2]]


@pytest.mark.parametrize("case", PAGE_CASES, ids=[c.id for c in PAGE_CASES])
def test_bad_input_is_a_clear_error_and_the_next_request_is_served(client, app_server, gptoss_dir, broken_models,
                                                                   solo, case):
    """The shared bad-input matrix (bad_input.py), as the page takes it: Gradio's own refusals of
    values the page cannot send (outside a menu's choices or a slider's range) log a traceback."""
    change = {k: fill(v, broken_models) for k, v in case.page.items()}
    log_start = len(app_server.log.read_text())
    with pytest.raises(AppError, match=re.escape(case.page_message or case.message)) as e:
        client.predict(*_args(**{"model": str(gptoss_dir.resolve()), **change}), api_name="/generate")
    assert "\n" not in str(e.value).strip()
    out = client.predict(*_args(str(gptoss_dir.resolve()), prompt=PROMPTS[0]), api_name="/generate")
    assert out[2].startswith("**Done") and _texts(out) == _texts(solo[PROMPTS[0]])
    if case.ours:  # a user's mistake is not a crash, not even in the log
        assert "Traceback" not in app_server.log.read_text()[log_start:]


@pytest.mark.parametrize("name, message", [
    ("", "enter a Hugging Face model id"),
    ("not an id!", "not a model id"),
    ("{model}", "is not a Hugging Face model id: only hub ids"),  # a real export the app was not started with
    ("./.cache/test-models/llama-tiny", "is not a Hugging Face model id: only hub ids"),
    ("../../etc", "is not a Hugging Face model id: only hub ids"),
    ("~/.cache", "is not a Hugging Face model id: only hub ids"),
    ("tests/conftest.py", "cannot reach the model hub|holds no OpenVINO export|not found on the hub"),
    ("triattn-tests/no-such-model-5c1e", "cannot reach the model hub|not found on the hub"),
])
def test_the_hub_box_takes_hub_ids_only(client, app_server, llama_dir, name, message):
    name = name.replace("{model}", str(llama_dir.resolve()))
    with pytest.raises(Exception, match=message) as e:
        client.predict(name, api_name="/download")
    assert SECRET not in str(e.value)
    # the export typed into the box was not opened: it cannot be chosen afterwards
    with pytest.raises(Exception, match="not in the list of choices"):
        client.predict(*_args(str(llama_dir.resolve())), api_name="/generate")


def test_three_visitors_at_once_each_get_their_own_results(app_server, gptoss_dir, solo):
    assert len({_texts(o) for o in solo.values()}) == len(PROMPTS), "prompts must give different outputs"
    clients = [Client(app_server.url, verbose=False) for _ in PROMPTS]
    jobs = [c.submit(*_args(str(gptoss_dir.resolve()), prompt=p), api_name="/generate")
            for c, p in zip(clients, PROMPTS)]
    finals = [job.result(timeout=120) for job in jobs]
    for prompt, job, final in zip(PROMPTS, jobs, finals):
        assert final[2].startswith("**Done")
        assert _texts(final) == _texts(solo[prompt]) and _tokens_column(final) == _tokens_column(solo[prompt])
        for partial in job.outputs():  # nothing of another visitor's text shows up while streaming either
            assert all(t.startswith(p) for p, t in zip(_texts(partial), _texts(final)))


def test_a_cancelled_run_does_not_affect_the_next(client, app_server, gptoss_dir, solo):
    job = client.submit(*_args(str(gptoss_dir.resolve()), budget=64, recent=16, sinks=4, interval=16, max_new=4000),
                        api_name="/generate")
    app_server.wait_until(lambda: job.outputs() and job.outputs()[-1][1]["value"], "the first streamed tokens")
    job.cancel()
    out = client.predict(*_args(str(gptoss_dir.resolve()), prompt=PROMPTS[1]), api_name="/generate")
    assert out[2].startswith("**Done") and _texts(out) == _texts(solo[PROMPTS[1]])
    assert _tokens_column(out) == _tokens_column(solo[PROMPTS[1]])


@pytest.mark.parametrize("path", ["/etc/passwd", "README.md", "app.py", str(ROOT / "app.py"),
                                  ".cache/test-models/gpt-oss-tiny/config.json", "../../../../etc/passwd"])
def test_the_server_serves_no_local_files(app_server, path):
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{app_server.url}gradio_api/file={path}", timeout=10)
    assert e.value.code == 403 or (".." in path and e.value.code == 404)  # refused, not merely missing


def test_the_secret_token_is_never_logged(client, app_server):
    with pytest.raises(AppError):
        client.predict("triattn-tests/no-such-model-5c1e", api_name="/download")
    assert SECRET not in app_server.log.read_text()
