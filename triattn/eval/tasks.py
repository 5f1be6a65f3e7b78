"""Long-context tasks of the RULER kind, generated offline at a length in the model's own tokens.

Written from the task definitions of RULER (Hsieh et al. 2024, "RULER: What's the Real Context
Size of Your Long-Context Language Models?", arXiv 2404.06654), with its question and answer-prefix
wording; the haystack is the shipped English sample (assets/text), not RULER's essays.

- niah_single: one needle "One of the special magic numbers for <key> is: <7 digits>." in the
  haystack; the question asks for the key's number.
- niah_multikey: four needles with different keys; one is asked for (the others distract).
- niah_multivalue: four needles with the same key and different numbers; all four are asked for.
- niah_multiquery: four needles with different keys; all four keys are asked for at once.
- vt (variable tracking): a chain "VAR A = 12345." "VAR B = VAR A." ... (four hops) spread through
  the haystack; the answer is every variable that ends up holding the value.
- fwe (frequent-word extraction): coded words drawn from a Zipf law (alpha 2), the most frequent
  being "...."; the answer is the three most frequent words after it.

A task's length is the whole prompt's, chat template and answer prefix included (the prefix is
put after the template's assistant turn, as RULER does for chat models). Every task is a pure
function of (name, length, index, seed, tokenizer, haystack): the same arguments give the same task.
"""
from __future__ import annotations

import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..core.text import encode_prompt
from ..paths import ASSETS

HAYSTACK = ASSETS / "text" / "python-reference-sample.txt"
TASKS = ("niah_single", "niah_multikey", "niah_multivalue", "niah_multiquery", "vt", "fwe")
MIN_LENGTH = 128
LENGTH_TOLERANCE = 0.02   # a task's length is within 2% of the one asked for

# Keys are adjective-noun pairs, as RULER's word keys; neither half occurs as such in the haystack.
_ADJECTIVES = ("amber quiet hollow brisk lucky silver gentle rapid frozen golden humble scarlet tidy wooden "
               "ancient bright curly dusty eager fancy grumpy hazy jolly kind little mellow noble orange "
               "polite rusty shiny tiny velvet witty young zesty bold calm").split()
_NOUNS = ("harbor lantern meadow pebble falcon walnut canyon violin kettle orchard beacon comet garden "
          "island jacket ladder marble nectar otter parrot quilt ribbon saddle tulip umbrella village "
          "willow yacht zebra anchor badger candle dolphin engine feather glacier hammer igloo").split()
_NEEDLE = "One of the special magic numbers for {key} is: {value}."
_NIAH_QUESTION = ("Some special magic numbers are hidden within the following text. Make sure to memorize it. "
                  "I will quiz you about the numbers afterwards.\n{context}\n"
                  "What are all the special magic numbers for {query} mentioned in the provided text?")
_NIAH_PREFIX = "The special magic numbers for {query} mentioned in the provided text are"
_VT_QUESTION = ("Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n{context}\n"
                "Question: Find all variables that are assigned the value {value} in the text above.")
_VT_PREFIX = ("Answer: According to the chain(s) of variable assignment in the text above, {n} variables are "
              "assigned the value {value}, they are:")
_FWE_QUESTION = ("Read the following coded text and track the frequency of each coded word. Find the three most "
                 "frequently appeared coded words. {context}\nQuestion: Do not provide any explanation. Please "
                 "ignore the dots '....'. What are the three most frequently appeared words in the above coded text?")
_FWE_PREFIX = "Answer: According to the coded text above, the three most frequently appeared words are:"
_DOTS = "...."
_FWE_WORDING = (_FWE_QUESTION + _FWE_PREFIX).lower()
_HOPS = 4          # variable tracking: one chain of 5 variables
_NEEDLES = 4       # multi-key / multi-value / multi-query: four needles
_ZIPF_ALPHA = 2.0  # frequent words: RULER's alpha


@dataclass(frozen=True)
class Task:
    """One generated sample: the user's message, what the answer must contain, and its token ids."""
    name: str
    length: int                 # the length asked for, in tokens
    index: int
    seed: int
    text: str                   # the user's message (the haystack with the question)
    answer_prefix: str          # the start of the assistant's answer, fed after the chat template
    expected: tuple             # strings the answer must contain
    needles: tuple              # the statements that carry the answer (each in `text` exactly once)
    prompt_ids: tuple           # the chat-templated message followed by the answer prefix

    @property
    def tokens(self) -> int:
        return len(self.prompt_ids)


