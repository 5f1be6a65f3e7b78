"""Per-run figures from the engine's step records, in the model card's terms.

TTFT is the prefill step; TPOT is over the decode steps that follow; throughput is new tokens over
total latency (as the card computed it). KV bytes are what the run's cache form holds, as its
session counts them into the records (`cache_bytes`): on the paged form every block its pool has
allocated (whole blocks of 32 tokens, the room a run reserves included); on the stateful form the
logical size, slots x bytes per token in the cache precision. Records without them (another
runtime) count slots x that runtime's bytes per token. Prune events and time are None for a backend whose evictions are not observable.
RSS delta is the process's resident memory after the run minus before (a benchmark's figure; allocator
pools make it noise for one run, so the page shows the comparison's peak RSS instead).

A pair of runs (`pair_figures`) is compared like for like: over the decode steps both made, step i of
one beside step i of the other (they ran interleaved), with the paired change of time per token and
its interval (stats.paired_change).
"""
from __future__ import annotations

import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from .stats import Interval, paired_change


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def trim_heap() -> None:
    """Hand the C heap's free pages back to the system (glibc keeps them; a no-op elsewhere).

    Why: a comparison of long prompts frees hundreds of MB of host arrays and plugin buffers, and
    glibc kept part of it: RSS crept up ~15 MB per long comparison (156 MB over 18 of 1,500 and
    3,000 tokens); trimmed after each, it stayed within 2 MB. This is libc's own call, not
    OpenVINO's release_memory(), which corrupted the heap here.
    """
    import ctypes
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak_rss() -> bool:
    """Start the process's high-water mark again from its present size (Linux: clear_refs 5), so that
    the next peak_rss_mb() is the peak of what runs from now on. False where that cannot be done."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float | None:
    """The process's resident-memory high-water mark so far (MB); None where the OS does not keep one.

    On Linux it is VmHWM, the high-water mark of this process's own memory: getrusage's ru_maxrss
    also counts the parent's resident memory at the moment it started this process (it survives
    fork and exec), so a small run started by a large process would report the parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10  # kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB elsewhere


@dataclass
class RunMetrics:
    ttft_s: float
    tpot_ms: float          # median over decode steps
    tpot_mean_ms: float
    throughput_tok_s: float
    latency_s: float
    new_tokens: int
    prune_events: int | None      # None: the backend evicts without telling
    prune_time_s: float | None
    kv_tokens_max: int      # physical slots in the cache
    kv_tokens_final: int
    kv_bytes_max: int
    rss_delta_mb: float
    # What the cache held while decoding (after any cut of the prompt): the figure to compare between
    # runs on a long prompt, where kv_tokens_max is the prompt before its cut.
    kv_tokens_max_decode: int = 0
    kv_bytes_max_decode: int = 0
    prompt_cut: tuple[int, int] | None = None  # (tokens before, after) when the prompt itself was cut
    prompt_cut_in_pieces: bool = False  # cut while it was read, before each piece (chunked prefill)

    def as_dict(self) -> dict:
        return asdict(self)


def summarize(records, kv_bytes_per_token: int, rss_before_mb: float, rss_after_mb: float,
              prunes_visible: bool = True) -> RunMetrics:
    """prunes_visible=False (a backend that evicts out of sight): prune events and time are None."""
    if not records:
        raise ValueError("no tokens were generated")
    decode = [r.time_s for r in records[1:]]
    latency = sum(r.time_s for r in records)
    prunes = [r.prune for r in records if r.prune is not None]
    kv_max = max(max(r.kv_len for r in records), max((p.kv_peak or p.kv_before for p in prunes), default=0))
    peak = [r.kv_bytes_peak for r in records]
    return RunMetrics(
        ttft_s=records[0].time_s,
        tpot_ms=1000 * statistics.median(decode) if decode else 0.0,
        tpot_mean_ms=1000 * statistics.fmean(decode) if decode else 0.0,
        throughput_tok_s=len(records) / latency if latency > 0 else 0.0,
        latency_s=latency,
        new_tokens=len(records),
        prune_events=len(prunes) if prunes_visible else None,
        prune_time_s=sum(p.time_s for p in prunes) if prunes_visible else None,
        kv_tokens_max=kv_max,
        kv_tokens_final=records[-1].kv_len,
        kv_bytes_max=max(peak) if None not in peak else kv_max * kv_bytes_per_token,
        rss_delta_mb=rss_after_mb - rss_before_mb,
        **_decode_kv(records, prunes, kv_bytes_per_token),
    )


def _decode_kv(records, prunes, kv_bytes_per_token: int) -> dict:
    """The cache's largest size after each step (the prompt's cut done) and the prompt's own cut."""
    held = max(r.kv_len for r in records)
    first = records[0].prune
    cut = (first.kv_before, first.kv_after) if first is not None and first.kv_before > first.kv_after else None
    return {"kv_tokens_max_decode": held, "kv_bytes_max_decode": held_bytes(records, kv_bytes_per_token),
            "prompt_cut": cut,
            "prompt_cut_in_pieces": cut is not None and first.kv_peak is not None}


def held_bytes(records, kv_bytes_per_token: int) -> int:
    """The most bytes the cache held after any of `records` (their own count where they have one)."""
    counted = [r.kv_bytes for r in records]
    if None not in counted:
        return max(counted)
    return max(r.kv_len for r in records) * kv_bytes_per_token


@dataclass(frozen=True)
class PairFigures:
    """Two runs compared over the first `tokens` new tokens of each (the shorter run's length)."""
    tokens: int
    equal: bool                           # both runs made the same number of tokens
    tpot_ms: tuple                        # (baseline, pruned) mean time per token over the shared decode steps
    kv_tokens: tuple                      # (baseline, pruned) most tokens held while decoding those tokens
    kv_bytes: tuple
    change: Interval | None               # paired change of time per token; None: too few steps

    @property
    def steps(self) -> int:
        return max(0, self.tokens - 1)


def pair_figures(baseline, pruned, bytes_per_token: tuple) -> PairFigures:
    """The like-for-like figures of two record lists (record 0 = prefill, not a decode step)."""
    n = min(len(baseline), len(pruned))
    if n == 0:
        raise ValueError("no tokens were generated")
    times = [[r.time_s for r in recs[1:n]] for recs in (baseline, pruned)]
    tpot = tuple(1000 * statistics.fmean(t) if t else None for t in times)
    held = tuple(max(r.kv_len for r in recs[:n]) for recs in (baseline, pruned))
    return PairFigures(n, len(baseline) == len(pruned), tpot, held,
                       tuple(held_bytes(recs[:n], b) for recs, b in zip((baseline, pruned), bytes_per_token)),
                       paired_change(*times))
