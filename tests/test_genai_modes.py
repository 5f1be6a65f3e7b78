"""OpenVINO GenAI's other eviction modes as ov-genai variants: KVCrush (its blocks taken from the
budget, run on the tiny Llama) and Adaptive R-KV (refused, in one line, where GenAI cannot run it)."""
import openvino_genai as og
import pytest

from triattn.core.config import EvictionConfig
from triattn.core.runs import run
from triattn.core.text import load_tokenizer
from triattn.openvino import genai, genaiset
from triattn.openvino.model import load_model
from triattn.policies import get_policy, list_policies

from conftest import one_line


def cfg(policy, budget=128, recent=32, sinks=4, **options):
    return EvictionConfig(policy=policy, budget=budget, recent_window=recent, sink_tokens=sinks,
                          policy_options=tuple(options.items()))


def test_variants_are_listed_and_say_where_they_come_from():
    names = list_policies()
    assert {"ov-genai", "ov-genai-kvcrush", "ov-genai-rkv"} <= set(names)
    assert "Jha et al. 2025" in names["ov-genai-kvcrush"] and "Cai et al. 2025" in names["ov-genai-rkv"]
    doc = __import__("triattn.policies.ov_genai", fromlist=["x"]).__doc__
    assert "2503.00022" in doc and "2505.24133" in doc
    assert all(get_policy(n).runtime == "genai" and get_policy(n).mechanism == "blocks" for n in
               ("ov-genai", "ov-genai-kvcrush", "ov-genai-rkv"))


def test_kvcrush_blocks_come_out_of_the_budget():
    # budget 192 = 6 blocks: 1 KVCrush block leaves max_cache_size 160; 3 leave 96
    for blocks, max_cache in [(1, 160), (3, 96)]:
        used = genaiset.map_settings(cfg("ov-genai-kvcrush", 192, kvcrush_blocks=blocks), 32)
        assert used["max_cache_size"] == max_cache
        assert used["kv_bound_tokens"] == max_cache + 32 * blocks + 32
        assert used["kvcrush"] == {"blocks": blocks, "anchor": "random", "rng_seed": 0}
    # too few blocks left for start + one evictable + recent: raised, as for ov-genai
    assert genaiset.map_settings(cfg("ov-genai-kvcrush", 128, kvcrush_blocks=2), 32)["max_cache_size"] == 96
    plain = genaiset.map_settings(cfg("ov-genai", 192), 32)
    assert plain["max_cache_size"] == 192 and "kvcrush" not in plain and "adaptive_rkv" not in plain


def test_genai_gets_the_kvcrush_settings():
    used = genaiset.map_settings(cfg("ov-genai-kvcrush", 192, anchor="alternating", kvcrush_seed=7, kvcrush_blocks=2), 32)
    config = genaiset.eviction_config(used)
    assert config.kvcrush_config.budget == 2 and config.kvcrush_config.rng_seed == 7
    assert config.kvcrush_config.anchor_point_mode == og.KVCrushAnchorPointMode.ALTERNATING
    assert config.aggregation_mode == og.AggregationMode.NORM_SUM
    assert (config.get_start_size(), config.get_recent_size(), config.get_max_cache_size()) == (32, 32, 128)


def test_genai_gets_the_adaptive_rkv_settings():
    used = genaiset.map_settings(cfg("ov-genai-rkv", attention_mass=0.5, rkv_window=4), 32)
    config = genaiset.eviction_config(used)
    assert config.aggregation_mode == og.AggregationMode.ADAPTIVE_RKV
    assert config.adaptive_rkv_config.attention_mass == 0.5 and config.adaptive_rkv_config.window_size == 4
    assert used["aggregation"] == "adaptive_rkv"
    assert "genai_aggregation" not in cfg("ov-genai-rkv").as_dict()


@pytest.mark.parametrize("policy, options, message", [
    ("ov-genai-kvcrush", {"anchor": "middle"}, "unknown KVCrush anchor 'middle'"),
    ("ov-genai-kvcrush", {"kvcrush_blocks": -1}, "kvcrush_blocks must be a whole number >= 0"),
    ("ov-genai-rkv", {"attention_mass": 1.5}, r"attention_mass must be a number in \(0, 1\]"),
    ("ov-genai-rkv", {"rkv_window": 0}, "rkv_window must be a whole number >= 1"),
    ("ov-genai-rkv", {"kvcrush_blocks": 1}, "has no setting kvcrush_blocks"),
    ("ov-genai", {"anchor": "mean"}, "has no setting anchor; it has no settings"),
])
def test_bad_settings_are_refused(policy, options, message):
    with pytest.raises(ValueError, match=message):
        cfg(policy, **options)


@pytest.mark.parametrize("version, refused", [
    ("2026.4.1.0-3408-ab01d1771e4", True), ("2025.2.0.0", True), ("2026.5.0.0-1-x", False), ("2027.0.0", False)])
