"""The step profiler: phases per decode step for each mode."""
from triattn.core.config import EvictionConfig
from triattn.openvino.model import load_model
from triattn.bench.profile import PHASES, profile_run


def test_profile_run_splits_every_decode_step(gptoss_dir, prompt):
    cfg = EvictionConfig(policy="knorm", budget=20, recent_window=4, sink_tokens=2, prune_interval=4)
    t = profile_run(load_model(gptoss_dir), prompt, cfg, max_new_tokens=30)
    assert all(len(t[p]) == 29 for p in PHASES + ("step",))  # the prefill step is left out
    assert min(t["infer"]) > 0 and sum(x > 0 for x in t["prune"]) >= 5
    for i in range(29):  # infer and pruning are inside the step, never more than it
        assert t["infer"][i] + t["prune"][i] <= t["step"][i]


def test_profile_command_prints_a_row_per_mode(cli, gptoss_dir):
    r = cli("profile", "--model-dir", gptoss_dir, "--context", "64", "--budget", "32", "--recent-window", "4",
            "--evict", "hard", "mask", "--max-new-tokens", "10", "--runs", "1")
    assert r.returncode == 0, r.stderr
    rows = [ln.split("|")[1].strip() for ln in r.stdout.splitlines() if ln.startswith("| ") and "ms)" not in ln]
    assert rows == ["baseline", "knorm/hard", "knorm/mask"]
