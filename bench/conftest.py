"""Shared set-up for the pytest-benchmark suites in bench/.

Run them with ``python -m pytest bench/ --benchmark-only`` (they are not part of the
``pytest`` run of tests/).  Files here are named ``bench_*.py``; this conftest adds that
pattern to ``python_files`` so a plain ``pytest bench/`` collects them.

Environment variables choose the matrix (defaults in brackets):

- ``FASTDROP_BENCH_SIZES``: exponents of 2 or sizes, as ``fastdrop bench --sizes``
  takes them, e.g. ``10,16,20,24,26`` [10,16,20,24]
- ``FASTDROP_BENCH_LEVELS``: SIMD levels, e.g. ``avx512,avx2`` [every level the CPU has]
- ``FASTDROP_BENCH_THREADS``: thread counts, e.g. ``1,2`` [1 and fastdrop's default]

Fixtures (each parametrizes the tests that ask for it, nothing is autouse):

- ``bench_size`` / ``bench_dtype``: one size / dtype per test instance (grouped per module);
- ``bench_arrays``: x, a preallocated y and a sampled Mask for that size and dtype, cached
  so that consecutive tests on the same size share them (``bench_arrays_for(dtype, size)``
  for a test that picks its own dtype); ``.group`` is the pytest-benchmark group
  "<dtype> n=<size>" in which every implementation of that size and dtype sits;
- ``simd_level`` / ``num_threads``: run the test at that SIMD level / thread count, put
  back afterwards.

From the root of a source tree that was ``pip install``ed without building in place, the
installed fastdrop is used (see sitepath.py).
"""
import os

import sitepath

sitepath.prefer_built_source_tree()

import numpy as np  # noqa: E402  (after the choice of fastdrop)
import pytest  # noqa: E402

import fastdrop  # noqa: E402
from fastdrop import config  # noqa: E402
from fastdrop.cli.bench import parse_sizes, parse_threads  # noqa: E402

DEFAULT_BENCH_SIZES = "10,16,20,24"
BENCH_SEED = 20240601
BENCH_RATE = 0.5


def pytest_configure(config):
    config.addinivalue_line("python_files", "bench_*.py")


def bench_sizes():
    text = os.environ.get("FASTDROP_BENCH_SIZES", "").strip() or DEFAULT_BENCH_SIZES
    try:
        return parse_sizes(text)
    except ValueError as exc:
        raise pytest.UsageError(f"FASTDROP_BENCH_SIZES: {exc}") from None


def bench_levels():
    available = list(config.available_simd_levels())
    text = os.environ.get("FASTDROP_BENCH_LEVELS", "").strip()
    if not text:
        return available
    levels = [level.strip() for level in text.split(",") if level.strip()]
    unknown = [level for level in levels if level not in available]
    if unknown:
        raise pytest.UsageError(f"FASTDROP_BENCH_LEVELS: {unknown} not available on this CPU "
                                f"(it has {available})")
    return levels


def bench_threads():
    text = os.environ.get("FASTDROP_BENCH_THREADS", "").strip()
    if not text:
        return sorted({1, fastdrop.get_num_threads()})
    try:
        return parse_threads(text)
    except ValueError as exc:
        raise pytest.UsageError(f"FASTDROP_BENCH_THREADS: {exc}") from None


def size_id(size):
    exponent = size.bit_length() - 1
    return f"2^{exponent}" if size == 1 << exponent else str(size)


def bench_group(dtype, size):
    """The pytest-benchmark group in which every implementation of (dtype, size) sits."""
    return f"{dtype} n={size_id(size)}"


def pytest_generate_tests(metafunc):
    names = metafunc.fixturenames
    if "bench_size" in names:
        sizes = bench_sizes()
        metafunc.parametrize("bench_size", sizes, ids=[size_id(n) for n in sizes],
                             scope="module")
    if "bench_dtype" in names:
        metafunc.parametrize("bench_dtype", ["float32", "float64"], scope="module")
    if "simd_level" in names:
        metafunc.parametrize("simd_level", bench_levels(), indirect=True)
    if "num_threads" in names:
        threads = bench_threads()
        metafunc.parametrize("num_threads", threads, ids=[f"{t}t" for t in threads],
                             indirect=True)


@pytest.fixture
def simd_level(request):
    with config.simd(request.param):
        yield request.param


@pytest.fixture
def num_threads(request):
    with config.threads(request.param):
        yield request.param


class BenchArrays:
    """Inputs of one (dtype, size): x, a preallocated (and touched) y, and a Mask."""

    def __init__(self, dtype, size):
        self.dtype = np.dtype(dtype)
        self.size = size
        self.x = np.random.default_rng(BENCH_SEED).standard_normal(size, dtype=self.dtype)
        self.y = np.zeros_like(self.x)
        self.mask = fastdrop.sample_mask(size, BENCH_RATE, seed=BENCH_SEED)
        self.group = bench_group(dtype, size)

    def bytes_moved(self, *, mask=False):
        """Bytes an out-of-place pass reads + writes (x and y, plus the mask bits)."""
        moved = 2 * self.x.nbytes
        return moved + self.mask.nbytes if mask else moved


_cached_arrays = {}


def arrays_for(dtype, size):
    key = (str(np.dtype(dtype)), size)
    if key not in _cached_arrays:
        _cached_arrays.clear()  # keep one set alive: 2^26 float64 arrays are 512 MiB each
        _cached_arrays[key] = BenchArrays(dtype, size)
    return _cached_arrays[key]


@pytest.fixture
def bench_arrays_for():
    """A function (dtype, size) -> BenchArrays, for tests that pick their own dtype."""
    return arrays_for


@pytest.fixture
def bench_arrays(bench_size, bench_dtype):
    return arrays_for(bench_dtype, bench_size)


def write_after_capture(request, lines):
    """Write `lines` to the terminal from a fixture's teardown, where pytest would capture a
    plain print (printed as is when the terminal reporter is not there)."""
    plugins = request.config.pluginmanager
    reporter = plugins.getplugin("terminalreporter")
    capture = plugins.getplugin("capturemanager")
    if reporter is None or capture is None:
        print("\n".join(lines))
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        for line in lines:
            reporter.write_line(line)