@lru_cache(maxsize=4)
def _prose(path: str) -> str:
    """The haystack's words joined by single spaces (its line breaks carry nothing a task needs)."""
    text = " ".join(Path(path).read_text(encoding="utf-8").split())
    if len(text) < 1000:
        raise ValueError(f"the haystack {path} is too short ({len(text)} characters) to build tasks from")
    return text


def _rng(name: str, length: int, index: int, seed: int) -> np.random.Generator:
    # a stable stream per sample: the same (task, length, index, seed) always draws the same numbers
    return np.random.default_rng([seed, TASKS.index(name), length, index])


def _haystack(prose: str, start: int, n: int, inserts: list[tuple[float, str]]) -> str:
    """n characters of `prose` from `start` (wrapping round), with each (depth, sentence) put at the
    first sentence end at or after that fraction of them (or at the end), in depth order. Counted
    in characters, not words, so that the length can be fitted to a token or two."""
    chunk = (prose + " " + prose)[start:start + n]
    ends = [i + 1 for i, c in enumerate(chunk) if c in ".?!" and (i + 1 == n or chunk[i + 1] == " ")] + [n]
    placed: dict[int, list[str]] = {}
    for depth, sentence in sorted(inserts, key=lambda x: x[0]):
        placed.setdefault(next(e for e in ends if e >= depth * n), []).append(sentence)
    out, last = [], 0
    for at in sorted(placed):
        out.append(chunk[last:at] + "".join(" " + x for x in placed[at]))
        last = at
    return ("".join(out) + chunk[last:]).strip()


def _fit(build, target: int, most: int):
    """The task from `build(n)` with the most haystack units n whose prompt is at most `target`
    tokens (prompt length grows with n, so a bisection finds it)."""
    lo, hi = 0, most
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(build(mid)[0]) <= target:
            lo = mid
        else:
            hi = mid - 1
    return build(lo)


def _keys(rng, k: int) -> list[str]:
    picks = rng.choice(len(_ADJECTIVES) * len(_NOUNS), size=k, replace=False)
    return [f"{_ADJECTIVES[p // len(_NOUNS)]}-{_NOUNS[p % len(_NOUNS)]}" for p in picks]


def _numbers(rng, k: int, digits: int) -> list[str]:
    return [str(v) for v in rng.choice(np.arange(10 ** (digits - 1), 10 ** digits), size=k, replace=False)]


def _niah(name, rng):
    """(question template filler, expected, needles) of the four needle tasks."""
    n_needles = 1 if name == "niah_single" else _NEEDLES
    keys = _keys(rng, n_needles)
    if name == "niah_multivalue":
        keys = [keys[0]] * n_needles
    values = _numbers(rng, n_needles, 7)
    needles = [_NEEDLE.format(key=k, value=v) for k, v in zip(keys, values)]
    asked = keys if name == "niah_multiquery" else keys[:1]
    expected = values if name in ("niah_multiquery", "niah_multivalue") else values[:1]
    query = asked[0] if len(asked) == 1 else ", ".join(asked[:-1]) + ", and " + asked[-1]
    return query, expected, needles


def _encode(tokenizer, text: str, prefix: str, chat: bool) -> list[int]:
    """The message in the chat template, the answer prefix after the assistant turn's start; plain
    text and the prefix on the next line without a template."""
    if chat and getattr(tokenizer, "chat_template", None):
        return encode_prompt(tokenizer, text) + tokenizer.encode(prefix, add_special_tokens=False)
    return encode_prompt(tokenizer, text + "\n" + prefix, chat=False)


