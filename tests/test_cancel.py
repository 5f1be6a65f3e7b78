"""Session.cancel(): a Stop from another thread makes the session's next forward raise Cancelled, and
the session runs correctly afterwards. Interleavings: cancel before a forward, from another thread
while one runs, after one, twice, and from many threads at random moments; after each, the session's
next run must match a fresh session's, on both cache forms. And a run stops between the pieces of a
long prompt."""
import random
import threading

import numpy as np
import pytest

from triattn.core.config import EvictionConfig, full_cache
from triattn.core.engine import generate
from triattn.errors import Cancelled
from triattn.openvino.model import load_model

N = 96


@pytest.fixture(scope="module", params=["stateful", "paged"])
def model(llama_dir, request):
    return load_model(llama_dir, precision="f32", form=request.param)


def _prompt(n=N):
    return np.arange(3, 3 + n) % 200 + 3, np.arange(n), np.ones(n, np.int64)


def _step():
    return np.array([5]), np.array([N]), np.ones(N + 1, np.int64)


def _reference(model):
    s = model.new_session()
    try:
        return s.forward(*_prompt())[0], s.forward(*_step())[0]
    finally:
        s.close()


def _check_reuse(session, ref):
    """A new run on the session is a fresh session's run, cache included."""
    session.reset()
    np.testing.assert_array_equal(session.forward(*_prompt())[0], ref[0])
    np.testing.assert_array_equal(session.forward(*_step())[0], ref[1])


def test_cancel_before_a_forward_stops_that_forward_only(model):
    ref, s = _reference(model), model.new_session()
    s.cancel()
    with pytest.raises(Cancelled):
        s.forward(*_prompt())
    _check_reuse(s, ref)  # the cancel was used up by the forward it stopped
    s.close()


def test_cancel_while_a_forward_runs_stops_the_next(model):
    """The cancel comes from another thread while the request runs: that forward ends normally (it is
    never interrupted), the next one raises."""
    ref, s = _reference(model), model.new_session()
    in_flight, cancelled = threading.Event(), threading.Event()
    real = s.request.infer

    def infer_after_the_cancel(*a, **kw):
        in_flight.set()
        assert cancelled.wait(30)
        return real(*a, **kw)
    s.request.infer = infer_after_the_cancel
    t = threading.Thread(target=lambda: (in_flight.wait(30), s.cancel(), cancelled.set()))
    t.start()
    np.testing.assert_array_equal(s.forward(*_prompt())[0], ref[0])
    t.join()
    s.request.infer = real
    with pytest.raises(Cancelled):
        s.forward(*_step())
    _check_reuse(s, ref)
    s.close()


def test_two_cancels_stop_one_forward(model):
    ref, s = _reference(model), model.new_session()
    s.forward(*_prompt())
    s.cancel()
    s.cancel()
    with pytest.raises(Cancelled):
        s.forward(*_step())
    _check_reuse(s, ref)
    s.close()


def test_cancel_on_a_closed_session_is_harmless(model):
    s = model.new_session()
    s.close()
    s.cancel()


def test_cancels_at_random_moments_never_break_the_session(model):
    """200 rounds, each raced by cancels from other threads at random moments: every forward either
    gives the right logits or raises Cancelled, and the session always runs correctly after."""
    ref, s = _reference(model), model.new_session()
    rng = random.Random(0)
    outcomes = {"done": 0, "cancelled": 0}
    for _ in range(200):
        timers = [threading.Timer(rng.uniform(0, 0.004), s.cancel) for _ in range(rng.choice([0, 1, 2]))]
        s.reset()
        for t in timers:
            t.start()
        try:
            np.testing.assert_array_equal(s.forward(*_prompt())[0], ref[0])
            np.testing.assert_array_equal(s.forward(*_step())[0], ref[1])
            outcomes["done"] += 1
        except Cancelled:
            outcomes["cancelled"] += 1
        for t in timers:
            t.join()
        s.reset()
        try:  # a cancel that came after the last forward stops the next one, and only that one
            s.forward(np.array([5]), np.array([0]), np.ones(1, np.int64))
        except Cancelled:
            pass
        _check_reuse(s, ref)
    s.close()
    assert outcomes["done"] > 0 and outcomes["cancelled"] > 0, outcomes  # both sides of the race were met


@pytest.mark.parametrize("eviction", [full_cache(prefill_chunk=16),
                                      EvictionConfig(policy="knorm", budget=16, recent_window=4, sink_tokens=1)],
                         ids=["baseline", "pruned"])
def test_a_stop_during_a_long_prompt_ends_the_run_before_the_next_piece(model, eviction):
    """The run reads its prompt in pieces; a cancel during the first piece ends it there: one forward."""
    s = model.new_session()
    eviction = EvictionConfig(**{**eviction.as_dict(), "prefill_chunk": 16}) if eviction.prunes else eviction
    pieces = []
    real = s.request.infer

    def infer_and_stop(inputs, **kw):
        pieces.append(inputs["input_ids"].size)
        s.cancel()  # as the page's Stop would, while this piece runs
        return real(inputs, **kw)
    s.request.infer = infer_and_stop
    with pytest.raises(Cancelled):
        next(generate(s, list(range(3, 3 + 80)), eviction, max_new_tokens=4))
    assert pieces == [16]
    s.close()
