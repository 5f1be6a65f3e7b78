"""Quality formulas on hand-made cases, and the no-eviction identity on a tiny model."""
import math

import numpy as np
import pytest

from triattn.core.config import EvictionConfig
from triattn.core.engine import StepRecord, generate
from triattn.openvino.model import load_model
from triattn.core.quality import compare, first_divergence, forced_scores, token_agreement
from triattn.core.sampling import log_softmax


def test_token_agreement_counts_over_the_longer_run():
    """baseline 1 2 3 4, pruned 1 2 9 4 5 -> same at 0,1,3 of 5 positions; first divergence at 2,
    by the same rule the page uses (first_divergence, with both runs ended)."""
    assert token_agreement([1, 2, 3, 4], [1, 2, 9, 4, 5]) == 3 / 5
    assert first_divergence([1, 2, 3, 4], [1, 2, 9, 4, 5]).index == 2
    assert token_agreement([1, 2], [1, 2]) == 1.0 and first_divergence([1, 2], [1, 2]) is None
    assert token_agreement([], []) == 1.0
    assert first_divergence([1, 2], [1, 2, 3]).index == 2  # one run ended, the other went on


def test_forced_scores_from_hand_made_logits():
    """Two steps over a 3-token vocabulary with logits chosen so the softmax is easy to read:
    step 0 logits [0, 0, 0] -> p(token 1) = 1/3; step 1 logits [ln 2, 0, 0] -> p(token 0) = 1/2."""
    logits = [np.zeros(3), np.array([math.log(2), 0.0, 0.0])]
    recs = []
    for i, (lg, tok) in enumerate(zip(logits, [1, 0])):
        recs.append(StepRecord(i, tok, 0.0, 0, 0, logprob=float(log_softmax(lg)[tok]), top1=int(np.argmax(lg))))
    nll, top = forced_scores(recs)
    np.testing.assert_allclose(nll, [math.log(3), math.log(2)])
    assert top.tolist() == [0, 0]


@pytest.mark.parametrize("evict", ["hard", "mask", "zero"])
def test_budget_above_sequence_gives_agreement_one_and_zero_delta(gptoss_dir, prompt, evict):
    s = load_model(gptoss_dir).new_session()
    base = [r.token for r in generate(s, prompt, EvictionConfig(policy="none"), max_new_tokens=30)]
    cfg = EvictionConfig(policy="knorm", evict=evict, budget=100, recent_window=4)
    pruned = [r.token for r in generate(s, prompt, cfg, max_new_tokens=30)]
    q = compare(s, prompt, base, pruned, cfg)
    assert q.agreement == 1.0 and q.first_divergence is None
    assert q.delta_nll == 0.0 and q.ppl_ratio == 1.0 and q.forced_top1_agreement == 1.0


def test_small_budget_costs_quality(gptoss_dir, prompt):
    s = load_model(gptoss_dir).new_session()
    base = [r.token for r in generate(s, prompt, EvictionConfig(policy="none"), max_new_tokens=40)]
    cfg = EvictionConfig(policy="knorm-seed", evict="hard", budget=8, recent_window=2, sink_tokens=0, prune_interval=1)
    pruned = [r.token for r in generate(s, prompt, cfg, max_new_tokens=40)]
    q = compare(s, prompt, base, pruned, cfg)
    assert q.delta_nll != 0.0 and q.forced_top1_agreement < 1.0
