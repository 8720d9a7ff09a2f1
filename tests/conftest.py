"""Shared fixtures: every kernel test runs at every SIMD level this CPU has and at
several thread counts, and API tests run over both the kernels and the reference."""
import importlib.machinery
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

SOURCE_ROOT = Path(__file__).resolve().parent.parent


def _source_package_is_built():
    package = SOURCE_ROOT / "fastdrop"
    return any((package / f"_kernels{suffix}").exists()
               for suffix in importlib.machinery.EXTENSION_SUFFIXES)


# `python -m pytest` puts the source root first on sys.path, so its fastdrop/ would shadow
# an installed fastdrop even where it has no compiled extension (after `pip install .`
# without an in-place build).  Then the tests run against the installed package instead.
if not _source_package_is_built():
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != SOURCE_ROOT]

import fastdrop  # noqa: E402  (after the sys.path decision above)
from fastdrop import config  # noqa: E402

SIMD_LEVELS = config.available_simd_levels()
#: the folder holding the fastdrop under test (the source root, or site-packages)
PACKAGE_PARENT = Path(fastdrop.__file__).resolve().parent.parent


def run_python(code, *, check=False, timeout=300, **env):
    """Run `code` in a child interpreter that imports the same fastdrop as this process: it
    starts in that package's folder, so an unbuilt source tree never shadows it.  Keyword
    arguments set environment variables; None removes one."""
    environment = {**os.environ, **env}
    for name, value in env.items():
        if value is None:
            del environment[name]
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=environment, cwd=PACKAGE_PARENT, check=check,
                          timeout=timeout)
THREAD_COUNTS = (1, 2, 3)


@pytest.fixture(params=SIMD_LEVELS)
def simd(request):
    """Run the test with the kernels at one SIMD level."""
    with config.simd(request.param):
        yield request.param


@pytest.fixture(params=THREAD_COUNTS)
def threads(request):
    """Run the test with the kernels on a given number of threads."""
    with config.threads(request.param):
        yield request.param


@pytest.fixture(params=["kernels", "reference"])
def impl(request):
    """The kernels and the reference share one API; API-level tests run over both."""
    return fastdrop if request.param == "kernels" else fastdrop.reference


def bits_of(a):
    """The raw bytes of an array, so +0.0 / -0.0 and NaN payloads count as different."""
    return np.ascontiguousarray(a).view(np.uint8)


def assert_bit_equal(actual, expected):
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    if not np.array_equal(bits_of(actual), bits_of(expected)):
        bad = np.flatnonzero((bits_of(actual) != bits_of(expected)).reshape(actual.size, -1).any(axis=1))
        raise AssertionError(f"{bad.size} of {actual.size} elements differ, first at flat index "
                             f"{bad[:5].tolist()}; actual {actual.reshape(-1)[bad[:5]]}, "
                             f"expected {expected.reshape(-1)[bad[:5]]}")


def assert_mask_equal(actual, expected):
    assert actual.shape == expected.shape
    assert actual.keep_prob == expected.keep_prob
    assert actual.scale == expected.scale
    np.testing.assert_array_equal(actual.bits, expected.bits)


@pytest.fixture
def one_blas_thread():
    """One BLAS thread for the test: tiny networks' products gain nothing from BLAS threads,
    and on a busy machine the threads' hand-offs cost more than the products (100x on two
    shared cores); fastdrop's kernel threads are left as they are."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        yield