def _prose_task(name, rng, prose, tokenizer, length, chat):
    """The tasks whose needles sit in prose: the four needle tasks and variable tracking."""
    if name == "vt":
        names = ["".join(rng.choice(list(string.ascii_uppercase), size=5)) for _ in range(_HOPS + 1)]
        value = _numbers(rng, 1, 5)[0]
        needles = [f"VAR {names[0]} = {value}."] + [f"VAR {b} = VAR {a}." for a, b in zip(names, names[1:])]
        question, prefix, expected = _VT_QUESTION, _VT_PREFIX.format(n=len(names), value=value), names
        fill = {"value": value}
        depths = np.sort(rng.uniform(0.0, 0.95, size=len(needles)))  # the chain in order
    else:
        query, expected, needles = _niah(name, rng)
        question, prefix, fill = _NIAH_QUESTION, _NIAH_PREFIX.format(query=query), {"query": query}
        depths = rng.uniform(0.0, 0.95, size=len(needles))
    start = prose.find(" ", int(rng.integers(len(prose)))) + 1  # at a word's start (0: the text's)
    inserts = list(zip(depths.tolist(), needles))

    def build(n):
        text = question.format(context=_haystack(prose, start, n, inserts), **fill)
        return _encode(tokenizer, text, prefix, chat), text
    ids, text = _fit(build, length, min(length * 8, len(prose)))
    return text, prefix, tuple(expected), tuple(needles), ids


def _fwe_task(rng, tokenizer, length, chat):
    """Coded words with Zipf-law counts; rank 1 is the dots, ranks 2-4 are the answer. Drawn again
    (from the same stream) until the answer's three counts are each above every other word's."""
    for _ in range(100):
        vocab = ["".join(rng.choice(list(string.ascii_lowercase), size=int(rng.integers(4, 8))))
                 for _ in range(4000)]
        # a word inside the question's own words would be "found" in an answer that only echoes them
        vocab = [w for w in dict.fromkeys(vocab) if w not in _FWE_WORDING]
        vocab[0] = _DOTS
        ranks = rng.zipf(_ZIPF_ALPHA, size=length * 2)
        stream = [vocab[r - 1] for r in ranks if r <= len(vocab)]

        def build(n):
            text = _FWE_QUESTION.format(context=" ".join(stream[:n]))
            return _encode(tokenizer, text, _FWE_PREFIX, chat), text
        ids, text = _fit(build, length, len(stream))
        n = _fwe_count(text)
        counts = {}
        for w in stream[:n]:
            counts[w] = counts.get(w, 0) + 1
        order = sorted((c, w) for w, c in counts.items() if w != _DOTS)[::-1]
        if len(order) > 3 and order[2][0] > order[3][0]:
            expected = tuple(w for _, w in order[:3])
            return text, _FWE_PREFIX, expected, (), ids
    raise ValueError(f"could not draw an unambiguous frequent-word task of {length} tokens")


def _fwe_count(text: str) -> int:
    """How many coded words a frequent-word message holds."""
    head = _FWE_QUESTION.split("{context}")[0]
    tail = _FWE_QUESTION.split("{context}")[1]
    body = text[len(head):len(text) - len(tail)]
    return len(body.split())


def make_task(name: str, tokenizer, length: int, index: int = 0, seed: int = 0, haystack: str | Path = HAYSTACK,
              chat: bool = True) -> Task:
    """Sample `index` of task `name` at `length` tokens (the prompt as the model reads it)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    if length < MIN_LENGTH:
        raise ValueError(f"a task needs at least {MIN_LENGTH} tokens of context, got {length}")
    rng = _rng(name, length, index, seed)
    if name == "fwe":
        text, prefix, expected, needles, ids = _fwe_task(rng, tokenizer, length, chat)
    else:
        text, prefix, expected, needles, ids = _prose_task(name, rng, _prose(str(haystack)), tokenizer, length, chat)
    if abs(len(ids) - length) > LENGTH_TOLERANCE * length:
        raise ValueError(f"{name}: could not fit {length} tokens (got {len(ids)}); the haystack or question "
                         f"leaves too little room")
    return Task(name, length, index, seed, text, prefix, expected, needles, tuple(ids))


def example(name: str = "niah_single", length: int = 1024, index: int = 0, seed: int = 0,
            model_dir: str | Path | None = None) -> tuple[str, tuple]:
    """A generated task for showing: (the user's message, the strings a right answer contains),
    in the tokens of `model_dir`'s tokenizer (default: the bundled default model)."""
    from ..core.runs import ENGLISH_MODEL
    from ..core.text import load_tokenizer
    task = make_task(name, load_tokenizer(model_dir or ENGLISH_MODEL), length, index, seed)
    return task.text, task.expected
