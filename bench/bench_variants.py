"""The dropout variants (DESIGN.md §7) against their baselines, at 2^24 elements.

    python -m pytest bench/bench_variants.py --benchmark-only     # pytest-benchmark table
    python bench/bench_variants.py                                # one-shot ratio report
    FASTDROP_BENCH_VARIANT_LOG2=20 python bench/bench_variants.py # another size (2^20)

Each group puts variants next to their baseline, on the same array and with a
preallocated output:

- ``broadcast``: channel dropout, channels first ``(64, 64, 64, 64)`` with noise shape
  ``(64, 64, 1, 1)`` and channels last with ``(64, 1, 1, 64)``, and time-locked dropout of
  ``(64, 1024, 256)`` with ``(64, 1, 256)``, against plain ``dropout`` of the same array
  (target: at most 1.2x);
- ``gaussian``: ``gaussian_dropout`` (and ``alpha_dropout``) against plain ``dropout``,
  float32 (target: Gaussian at most 2x);
- ``float16``: ``dropout`` of float16 against ``np.multiply`` of float16 (target: at most
  1.0x), with ``gaussian_dropout`` of float16 alongside.

The script mode times every group's cases in interleaved rounds (medians) and prints each
ratio to its baseline next to its target from targets.py.
"""
import os

import sitepath

sitepath.prefer_built_source_tree()

import numpy as np  # noqa: E402  (after the choice of fastdrop)
import pytest  # noqa: E402

import fastdrop  # noqa: E402
from fastdrop.cli.bench import format_seconds  # noqa: E402
from fastdrop.cli.timing import interleaved_medians  # noqa: E402
from targets import VARIANTS, describe, verdict  # noqa: E402

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
    """{group: [(name, callable)]}, the group's baseline first."""
    n, c = a.channel_shape[0], a.channel_shape[1]
    b, _, f = a.sequence_shape
    return {
        "broadcast": [
            ("dropout (plain)", lambda: fastdrop.dropout(a.x4, RATE, seed=SEED, out=a.y4)),
            ("channel dropout, channels first", lambda: fastdrop.dropout(
                a.x4, RATE, seed=SEED, out=a.y4, noise_shape=(n, c, 1, 1))),
            ("channel dropout, channels last", lambda: fastdrop.dropout(
                a.x4, RATE, seed=SEED, out=a.y4, noise_shape=(n, 1, 1, a.channel_shape[3]))),
            ("time-locked dropout", lambda: fastdrop.dropout(
                a.x3, RATE, seed=SEED, out=a.y3, noise_shape=(b, 1, f))),
        ],
        "gaussian": [
            ("dropout (plain)", lambda: fastdrop.dropout(a.x32, RATE, seed=SEED, out=a.y32)),
            ("gaussian_dropout", lambda: fastdrop.gaussian_dropout(a.x32, RATE, seed=SEED, out=a.y32)),
            ("alpha_dropout", lambda: fastdrop.alpha_dropout(a.x32, RATE, seed=SEED, out=a.y32)),
        ],
        "float16": [
            ("np.multiply float16", lambda: np.multiply(a.x16, np.float16(2.0), out=a.y16)),
            ("dropout float16", lambda: fastdrop.dropout(a.x16, RATE, seed=SEED, out=a.y16)),
            ("gaussian_dropout float16", lambda: fastdrop.gaussian_dropout(
                a.x16, RATE, seed=SEED, out=a.y16)),
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
    entries = cases(a)[group]
    benchmark.group = f"{group} n=2^{size_log2()}"
    benchmark.extra_info.update(impl=name, elements=a.size, baseline=entries[0][0] == name)
    benchmark(dict(entries)[name])


def report(rounds=7):
    a = arrays()
    print(f"fastdrop {fastdrop.__version__}: simd={fastdrop.simd_level()} "
          f"threads={fastdrop.get_num_threads()} n=2^{size_log2()} "
          f"(medians of {rounds} interleaved rounds)")
    for group, entries in cases(a).items():
        medians = interleaved_medians(dict(entries), rounds, warmup=1)
        base = entries[0][0]
        print(f"\n[{group}] baseline: {base} {format_seconds(medians[base])}")
        for name, _ in entries[1:]:
            ratio = medians[name] / medians[base]
            target = VARIANTS.get(name)
            print(f"  {name:34s} {format_seconds(medians[name]):>9}  {ratio:6.2f}x  "
                  f"{describe(target)} {verdict(ratio, target)}")


if __name__ == "__main__":
    report()
