"""The ov-genai policy: block mapping on hand-made settings, and OpenVINO GenAI's own eviction on the
tiny models (f32, where GenAI's paged attention and our engine compute the same numbers)."""
import math

import numpy as np
import openvino as ov
import openvino_genai as og
import pytest

from triattn.openvino import genai, genaiset
from triattn.core.config import EvictionConfig, SamplingConfig
from triattn.core.engine import generate
from triattn.openvino.model import PRECISIONS, load_model
from triattn.core.quality import compare
from triattn.core.runs import run
from triattn.core.text import load_tokenizer


def cfg(budget=128, recent=32, sinks=4, **kw):
    return EvictionConfig(policy="ov-genai", budget=budget, recent_window=recent, sink_tokens=sinks, **kw)


@pytest.mark.parametrize("block, sinks, recent, budget, expected", [
    (32, 4, 32, 128, (32, 32, 128)),     # sinks round up to one block; the rest are whole blocks already
    (32, 0, 48, 200, (32, 64, 192)),     # 0 -> one block (GenAI needs > 0); 48 = 1.5 blocks -> 2; 200 -> 6 blocks
    (32, 40, 47, 208, (32, 32, 224)),    # 40 -> 1 block, 47 -> 1 block, 208 = 6.5 blocks -> 7
    (32, 4, 16, 64, (32, 32, 96)),       # 64 leaves no evictable block between 32 + 32: raised to 96
    (16, 4, 32, 100, (16, 32, 96)),      # GPU blocks of 16: 4 -> 16, 100 = 6.25 blocks -> 96
])
def test_map_settings_to_block_multiples(block, sinks, recent, budget, expected):
    used = genaiset.map_settings(cfg(budget, recent, sinks), block)
    assert (used["start_size"], used["recent_size"], used["max_cache_size"]) == expected
    assert used["evictable_size"] == expected[2] - expected[0] - expected[1] > 0
    assert used["kv_bound_tokens"] == expected[2] + block
    assert used["requested"] == {"sink_tokens": sinks, "recent_window": recent, "budget": budget}


def test_mapped_settings_are_accepted_by_genai():
    for sinks, recent, budget in [(0, 0, 2), (4, 16, 21), (31, 33, 65), (100, 200, 301), (4, 32, 4096)]:
        used = genaiset.map_settings(cfg(budget, recent, sinks), 32)
        sizes = [used[k] for k in ("start_size", "recent_size", "max_cache_size")]
        assert all(s > 0 and s % 32 == 0 for s in sizes)
        og.CacheEvictionConfig(*sizes, og.AggregationMode.NORM_SUM)   # raises if invalid


def test_block_size_by_device():
    assert genaiset.block_size("CPU") == 32 and genaiset.block_size("GPU.1") == 16
    with pytest.raises(ValueError, match="runs on CPU or GPU"):
        genaiset.block_size("NPU")


def test_config_gives_ov_genai_its_own_mechanism():
    assert cfg(evict="zero").evict == "blocks"
    assert cfg().as_dict()["genai_aggregation"] == "norm_sum"
    assert "genai_aggregation" not in EvictionConfig(policy="knorm").as_dict()
    with pytest.raises(ValueError, match="unknown GenAI aggregation"):
        cfg(genai_aggregation="max")


def _setup(model_dir):
    return load_model(model_dir, "CPU", "f32"), load_tokenizer(model_dir)


def test_large_cache_reproduces_the_baseline(model_dir, prompt):
    """max_cache_size above prompt + output: nothing is evicted, so greedy tokens and text are ours,
    and the occupancy read from GenAI's cache usage is exactly one slot per token, in blocks."""
    model, tok = _setup(model_dir)
    base = run(model, tok, prompt, EvictionConfig(policy="none"), max_new_tokens=100)
    mine = run(model, tok, prompt, cfg(budget=512), max_new_tokens=100)
    assert mine.token_ids == base.token_ids and mine.text == base.text
    for r in mine.records:
        written = len(prompt) + r.index
        assert r.kv_live == written and r.kv_len == 32 * math.ceil(written / 32)
        assert r.prune is None
    assert mine.used["max_cache_size"] == 512 and mine.used["kv_bytes_per_token"] == model.kv_bytes_per_token
    assert mine.metrics.prune_events is None and mine.metrics.prune_time_s is None


def test_small_cache_stays_bounded_and_evicts_whole_blocks(llama_dir):
    """A 200-token prompt, budget 64 (-> max_cache_size 96): prefill and the first decode step hold the
    whole prompt; from then on the cache stays within max_cache_size + block, and it shrinks only by
    whole blocks."""
    model, tok = _setup(llama_dir)
    prompt = [3 + i % 400 for i in range(200)]
    r = run(model, tok, prompt, cfg(budget=64, recent=16), max_new_tokens=120)
    bound = r.used["kv_bound_tokens"]
    assert r.used["max_cache_size"] == 96 and bound == 128
    live = [x.kv_live for x in r.records]
    assert live[:2] == [200, 201]
    assert all(x.kv_live <= x.kv_len <= bound for x in r.records[2:])
    assert max(live[2:]) == bound                 # it fills up to the bound before each eviction
    for a, b in zip(live, live[1:]):
        assert b - a == 1 or (a + 1 - b) % 32 == 0 and b < a
    assert r.metrics.kv_tokens_max == 224         # the prompt's blocks, during prefill


