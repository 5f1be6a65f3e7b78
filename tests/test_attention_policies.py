"""Policies that read the attention the model paid (h2o, tova, snapkv) and query-aware prompt
selection: the attention log against hand-worked sums, the paged form's report against a plain
softmax of the model's own queries and keys, budget >= length exact, and refusals on the stateful form."""
import numpy as np
import pytest


from triattn.core.attention import AttentionLog
from triattn.core.config import EvictionConfig
from triattn.core.engine import generate
from triattn.errors import ModelError
from triattn.openvino.model import load_model
from triattn.policies import ScoreContext, get_policy
from triattn.policies.attention import max_pool

ATTENTION = ["h2o", "tova", "snapkv", "genai-like"]


def test_log_views_as_drawn_in_its_docstring():
    log = AttentionLog(1, window=2)
    log.add(np.array([[.5, .3, .2]]))
    log.add(np.array([[.4, .1, .1, .4]]))
    np.testing.assert_allclose(log.total, [[.9, .4, .3, .4]])
    np.testing.assert_allclose(log.last, [[.4, .1, .1, .4]])
    np.testing.assert_allclose(log.window, [[.9, .4, .3, .4]])
    log.add(np.array([[0, 0, 0, .5, .5]]))  # a third query: the first report leaves the window
    np.testing.assert_allclose(log.window, [[.4, .1, .1, .9, .5]])
    log.compact(np.array([[True, False, False, True, True]]))
    np.testing.assert_allclose(log.total, [[.9, .9, .5]])
    np.testing.assert_allclose(log.window, [[.4, .9, .5]])


def test_a_report_of_many_queries_fills_the_window_alone():
    log = AttentionLog(1, window=4)
    log.add(np.ones((1, 3)), queries=1)
    log.add(np.full((1, 6), 2.0), queries=4)  # a prompt piece's last 4 queries
    np.testing.assert_allclose(log.window, np.full((1, 6), 2.0))


def test_max_pool_against_a_plain_loop():
    x = np.random.default_rng(0).standard_normal((2, 11))
    ref = np.array([[max(row[max(0, i - 3):i + 4]) for i in range(11)] for row in x])
    np.testing.assert_array_equal(max_pool(x, 7), ref)


def test_scores_read_the_views():
    log = AttentionLog(1, window=1)
    log.add(np.array([[.1, .7, .2]]))
    log.add(np.array([[.6, .1, .1, .2]]))
    ctx = ScoreContext(4, attention=log)
    pos = np.arange(4)[None]
    np.testing.assert_allclose(get_policy("h2o").score(None, pos, ctx), [[.7, .8, .3, .2]])
    np.testing.assert_allclose(get_policy("tova").score(None, pos, ctx), [[.6, .1, .1, .2]])
    with pytest.raises(ValueError, match="paged form"):
        get_policy("tova").score(None, pos, ScoreContext(4))


def _tokens(model, prompt, eviction, n=24):
    s = model.new_session()
    try:
        return [r.token for r in generate(s, prompt, eviction, max_new_tokens=n)]
    finally:
        s.close()


@pytest.mark.parametrize("policy", ATTENTION)
def test_budget_above_length_is_the_baseline(model_dir, prompt, policy):
    model = load_model(model_dir, precision="f32", form="paged")
    base = _tokens(model, prompt, EvictionConfig(policy="none"))
    assert _tokens(model, prompt, EvictionConfig(policy=policy, budget=512, recent_window=8, sink_tokens=2)) == base
    assert _tokens(model, prompt, EvictionConfig(policy="knorm", budget=512, recent_window=8, sink_tokens=2,
                                                 prompt_select="query")) == base


