"""The agreement of a policy's scores with the attention the next queries paid: top-k overlap and
Spearman's rank correlation against plain references on tiny arrays, and the full-cache observer
on the tiny Llama against an oracle that knows the attention a plain loop of the session recorded."""
from dataclasses import dataclass

import numpy as np
import pytest

from triattn.core.agreement import event_agreement, overlap, ranks, spearman
from triattn.core.config import EvictionConfig
from triattn.core.observe import observe
from triattn.openvino.model import load_model
from triattn.policies import Policy, base


def plain_ranks(xs):
    """Mean 0-based rank of each value among xs, ties averaged, by counting."""
    return [sum(y < x for y in xs) + (sum(y == x for y in xs) - 1) / 2 for x in xs]


def plain_spearman(a, b):
    ra, rb = plain_ranks(a), plain_ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    num = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    den = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return num / den if den else 0.0


def plain_top(xs, k):
    """Indices of the k highest, ties to the later index (the selection's rule)."""
    return set(sorted(range(len(xs)), key=lambda i: (xs[i], i))[-k:])


def test_docstring_example():
    a = event_agreement(np.array([[.9, .1, .5, .2]]), np.array([[.4, .1, .3, .6]]), 2)
    assert a.overlap == 0.5 and a.rank_corr == pytest.approx(0.4) and (a.k, a.n) == (2, 4)


def test_against_plain_references_on_random_arrays():
    rng = np.random.default_rng(0)
    for trial in range(30):
        n = int(rng.integers(3, 12))
        a = rng.integers(0, 4, (3, n)).astype(float)  # small integers: plenty of ties
        b = rng.normal(size=(3, n)) if trial % 2 else rng.integers(0, 3, (3, n)).astype(float)
        k = int(rng.integers(1, n))
        for lane in range(3):
            assert list(ranks(a)[lane]) == plain_ranks(list(a[lane]))
            assert spearman(a, b)[lane] == pytest.approx(plain_spearman(list(a[lane]), list(b[lane])))
            both = plain_top(list(a[lane]), k) & plain_top(list(b[lane]), k)
            assert overlap(a, b, k)[lane] == pytest.approx(len(both) / k)
        got = event_agreement(a, b, k)
        assert got.overlap == pytest.approx(np.mean([len(plain_top(list(a[i]), k) & plain_top(list(b[i]), k)) / k
                                                     for i in range(3)]))


def test_edges():
    assert spearman(np.array([1.0, 1.0, 1.0]), np.array([1.0, 2.0, 3.0])) == 0.0  # a constant side
    assert spearman(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])) == pytest.approx(-1.0)
    per_head = event_agreement(np.array([[[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]]), np.array([[[1.0, 2.0, 3.0]]]), 1)
    assert per_head.overlap == 0.5 and per_head.rank_corr == pytest.approx(0.0)  # one head right, one reversed
    with pytest.raises(ValueError, match="k must be between 1"):
        event_agreement(np.ones((1, 3)), np.ones((1, 3)), 3)


def _plain_future(model, prompt, new_tokens):
    """reports[j]: the attention decode step j's query paid each cached token (a plain loop of the
    session: whole-prompt prefill, greedy tokens)."""
    s = model.new_session()
    s.reset()
    s.reserve(len(prompt) + new_tokens + 1)
    s.track_attention(True)
    logits, _, _ = s.forward(np.array(prompt), np.arange(len(prompt)), None, False, False)
    reports = {}
    for j in range(1, new_tokens):
        logits, _, _ = s.forward(np.array([int(np.argmax(logits))]), np.array([len(prompt) + j - 1]), None, False,
                                 False)
        reports[j] = s.attention().astype(np.float64)
    s.close()
    return reports


@dataclass(frozen=True)
class Oracle(Policy):
    """Scores each token with the attention the next `steps` queries will pay it (from a record)."""
    name: str = "oracle"
    reports: object = None
    steps: int = 4
    prompt_len: int = 0
    wrong_layers: tuple = ()  # layers scored the other way round (they must not be compared)
    needs_keys = False

    def score(self, keys, positions, ctx):
        n, first = positions.shape[-1], ctx.query_position - self.prompt_len + 1
        future = np.zeros(positions.shape)  # a cut too near the run's end is scored but never compared
        for j in range(first, first + self.steps):
            future += self.reports[j][:, :n] if j in self.reports else 0.0
        future[list(self.wrong_layers)] *= -1
        return future


def test_observer_against_an_oracle_of_the_next_steps(model_dir, monkeypatch):
    """A policy that knows the next 4 steps' attention (recorded by a plain loop) agrees fully at every
    cut; the cuts come where a pruned run's would (cache at budget + interval - 1, then each interval).
    On gpt-oss only its full-attention layers count (a sliding window's queries never see the older
    tokens): there the oracle scores its sliding-window layers the wrong way round, unseen."""
    model = load_model(model_dir, "CPU", "f32", form="paged")
    prompt, new, steps = list(range(3, 63)), 60, 4
    reports = _plain_future(model, prompt, new)
    sliding = tuple(i for i, w in enumerate(model.info.sliding_windows) if w)
    monkeypatch.setitem(base._REGISTRY, "oracle", Oracle(reports=reports, steps=steps, prompt_len=len(prompt),
                                                         wrong_layers=sliding))
    e = EvictionConfig(policy="oracle", budget=40, recent_window=8, sink_tokens=4, prune_interval=8)
    knorm = EvictionConfig(policy="knorm", budget=40, recent_window=8, sink_tokens=4, prune_interval=8)
    [events, other] = observe(model.new_session(), model.info, prompt, [e, knorm], new, steps=steps)
    # the cache holds 60 + index - 1 before step `index`; cuts at 60 (>= 47), then every 8, while 4 steps remain
    cuts = [n for n in range(60, 60 + new - 1, 8) if n - 60 + 1 + steps - 1 <= new - 1]
    assert len(events) == len(other) == len(cuts)
    for ev, n in zip(events, cuts):
        assert (ev.n, ev.k) == (n - 4 - 8, 40 - 1 - 4 - 8)
        assert ev.overlap == 1.0 and ev.rank_corr == pytest.approx(1.0)
    assert all(0 <= ev.overlap <= 1 and -1 <= ev.rank_corr <= 1 for ev in other)
    assert any(ev.overlap < 1 for ev in other)  # keys alone do not know the future exactly


def test_observer_needs_the_paged_form(llama_dir):
    model = load_model(llama_dir, "CPU", "f32")  # the stateful form reports no attention
    with pytest.raises(ValueError, match="only the paged cache form reports"):
        observe(model.new_session(), model.info, [3, 4, 5], [EvictionConfig(budget=40)], 10)
