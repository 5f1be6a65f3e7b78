"""Running an evaluation: every task sample through the baseline and each policy x budget, scored
by containment as RULER does (Hsieh et al. 2024): the share of expected strings found in the
answer (case-insensitive), and whether all were.

Runs go through the one streaming path (core/runs.py, runner.py), greedy. Answers are appended to
`answers.jsonl` one line per run as it ends, so an interrupted evaluation continues where it
stopped: a rerun with the same settings skips the runs already there. The baselines run first; a
(task, length) whose baseline finds everything in fewer than half its samples is not informative
for this model, and its pruned runs are skipped unless asked for.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..core.config import EvictionConfig, SamplingConfig, full_cache
from .tasks import Task, make_task

ANSWERS = "answers.jsonl"
SETTINGS = "settings.json"
INFORMATIVE = 0.5   # the baseline must find everything in at least this share of samples


@dataclass(frozen=True)
class Settings:
    """What decides an evaluation's answers; a run is resumed only into a folder with the same."""
    model: str
    precision: str
    device: str
    tasks: tuple
    lengths: tuple
    samples: int
    seed: int
    policies: tuple
    budgets: tuple
    max_new_tokens: dict
    haystack: str
    chat: bool = True
    run_uninformative: bool = False
    eviction: dict = field(default_factory=dict)   # recent window and sink tokens of every pruned run
    prompt_selects: tuple = ("policy",)            # how pruned runs choose the prompt (config.PROMPT_SELECTIONS)

    def as_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))  # tuples as lists, as read back from JSON


def _path(saved: str) -> Path:
    """A saved path: relative ones are inside the checkout (see cli/eval.py)."""
    from ..paths import ASSETS
    p = Path(saved)
    return p if p.is_absolute() else ASSETS.parent / p


def score(output: str, expected) -> tuple[float, bool]:
    """(share of `expected` contained in `output`, all of them contained), ignoring case."""
    low = output.lower()
    found = [e.lower() in low for e in expected]
    return sum(found) / len(found), all(found)


def configs(settings: Settings) -> list[EvictionConfig]:
    """The baseline, then every policy x prompt selection x budget (a runtime that reads the prompt
    its own way, ov-genai, only with its own)."""
    from ..policies import get_policy
    extra = settings.eviction
    return [full_cache()] + [EvictionConfig(policy=p, budget=b, prompt_select=s, **extra)
                             for p in settings.policies for s in settings.prompt_selects for b in settings.budgets
                             if s == "policy" or get_policy(p).runtime == "loop"]


def labels(settings: Settings) -> list[str]:
    """The pruned runs' labels in order (policy, or policy+query), each once."""
    return list(dict.fromkeys(_key_of(c)[0] for c in configs(settings)[1:]))


def key(task: str, length: int, index: int, policy: str, budget: int | None) -> tuple:
    return task, int(length), int(index), policy, None if budget is None else int(budget)


def _key_of(e: EvictionConfig) -> tuple[str, int | None]:
    """(the run's label, its budget): a query-aware run is labelled `policy+query`."""
    label = e.policy if e.prompt_select == "policy" else f"{e.policy}+{e.prompt_select}"
    return label, e.budget if e.prunes else None


def load_answers(folder: Path) -> dict:
    """The runs already done; a last line cut short by an interruption is ignored."""
    done = {}
    path = folder / ANSWERS
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                a = json.loads(line)
            except json.JSONDecodeError:
                continue
            done[key(a["task"], a["length"], a["index"], a["policy"], a["budget"])] = a
    return done


def prepare_folder(folder: Path, settings: Settings) -> dict:
    """Create the folder, or check that it holds an evaluation with the same settings; the runs done."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SETTINGS
    if path.is_file():
        try:
            before = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            before = None
        if before != settings.as_dict():
            raise ValueError(f"{folder} holds an evaluation with other settings; choose another --output "
                             f"(or remove it) to start a new one")
    else:
        path.write_text(json.dumps(settings.as_dict(), indent=1) + "\n", encoding="utf-8")
    return load_answers(folder)


def _append(folder: Path, answer: dict) -> None:
    with open(folder / ANSWERS, "a", encoding="utf-8") as f:
        f.write(json.dumps(answer) + "\n")
        f.flush()
        os.fsync(f.fileno())


def one_run(model, tok, task: Task, eviction: EvictionConfig, max_new_tokens: int, calibration=None) -> dict:
    """One greedy run of `task` under `eviction`, as the answer record that is saved."""
    from ..core.runs import run
    result = run(model, tok, list(task.prompt_ids), eviction, SamplingConfig(), max_new_tokens,
                 calibration=calibration)
    share, all_found = score(result.text, task.expected)
    policy, budget = _key_of(eviction)
    return {"task": task.name, "length": task.length, "index": task.index, "seed": task.seed, "policy": policy,
            "budget": budget, "prompt_tokens": task.tokens, "expected": list(task.expected), "output": result.text,
            "found": share, "all_found": all_found, "new_tokens": len(result.token_ids),
            "time_s": round(sum(r.time_s for r in result.records), 3)}


def informative(answers: dict, task: str, length: int, samples: int) -> bool | None:
    """Whether the baseline found everything in at least half of the samples (None: not all run)."""
    got = [answers.get(key(task, length, i, "none", None)) for i in range(samples)]
    if any(a is None for a in got):
        return None
    return sum(a["all_found"] for a in got) >= INFORMATIVE * samples


def evaluate(model, tok, settings: Settings, folder: Path, bar=None) -> dict:
    """Run what is not yet in `folder`; returns every answer keyed by (task, length, index, policy, budget)."""
    from ..policies import get_policy
    answers = prepare_folder(folder, settings)
    cfgs = configs(settings)
    tasks = {(n, L, i): None for L in settings.lengths for n in settings.tasks for i in range(settings.samples)}

    def task_of(n, L, i):
        if tasks[n, L, i] is None:
            tasks[n, L, i] = make_task(n, tok, L, i, settings.seed, _path(settings.haystack), settings.chat)
        return tasks[n, L, i]

    def todo(cfg_list, cells):
        return [(c, t) for t in cells for c in cfg_list if key(*t, *_key_of(c)) not in answers]

    baseline_runs = todo(cfgs[:1], list(tasks))
    # until the baselines have said which tasks are informative, the total is an upper bound
    progress = bar(len(baseline_runs) + len(todo(cfgs[1:], list(tasks))), "eval, baselines (total at most)") \
        if bar else None
    calibrations = {}
    try:
        for phase in ("baseline", "pruned"):
            if phase == "baseline":
                runs = baseline_runs
            else:
                cells = [t for t in tasks if settings.run_uninformative or informative(answers, t[0], t[1],
                                                                                        settings.samples)]
                runs = todo(cfgs[1:], cells)
                if progress is not None:
                    progress.total = progress.n + len(runs)
                    progress.set_description_str("eval, policies", refresh=True)
            for cfg, (n, L, i) in runs:
                if cfg.prunes and cfg.policy not in calibrations:
                    calibrations[cfg.policy] = get_policy(cfg.policy).prepare(model.info.model_dir)
                answer = one_run(model, tok, task_of(n, L, i), cfg, settings.max_new_tokens[n],
                                 calibrations.get(cfg.policy))
                _append(folder, answer)
                answers[key(n, L, i, *_key_of(cfg))] = answer
                if progress is not None:
                    progress.set_postfix_str(f"{n} {L} {_key_of(cfg)[0]}", refresh=False)
                    progress.update(1)
    finally:
        if progress is not None:
            progress.close()
    return answers