@pytest.mark.parametrize("policy", ATTENTION + ["triattention"])
def test_pruned_runs_keep_the_budget(model_dir, policy):
    model = load_model(model_dir, precision="f32", form="paged")
    prompt = list(range(3, 83))  # 80 tokens: cut while read, then while decoding
    for select in ("policy", "query"):
        ev = EvictionConfig(policy=policy, budget=32, recent_window=8, sink_tokens=2, prune_interval=4,
                            prefill_chunk=24, prompt_select=select)
        s = model.new_session()
        try:
            recs = list(generate(s, prompt, ev, max_new_tokens=30))
        finally:
            s.close()
        assert recs[0].prune is not None and recs[0].kv_live == 31
        assert max(r.kv_live for r in recs[1:]) <= 32 + 4 - 1


def test_attention_report_against_a_plain_softmax(llama_dir):
    """The last query's attention over the cache, summed over query heads, from the stateful form's
    own queries and keys (instrumented outputs), equals the paged form's report, per layer."""
    paged = load_model(llama_dir, precision="f32", form="paged").new_session()
    stateful = load_model(llama_dir, precision="f32", queries=True)
    s = stateful.new_session()
    ids = np.arange(3, 23)
    _, keys, _ = s.forward(ids, np.arange(20), np.ones(20, np.int64))
    q = s.queries()[:, :, -1]  # [layers, q_heads, D]
    group = q.shape[1] // keys.shape[1]
    logits = np.einsum("lhd,lhtd->lht", q, np.repeat(keys[:, :, :20], group, axis=1)) / np.sqrt(q.shape[-1])
    p = np.exp(logits - logits.max(-1, keepdims=True))
    ref = (p / p.sum(-1, keepdims=True)).sum(1)
    paged.track_attention(True)
    paged.forward(ids, np.arange(20), window=1)
    np.testing.assert_allclose(paged.attention(), ref, atol=2e-4)
    paged.track_attention(False)  # the form without score outputs: the same cache, no report
    paged.forward(np.array([23]), np.array([20]))
    with pytest.raises(ModelError, match="did not ask for attention"):
        paged.attention()
    paged.close()
    s.close()


@pytest.mark.parametrize("kw", [dict(policy="h2o"), dict(policy="knorm", prompt_select="query")])
def test_the_stateful_form_refuses_in_one_line(llama_dir, prompt, kw):
    model = load_model(llama_dir, precision="f32", form="stateful")
    with pytest.raises(ValueError, match="only the paged cache form"):
        _tokens(model, prompt, EvictionConfig(budget=16, recent_window=4, sink_tokens=2, **kw))
    with pytest.raises(ValueError, match="not apply"):
        EvictionConfig(policy="ov-genai", prompt_select="query")


def test_seen_counts_causal_queries_and_genai_like_scores_blocks():
    log = AttentionLog(1, window=4)
    log.add(np.array([[4.0, 3.0, 2.0, 1.0]]), queries=4)  # a piece of 4, all of its queries summed
    np.testing.assert_array_equal(log.seen, [[4, 3, 2, 1]])  # token j is seen by the queries from j on
    log.add(np.array([[0.0, 0.0, 0.0, 0.0, 2.0]]))
    np.testing.assert_array_equal(log.seen, [[5, 4, 3, 2, 1]])
    norm = [4 / 5, 3 / 4, 2 / 3, 1 / 2, 2 / 1]  # total / seen
    policy = get_policy("genai-like")
    ctx, pos = ScoreContext(5, attention=log), np.arange(5)[None]
    np.testing.assert_allclose(policy.score(None, pos, ctx), [[sum(norm) / 5] * 5])  # one block of 32: its mean
    import dataclasses
    pairs = dataclasses.replace(policy, block=2).score(None, pos, ctx)
    a, b = (norm[0] + norm[1]) / 2, (norm[2] + norm[3]) / 2
    np.testing.assert_allclose(pairs, [[a, a, b, b, norm[4]]])


@pytest.mark.parametrize("kw", [dict(policy="snapkv"), dict(policy="knorm", prompt_select="query")])
def test_mask_eviction_is_refused_before_any_run(kw):
    with pytest.raises(ValueError, match="mask eviction runs on the stateful form"):
        EvictionConfig(evict="mask", **kw)
