"""The dropout variants (DESIGN.md §7) against their baselines, at 2^24 elements.

    python -m pytest bench/bench_variants.py --benchmark-only     # pytest-benchmark table
    python bench/bench_variants.py                                # one-shot ratio report
    FASTDROP_BENCH_VARIANT_LOG2=20 python bench/bench_variants.py # another size (2^20)

Each group puts a variant next to what issue 6 compares it with, on the same array and
with a preallocated output:

- ``broadcast``: channel dropout, channels first ``(64, 64, 64, 64)`` with noise shape
  ``(64, 64, 1, 1)`` and channels last with ``(64, 1, 1, 64)``, and time-locked dropout of
  ``(64, 1024, 256)`` with ``(64, 1, 256)``, against plain ``dropout`` of the same array
  (target: at most 1.2x);
- ``gaussian``: ``gaussian_dropout`` (and ``alpha_dropout``) against plain ``dropout``,
  float32 (target: Gaussian at most 2x);
- ``float16``: ``dropout`` of float16 against ``np.multiply`` of float16 (target: at most
  1.0x), with ``gaussian_dropout`` of float16 alongside.

The script mode times every case in the same process, interleaved, best of several
rounds, and prints each ratio to its baseline next to the target.
"""
import os
import sys
import time

if __name__ == "__main__":  # run as a script: use the tree's fastdrop, not an installed one
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import pytest

import fastdrop

SEED = 20240601
RATE = 0.5


def size_log2():
    text = os.environ.get("FASTDROP_BENCH_VARIANT_LOG2", "").strip()
    value = int(text) if text else 24
    if not 8 <= value <= 30:
        raise ValueError(f"FASTDROP_BENCH_VARIANT_LOG2 must be in [8, 30], got {value}")
    return value


def shapes(log2):
    """A 4-D channel shape and a (batch, time, features) shape of 2^log2 elements each
    ((64, 64, 64, 64) and (64, 1024, 256) at 2^24)."""
    side = 1 << (log2 // 4)
    channel = (side << (log2 % 4), side, side, side)  # the remainder goes to the batch axis
    batch, features = 1 << (log2 // 4), 1 << (log2 // 3)
    return channel, (batch, 1 << (log2 - log2 // 4 - log2 // 3), features)


class Arrays:
    def __init__(self, log2):
        self.size = 1 << log2
        rng = np.random.default_rng(SEED)
        self.x32 = rng.standard_normal(self.size, dtype=np.float32)
        self.y32 = np.zeros_like(self.x32)
        self.x16 = self.x32.astype(np.float16)
        self.y16 = np.zeros_like(self.x16)
        self.channel_shape, self.sequence_shape = shapes(log2)
        self.x4 = self.x32.reshape(self.channel_shape)
        self.y4 = self.y32.reshape(self.channel_shape)
        self.x3 = self.x32.reshape(self.sequence_shape)
        self.y3 = self.y32.reshape(self.sequence_shape)


def cases(a):
    """{group: [(name, callable, is_baseline, target ratio or None)]}."""
    n, c = a.channel_shape[0], a.channel_shape[1]
    b, _, f = a.sequence_shape
    return {
        "broadcast": [
            ("dropout (plain)", lambda: fastdrop.dropout(a.x4, RATE, seed=SEED, out=a.y4), True, None),
            ("channel dropout, channels first", lambda: fastdrop.dropout(
                a.x4, RATE, seed=SEED, out=a.y4, noise_shape=(n, c, 1, 1)), False, 1.2),
            ("channel dropout, channels last", lambda: fastdrop.dropout(
                a.x4, RATE, seed=SEED, out=a.y4, noise_shape=(n, 1, 1, a.channel_shape[3])), False, 1.2),
            ("time-locked dropout", lambda: fastdrop.dropout(
                a.x3, RATE, seed=SEED, out=a.y3, noise_shape=(b, 1, f)), False, 1.2),
        ],
        "gaussian": [
            ("dropout (plain)", lambda: fastdrop.dropout(a.x32, RATE, seed=SEED, out=a.y32), True, None),
            ("gaussian_dropout", lambda: fastdrop.gaussian_dropout(a.x32, RATE, seed=SEED, out=a.y32),
             False, 2.0),
            ("alpha_dropout", lambda: fastdrop.alpha_dropout(a.x32, RATE, seed=SEED, out=a.y32),
             False, None),
        ],
        "float16": [
            ("np.multiply float16", lambda: np.multiply(a.x16, np.float16(2.0), out=a.y16), True, None),
            ("dropout float16", lambda: fastdrop.dropout(a.x16, RATE, seed=SEED, out=a.y16), False, 1.0),
            ("gaussian_dropout float16", lambda: fastdrop.gaussian_dropout(
                a.x16, RATE, seed=SEED, out=a.y16), False, None),
        ],
    }


_arrays = {}


def arrays():
    log2 = size_log2()
    if log2 not in _arrays:
        _arrays.clear()
        _arrays[log2] = Arrays(log2)
    return _arrays[log2]


class _Names:
    """Stand-in with the attributes cases() reads, so the test ids need no arrays."""
    channel_shape = (1, 1, 1, 1)
    sequence_shape = (1, 1, 1)


CASE_IDS = [(group, name) for group, entries in cases(_Names()).items() for name, *_ in entries]


@pytest.mark.parametrize("group,name", CASE_IDS, ids=[f"{g}-{n}" for g, n in CASE_IDS])
def test_variant(benchmark, group, name):
    a = arrays()
    entry = next(e for e in cases(a)[group] if e[0] == name)
    benchmark.group = f"{group} n=2^{size_log2()}"
    benchmark.extra_info.update(impl=name, elements=a.size, baseline=entry[2], target=entry[3])
    benchmark(entry[1])


def report(rounds=7):
    a = arrays()
    print(f"fastdrop {fastdrop.__version__}: simd={fastdrop.simd_level()} "
          f"threads={fastdrop.get_num_threads()} n=2^{size_log2()} (best of {rounds} rounds)")
    for group, entries in cases(a).items():
        best = {name: float("inf") for name, *_ in entries}
        for _ in range(rounds):  # interleaved, so load changes hit every case alike
            for name, run, *_ in entries:
                run()
                start = time.perf_counter()
                run()
                best[name] = min(best[name], time.perf_counter() - start)
        base = next(name for name, _, is_base, _ in entries if is_base)
        print(f"\n[{group}] baseline: {base} {best[base] * 1e3:.2f} ms")
        for name, _, is_base, target in entries:
            if is_base:
                continue
            ratio = best[name] / best[base]
            verdict = "" if target is None else (" ok" if ratio <= target else " MISSED")
            goal = "" if target is None else f" (target <= {target:.1f}x){verdict}"
            print(f"  {name:34s} {best[name] * 1e3:8.2f} ms  {ratio:5.2f}x{goal}")


if __name__ == "__main__":
    report()
