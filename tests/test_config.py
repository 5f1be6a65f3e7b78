"""Settings: invalid ones raise one clear ValueError; a preset fills only what is not given."""
import argparse

import pytest

from triattn.cli.common import add_eviction_args, eviction_from
from triattn.core.config import EvictionConfig, SamplingConfig, check_max_new_tokens
from triattn.policies import get_policy


@pytest.mark.parametrize("kw, message", [
    (dict(policy="nope"), "unknown policy"),
    (dict(evict="delete"), "unknown eviction mechanism"),
    (dict(budget=0), "budget must be at least 2"),
    (dict(budget=12.5), "budget must be a whole number"),
    (dict(budget="64"), "budget must be a whole number"),
    (dict(recent_window=-1), "recent_window must be at least 0"),
    (dict(prune_interval=0), "prune_interval must be at least 1"),
    (dict(budget=36, recent_window=32, sink_tokens=4), "must exceed sink tokens"),
])
def test_eviction_rejects(kw, message):
    with pytest.raises(ValueError, match=message):
        EvictionConfig(**kw)


@pytest.mark.parametrize("kw, message", [
    (dict(temperature=-1), "temperature"), (dict(temperature=float("nan")), "temperature"),
    (dict(top_p=0), "top_p"), (dict(top_k=-2), "top_k"), (dict(seed=-1), "seed"),
])
def test_sampling_rejects(kw, message):
    with pytest.raises(ValueError, match=message):
        SamplingConfig(**kw)


def test_max_new_tokens_is_capped():
    assert check_max_new_tokens(10) == 10
    for bad in (0, -5, 10**6, 2.5):
        with pytest.raises(ValueError, match="max_new_tokens"):
            check_max_new_tokens(bad)


def test_defaults_are_valid_and_baseline_does_not_prune():
    assert EvictionConfig().prunes and not EvictionConfig(policy="none").prunes


def test_presets_have_the_reference_settings_and_explicit_options_win():
    """paper: the reference's paper path (prompt kept, no window, no sinks, prune at budget + 128 back
    to the budget); vllm: its vLLM runtime (128 newest kept, prompt prunable). Both per KV head."""
    p = argparse.ArgumentParser()
    add_eviction_args(p)
    fields = ("policy", "evict", "budget", "prune_interval", "recent_window", "sink_tokens", "keep_prompt")
    paper = eviction_from(p.parse_args(["--preset", "triattention-paper"]))
    assert tuple(getattr(paper, f) for f in fields) == ("triattention-head", "hard", 2048, 128, 0, 0, True)
    vllm = eviction_from(p.parse_args(["--preset", "triattention-vllm"]))
    assert tuple(getattr(vllm, f) for f in fields) == ("triattention-head", "hard", 2048, 128, 128, 0, False)
    assert get_policy(paper.policy).per_kv_head
    cfg = eviction_from(p.parse_args(["--preset", "triattention-paper", "--budget", "300", "--sink-tokens", "2",
                                      "--no-keep-prompt"]))
    assert (cfg.policy, cfg.budget, cfg.sink_tokens, cfg.recent_window, cfg.keep_prompt) == \
        ("triattention-head", 300, 2, 0, False)
    assert eviction_from(p.parse_args([])) == eviction_from(p.parse_args(["--budget", "128"]))
    assert not eviction_from(p.parse_args([])).keep_prompt


def test_per_kv_head_policy_needs_compaction():
    for evict in ("mask", "zero"):
        with pytest.raises(ValueError, match=r"per KV head, which only hard eviction can do .*--policy triattention "):
            EvictionConfig(policy="triattention-head", evict=evict)
        assert EvictionConfig(policy="triattention", evict=evict).evict == evict


def test_prune_interval_defaults_grow_with_the_budget():
    """Each prune event rewrites the whole cache, so the default interval grows with the budget."""
    assert [EvictionConfig(budget=b).prune_interval for b in (64, 128, 256, 2048)] == [16, 16, 32, 256]
    assert EvictionConfig(budget=256, prune_interval=1).prune_interval == 1


def test_a_policy_carries_its_own_settings():
    """kvpress-style: the run's policy object holds the settings given for it; unknown or invalid
    ones are one clear error."""
    cfg = EvictionConfig(policy="triattention", policy_options=(("offset_max", 4096),))
    assert cfg.policy_object().offset_max == 4096 and cfg.policy_object().name == "triattention"
    assert EvictionConfig(policy="triattention").policy_object().offset_max == 65536
    with pytest.raises(ValueError, match="policy 'knorm' has no setting offset_max; it has no settings"):
        EvictionConfig(policy="knorm", policy_options=(("offset_max", 4096),))
    with pytest.raises(ValueError, match="offset_max must be a whole number >= 1"):
        EvictionConfig(policy="triattention-head", policy_options=(("offset_max", 0),))


def test_policy_options_from_the_command_line():
    p = argparse.ArgumentParser()
    add_eviction_args(p)
    args = p.parse_args(["--policy", "triattention", "--policy-option", "offset_max=1024"])
    assert eviction_from(args).policy_options == (("offset_max", 1024),)
    with pytest.raises(ValueError, match="NAME=VALUE"):
        eviction_from(p.parse_args(["--policy-option", "offset_max"]))