def test_adaptive_rkv_refused_up_to_2026_4(version, refused):
    if refused:
        with pytest.raises(ValueError, match="^ov-genai-rkv cannot run with OpenVINO GenAI 20[0-9.]+: its Adaptive "
                                             "R-KV fails at the first eviction"):
            genaiset.check_adaptive_rkv(version)
    else:
        genaiset.check_adaptive_rkv(version)


def test_kvcrush_runs_and_keeps_its_extra_block(llama_dir):
    """A 200-token prompt, budget 128, KVCrush 1 block: max_cache_size 96, and the cache fills to
    96 + 32 (KVCrush) + 32 before an eviction, past where plain ov-genai at max_cache_size 96 stops
    (128): KVCrush kept one of the blocks the attention rule evicted."""
    model, tok = load_model(llama_dir, "CPU", "f32"), load_tokenizer(llama_dir)
    prompt = [3 + i % 400 for i in range(200)]
    crush = run(model, tok, prompt, cfg("ov-genai-kvcrush", 128, 16, anchor="mean"), max_new_tokens=120)
    plain = run(model, tok, prompt, cfg("ov-genai", 96, 16), max_new_tokens=120)
    assert crush.used["max_cache_size"] == plain.used["max_cache_size"] == 96
    assert crush.used["kv_bound_tokens"] == 160 and plain.used["kv_bound_tokens"] == 128
    live = lambda r: [x.kv_live for x in r.records[2:]]  # noqa: E731 (after the prompt's first decode step)
    assert max(live(plain)) == 128 and max(live(crush)) == 160
    assert all(x.kv_live <= x.kv_len <= 160 for x in crush.records[2:])
    assert "KVCrush 1 block(s)" in genaiset.describe(crush.used) and len(crush.token_ids) == 120


def test_adaptive_rkv_refused_before_anything_runs(llama_dir, cli):
    """Here (OpenVINO GenAI 2026.4) Adaptive R-KV cannot run: one line, before a pipeline is built."""
    model = load_model(llama_dir, "CPU", "f32")
    before = len(genai._pipelines)
    with pytest.raises(ValueError, match="^ov-genai-rkv cannot run with OpenVINO GenAI"):
        genai.generate(model, list(range(3, 40)), cfg("ov-genai-rkv"), max_new_tokens=10)
    assert len(genai._pipelines) == before
    r = cli("infer", "--model-dir", llama_dir, "--prompt", "def f(x):", "--policy", "ov-genai-rkv",
            "--max-new-tokens", "8")
    assert r.returncode == 2
    assert one_line(r.stderr).startswith("error: ov-genai-rkv cannot run with OpenVINO GenAI 2026.4")


def test_the_page_refuses_adaptive_rkv_before_the_baseline_runs(llama_dir, prompt):
    """The page's pair checks the pruned side's runtime first: no baseline run is spent on a choice
    that cannot run."""
    from triattn.core.config import SamplingConfig
    from triattn.web.ab import Pair
    model = load_model(llama_dir, "CPU", "f32")
    with pytest.raises(ValueError, match="^ov-genai-rkv cannot run with OpenVINO GenAI"):
        Pair(model, load_tokenizer(llama_dir), prompt, cfg("ov-genai-rkv"), SamplingConfig(), 10)
    crush = Pair(model, load_tokenizer(llama_dir), prompt, cfg("ov-genai-kvcrush"), SamplingConfig(), 10)
    list(crush.steps())
    assert crush.pruned.done and len(crush.pruned.token_ids) == 10


def test_a_sweep_with_adaptive_rkv_stops_before_any_run(cli, llama_dir, tmp_path):
    r = cli("sweep", "--model-dir", llama_dir, "--budgets", "64", "--policies", "knorm", "ov-genai-rkv",
            "--output", tmp_path / "o", "--max-new-tokens", "8")
    assert r.returncode == 2
    assert one_line(r.stderr).startswith("error: ov-genai-rkv cannot run with OpenVINO GenAI 2026.4")
    assert not (tmp_path / "o").exists()


def test_help_lists_the_variants(cli):
    r = cli("infer", "--help")
    assert r.returncode == 0 and "ov-genai-kvcrush" in r.stdout and "ov-genai-rkv" in r.stdout


def test_eval_with_adaptive_rkv_stops_before_any_run(cli, llama_dir, tmp_path):
    r = cli("eval", "--model-dir", llama_dir, "--policies", "knorm", "ov-genai-rkv", "--output", tmp_path / "o")
    assert r.returncode == 2
    assert one_line(r.stderr).startswith("error: ov-genai-rkv cannot run with OpenVINO GenAI 2026.4")
    assert not (tmp_path / "o").exists()


def test_the_arena_refuses_adaptive_rkv_before_any_run(llama_dir, prompt):
    from triattn.core.config import SamplingConfig
    from triattn.web.arena import Arena
    model = load_model(llama_dir, "CPU", "f32")
    with pytest.raises(ValueError, match="^ov-genai-rkv cannot run with OpenVINO GenAI"):
        Arena(model, load_tokenizer(llama_dir), prompt, [cfg("knorm"), cfg("ov-genai-rkv")], SamplingConfig(), 10)
