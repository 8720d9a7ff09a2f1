"""Interleaved rounds: ratios of medians that stay fair on a shared, noisy machine.

Round r times every call once, in an order rotated by r, before round r + 1 starts, so a
burst of load from another process hits every call alike; the median over rounds then
drops the bursts, and the ratio of two medians of one run compares like with like.
Statistics over many runs, JSON history and comparisons are pytest-benchmark's job
(``python -m pytest bench/ --benchmark-only``); this is the quick single-run view.
"""
import statistics
import time

MAX_REPEATS = 100_000


def interleaved_times(calls, rounds, *, warmup=2, round_seconds=0.002, before=None,
                      clock=time.perf_counter):
    """Time each of ``calls`` ({name: no-argument callable}) in ``rounds`` interleaved rounds.

    Each call first runs ``warmup`` times untimed (page faults, lazy set-up, JIT).  A call
    faster than ``round_seconds`` is repeated within its round (the count is fixed after
    warm-up) and the time per call is recorded.  ``before(name)``, when given, runs untimed
    before every warm-up and round of that call (to set its thread count or SIMD level).
    Returns {name: [seconds per call, one entry per round]}.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    names = list(calls)
    prepare = before or (lambda name: None)
    repeats = {}
    for name in names:
        prepare(name)
        for _ in range(warmup):
            calls[name]()
        single = _time(calls[name], 1, clock)
        repeats[name] = max(1, min(MAX_REPEATS, int(round_seconds / max(single, 1e-9))))
    times = {name: [] for name in names}
    for r in range(rounds):
        for k in range(len(names)):
            name = names[(r + k) % len(names)]
            prepare(name)
            times[name].append(_time(calls[name], repeats[name], clock))
    return times


def interleaved_medians(calls, rounds, **options):
    """{name: median seconds per call} of `interleaved_times`."""
    return {name: statistics.median(seconds)
            for name, seconds in interleaved_times(calls, rounds, **options).items()}


def _time(call, repeats, clock):
    start = clock()
    for _ in range(repeats):
        call()
    return (clock() - start) / repeats