def test_same_tokens_as_llm_pipeline(llama_dir, prompt):
    """The step loop gives what LLMPipeline(scheduler_config=...) gives, eviction included."""
    model, tok = _setup(llama_dir)
    e = cfg(budget=64, recent=16)
    mine = run(model, tok, prompt, e, max_new_tokens=150)
    used = genaiset.settings(model, e)
    pipe = og.LLMPipeline(llama_dir, "CPU", scheduler_config=genaiset.scheduler_config(used, model.info.max_context),
                          **PRECISIONS["f32"])
    config = genaiset.generation_config(SamplingConfig(), 150, model.info.eos_token_ids, False)
    theirs = pipe.generate(ov.Tensor(np.array([prompt], np.int64)), config)
    assert mine.token_ids == list(theirs.tokens[0])
    live = [x.kv_live for x in mine.records]
    assert any(b < a for a, b in zip(live, live[1:]))   # it did evict


def test_sampling_follows_the_seed(llama_dir, prompt):
    model, tok = _setup(llama_dir)
    sample = lambda seed: run(model, tok, prompt, cfg(), SamplingConfig(temperature=1.0, seed=seed),  # noqa: E731
                              max_new_tokens=30).token_ids
    assert sample(3) == sample(3) != sample(4)


def test_abandoned_run_frees_the_pipeline(llama_dir, prompt):
    model, _ = _setup(llama_dir)
    full = [r.token for r in genai.generate(model, prompt, cfg(), max_new_tokens=40)]
    steps = genai.generate(model, prompt, cfg(), max_new_tokens=40)
    assert [next(steps).token for _ in range(5)] == full[:5]
    steps.close()
    pl = genai.pipeline(model, genaiset.settings(model, cfg()))
    assert pl.lock.acquire(timeout=5)
    pl.lock.release()
    assert not pl.pipe.has_non_finished_requests()
    assert [r.token for r in genai.generate(model, prompt, cfg(), max_new_tokens=40)] == full


def test_no_teacher_forcing(llama_dir, prompt):
    model, _ = _setup(llama_dir)
    with pytest.raises(ValueError, match="cannot be teacher-forced"):
        genai.generate(model, prompt, cfg(), force=[1, 2, 3])
    with pytest.raises(ValueError, match="own runtime"):
        next(generate(model.new_session(), prompt, cfg()))
    q = compare(model.new_session(), prompt, [5, 6, 7, 8], [5, 6, 9, 8], cfg())
    assert (q.agreement, q.first_divergence, q.divergence_tokens) == (0.75, 2, (7, 9))
    assert q.delta_nll is None and q.ppl_ratio is None and q.forced_top1_agreement is None


def test_prompt_too_long(llama_dir):
    model, _ = _setup(llama_dir)
    with pytest.raises(ValueError, match="exceed the model's context"):
        genai.generate(model, [3] * 4000, cfg(), max_new_tokens=200)


def test_logprobs_match_our_engine(llama_dir, prompt):
    """With nothing evicted, GenAI's log p(token) is ours (f32)."""
    model, _ = _setup(llama_dir)
    theirs = [r.logprob for r in genai.generate(model, prompt, cfg(budget=512), max_new_tokens=20, logprobs=True)]
    ours = [r.logprob for r in generate(model.new_session(), prompt, EvictionConfig(policy="none"),
                                        max_new_tokens=20, logprobs=True)]
    assert theirs == pytest.approx(ours, abs=1e-4)


@pytest.mark.parametrize("past_start", [1, 4, 7, 8, 20])
def test_prompt_just_past_the_start_area_runs(llama_dir, past_start):
    """A prompt 1 to 7 tokens longer than GenAI's start area once aborted with "new_scores_size >=
    num_snapkv_scores": the SnapKV window is narrowed to the tokens there are."""
    model = load_model(llama_dir, "CPU")
    used = {}
    ids = list(range(3, 3 + 32 + past_start))
    records = list(genai.generate(model, ids, cfg(96, 32, 32), max_new_tokens=80, used=used))
    assert len(records) == 80
    assert used["snapkv_window"] == min(past_start, genaiset.SNAPKV_WINDOW)
    assert max(r.kv_len for r in records) <= used["kv_bound_tokens"]


def test_a_failure_inside_genai_is_one_line_and_the_next_run_works(llama_dir, monkeypatch):
    """GenAI's own check failing (here: its default SnapKV window on a prompt 4 tokens past the start
    area) becomes one RuntimeFailure line; the pipeline is dropped and the next run succeeds."""
    from triattn.errors import RuntimeFailure
    model = load_model(llama_dir, "CPU")
    ids = list(range(3, 3 + 36))
    with monkeypatch.context() as m:
        m.setattr(genaiset, "snapkv_window", lambda prompt_len, start: genaiset.SNAPKV_WINDOW)
        with pytest.raises(RuntimeFailure, match="^OpenVINO GenAI failed while generating: internal check failed: "
                                                 "new_scores_size >= num_snapkv_scores$"):
            list(genai.generate(model, ids, cfg(96, 32, 32), max_new_tokens=20))
    assert len(list(genai.generate(model, ids, cfg(96, 32, 32), max_new_tokens=20))) == 20
