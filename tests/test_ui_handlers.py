"""The page's handlers called directly (no server): Stop and a closed event free the infer requests,
each visitor's state is their own, and a large model without calibration is a clear error."""
import copy
import shutil

import pytest

gr = pytest.importorskip("gradio")

from triattn.core import calibration  # noqa: E402
from triattn.web.choices import Catalog  # noqa: E402
from triattn.openvino.model import load_model  # noqa: E402
from triattn.web.ui import FORM, RunControl, compare, request_stop  # noqa: E402


def _start(catalog, model_dir, control, policy="knorm", max_new=2000):
    return compare("def read_lines(path):", str(model_dir.resolve()), "CPU", policy, "hard", 64, 16, 4, 16, max_new,
                   0.0, 0, "policy", control, catalog=catalog)


def test_closing_the_event_frees_both_infer_requests(gptoss_dir):
    catalog, control = Catalog([str(gptoss_dir)]), RunControl()
    model = load_model(gptoss_dir, form=FORM)
    gen = _start(catalog, gptoss_dir, control)
    try:
        for _ in range(50):  # a run opens its request at its first step; the two take turns
            next(gen)
            if model.live_sessions() == 2:
                break
        assert model.live_sessions() == 2 and not control.idle.is_set()
    finally:
        gen.close()  # what Gradio does on cancel or when the tab is closed
    assert model.live_sessions() == 0 and control.idle.is_set()


def test_stop_ends_the_runs_with_final_results_and_frees_them(gptoss_dir):
    catalog, control = Catalog([str(gptoss_dir)]), RunControl()
    model = load_model(gptoss_dir, form=FORM)
    gen = _start(catalog, gptoss_dir, control)
    first = next(gen)
    request_stop_soon = control.stop.set  # request_stop would wait for the run to end: same thread here
    request_stop_soon()
    outputs = list(gen)
    final = outputs[-1]
    assert final[2].startswith("**Stopped") and len(final[1].value) >= len(first[1].value)
    assert model.live_sessions() == 0 and control.idle.is_set()
    request_stop(control)  # a Stop with nothing running returns at once
    assert control.idle.is_set()


def test_every_visitor_gets_their_own_control_and_lead_order():
    initial = RunControl()
    a, b = copy.deepcopy(initial), copy.deepcopy(initial)  # as gr.State does for each visitor
    assert a is not b and a.stop is not b.stop
    a.stop.set()
    assert not b.stop.is_set()
    assert [a.next_lead_pruned() for _ in range(3)] == [False, True, False]
    assert b.next_lead_pruned() is False  # another visitor's runs do not shift this one's order


def test_a_large_model_without_calibration_names_the_command(gptoss_dir, tmp_path, monkeypatch):
    model_dir = tmp_path / "model"
    shutil.copytree(gptoss_dir, model_dir, ignore=shutil.ignore_patterns("pytorch", "*.npz"))
    monkeypatch.setattr(calibration, "CACHE", tmp_path / "cache")  # no calibration stored elsewhere either
    monkeypatch.setattr(calibration, "AUTO_MAX_BYTES", 0)   # every model counts as large
    catalog = Catalog([str(model_dir)])
    with pytest.raises(gr.Error, match=f"python -m triattn calibrate --model-dir {model_dir}"):
        list(_start(catalog, model_dir, RunControl(), policy="triattention", max_new=5))
    assert load_model(model_dir, form=FORM).live_sessions() == 0
    out = list(_start(catalog, model_dir, RunControl(), policy="knorm", max_new=5))  # and the next run works
    assert out[-1][2].startswith("**Done")


def test_long_runs_refresh_less_often():
    """The refresh schedule on a clock of our own (exact fractions, a step every 50 ms for 3 s): text
    every 0.15 s and the table at the first text 1 s after the last; past LONG_RUN tokens text every
    0.5 s and the table every 3 s."""
    from fractions import Fraction as F
    from triattn.web.ui import Refresh
    clock = [F(t, 100) for t in range(0, 301, 5)]
    r = Refresh()
    sent = [(t, *r.due(t, long=False)) for t in clock]
    assert [t for t, text, _ in sent if text] == [F(15 * k, 100) for k in range(21)]
    assert [t for t, _, detail in sent if detail] == [0, F(105, 100), F(210, 100)]
    r = Refresh()
    sent = [(t, *r.due(t, long=True)) for t in clock]
    assert [t for t, text, _ in sent if text] == [F(k, 2) for k in range(7)]
    assert [t for t, _, detail in sent if detail] == [0, 3]


@pytest.mark.parametrize("error, line", [
    (ValueError("the prompt is empty: type one or pick an example"), "the prompt is empty: type one or pick an example"),
    (KeyError("slot"), "the arena failed: KeyError: 'slot'"),
])
def test_a_failing_handler_gives_one_line_and_leaves_the_control_ready(error, line, capsys):
    """The pair's and the arena's handlers run through RunControl.guard: what they yielded stays
    delivered, a mistake (ValueError) or a bug becomes one gr.Error line kept for the status line,
    and the control is idle again with no run attached."""
    control = RunControl()
    control.pair = object()

    def outputs():
        yield "first"
        raise error
    got = []
    with pytest.raises(gr.Error) as e:
        for out in control.guard(outputs, "the arena failed"):
            got.append(out)
    assert got == ["first"] and e.value.message == line == control.error
    assert control.idle.is_set() and control.pair is None
    assert "comparison ended" in capsys.readouterr().err


def test_a_handler_that_ends_well_leaves_no_error():
    control = RunControl()
    control.error = "an earlier failure"
    assert list(control.guard(lambda: iter(["a", "b"]), "generation failed")) == ["a", "b"]
    assert control.error == "" and control.idle.is_set()
