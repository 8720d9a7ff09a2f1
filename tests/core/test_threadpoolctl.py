"""The kernels' thread pool under threadpoolctl, and OMP_NUM_THREADS values it cannot read.

threadpoolctl lists the pool (user_api "fastdrop") and limits it; leaving a limit restores
the setting exactly, "never set" (the OMP_NUM_THREADS / CPU default) included.  Settings
are process-wide, so every test leaves the pool as it found it; the environment-variable
cases run in subprocesses.
"""
import os
import sys

import pytest

import fastdrop
from conftest import run_python
from fastdrop import _kernels, config

threadpoolctl = pytest.importorskip("threadpoolctl")

HAVE_THREADS = _kernels.have_threads()


@pytest.fixture
def never_set():
    """The pool with no set_num_threads in force, as a fresh process has it; restored after."""
    previous = _kernels.num_threads_setting()
    fastdrop.set_num_threads(None)
    yield max(1, _kernels.default_threads())
    fastdrop.set_num_threads(previous)


def fastdrop_entries():
    return [lib for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "fastdrop"]


def test_threadpool_info_lists_the_pool(never_set):
    (entry,) = fastdrop_entries()
    assert entry["internal_api"] == "fastdrop"
    assert entry["prefix"] == "_kernels"
    assert os.path.realpath(entry["filepath"]) == os.path.realpath(_kernels.__file__)
    assert entry["num_threads"] == fastdrop.get_num_threads() == never_set
    assert entry["version"] == fastdrop.__version__
    assert entry["simd_level"] == fastdrop.simd_level()
    assert not any(key.startswith("_") for key in entry)
    with config.threads(3):
        assert fastdrop_entries()[0]["num_threads"] == 3


def test_limits_and_restores_the_never_set_state(never_set):
    with threadpoolctl.threadpool_limits(1):
        assert fastdrop.get_num_threads() == 1
        assert fastdrop_entries()[0]["num_threads"] == 1
    assert _kernels.num_threads_setting() is None
    assert fastdrop.get_num_threads() == never_set


def test_restores_an_explicit_setting_even_equal_to_the_default(never_set):
    for explicit in (3, never_set):
        fastdrop.set_num_threads(explicit)
        with threadpoolctl.threadpool_limits(1):
            assert fastdrop.get_num_threads() == 1
        assert _kernels.num_threads_setting() == explicit


def test_nested_limits_and_the_decorator_restore_each_level(never_set):
    @threadpoolctl.threadpool_limits.wrap(limits=1)
    def limited():
        return fastdrop.get_num_threads()

    outer = never_set + 1
    with threadpoolctl.threadpool_limits(outer):
        with threadpoolctl.threadpool_limits(1):
            assert fastdrop.get_num_threads() == 1
        assert _kernels.num_threads_setting() == outer
        assert limited() == 1
        assert _kernels.num_threads_setting() == outer
    assert _kernels.num_threads_setting() is None
    assert limited() == 1
    assert _kernels.num_threads_setting() is None


def test_a_limit_equal_to_the_count_changes_nothing(never_set):
    with threadpoolctl.threadpool_limits(never_set):
        assert _kernels.num_threads_setting() is None
    with threadpoolctl.threadpool_limits(never_set + 1):
        with threadpoolctl.threadpool_limits(never_set + 1):
            assert _kernels.num_threads_setting() == never_set + 1
    assert _kernels.num_threads_setting() is None


def test_limits_by_user_api_and_by_controller(never_set):
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        assert _kernels.num_threads_setting() is None
    with threadpoolctl.threadpool_limits({"fastdrop": 1}):
        assert fastdrop.get_num_threads() == 1
    controller = threadpoolctl.ThreadpoolController()
    with controller.select(internal_api="fastdrop").limit(limits=2):
        assert fastdrop.get_num_threads() == 2
    assert _kernels.num_threads_setting() is None


def test_debugging_info_leaves_the_setting_alone(never_set):
    (entry,) = [lib for lib in threadpoolctl.threadpool_info(debugging_info=True)
                if lib["user_api"] == "fastdrop"]
    assert entry["thread_limit_scope"] == "process"  # one pool for every Python thread
    assert _kernels.num_threads_setting() is None


@pytest.mark.skipif(not (HAVE_THREADS and sys.platform.startswith("linux")),
                    reason="counts the pool's threads in /proc (POSIX-thread builds on Linux)")
def test_the_limit_reaches_the_pool():
    """In a fresh process with OMP_NUM_THREADS=3, a large dropout inside threadpool_limits(1)
    starts no worker; outside it, two."""
    result = run_python("""
        import os
        import numpy as np
        import threadpoolctl
        import fastdrop

        def threads():
            return len(os.listdir("/proc/self/task"))

        x = np.ones(1 << 20, dtype=np.float32)
        before = threads()
        with threadpoolctl.threadpool_limits(1):
            fastdrop.dropout(x, 0.5, seed=1)
        inside = threads()
        fastdrop.dropout(x, 0.5, seed=1)
        print(inside - before, threads() - before)
    """, OMP_NUM_THREADS="3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "2"]


def test_without_threadpoolctl_fastdrop_imports_and_runs():
    result = run_python("""
        import sys
        sys.modules["threadpoolctl"] = None  # as if it were not installed
        import numpy as np
        import fastdrop
        with fastdrop.config.threads(2):
            y = fastdrop.dropout(np.ones(1 << 19), 0.5, seed=1)
        assert "threadpoolctl" in sys.modules and sys.modules["threadpoolctl"] is None
        print(fastdrop.get_num_threads() >= 1, int(np.count_nonzero(y)) > 0)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]


def test_registration_does_not_depend_on_import_order():
    result = run_python("""
        import threadpoolctl
        import fastdrop
        print([lib["user_api"] for lib in threadpoolctl.threadpool_info()].count("fastdrop"))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


# -- OMP_NUM_THREADS ---------------------------------------------------------------------

def threads_and_warnings(value):
    """(get_num_threads(), [warning messages]) of a fresh process with OMP_NUM_THREADS=value."""
    result = run_python("""
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import numpy as np
            import fastdrop
            fastdrop.dropout(np.ones(1 << 19, dtype=np.float32), 0.5, seed=1)
            fastdrop.dropout(np.ones(1 << 19, dtype=np.float32), 0.5, seed=2)
        for w in caught:
            print("WARNING", w.category.__name__, str(w.message))
        print(fastdrop.get_num_threads(), fastdrop._kernels.default_threads())
    """, OMP_NUM_THREADS=value)
    assert result.returncode == 0, result.stderr
    *warned, last = result.stdout.splitlines()
    return int(last.split()[0]), warned, int(last.split()[1])


@pytest.mark.parametrize("value", ["abc", "0", "-3", "2.5x", "abc,2", "+", "٣"])
def test_unreadable_value_warns_once_naming_it(value):
    count, warned, default = threads_and_warnings(value)
    assert len(warned) == 1, warned
    assert warned[0].startswith("WARNING RuntimeWarning OMP_NUM_THREADS=")
    assert repr(value) in warned[0]
    assert f"use {count} thread" in warned[0]
    assert count == default


@pytest.mark.skipif(not HAVE_THREADS, reason="without the pool the kernels use 1 thread")
@pytest.mark.parametrize("value, expected", [("3", 3), (" 3 ", 3), ("2,4", 2), ("+2", 2)])
def test_readable_value_is_used_without_warning(value, expected):
    count, warned, _ = threads_and_warnings(value)
    assert warned == [] and count == expected


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_value_counts_as_unset(value):
    count, warned, default = threads_and_warnings(value)
    assert warned == [] and count == default
    assert count == threads_and_warnings(None)[0]


def test_small_arrays_run_on_the_calling_thread():
    """Below 2**18 elements the pool is not used, whatever the thread count."""
    if not (HAVE_THREADS and sys.platform.startswith("linux")):
        pytest.skip("counts the pool's threads in /proc (POSIX-thread builds on Linux)")
    result = run_python("""
        import os
        import numpy as np
        import fastdrop
        fastdrop.set_num_threads(3)
        before = len(os.listdir("/proc/self/task"))
        fastdrop.dropout(np.ones((1 << 18) - 1, dtype=np.float32), 0.5, seed=1)
        small = len(os.listdir("/proc/self/task"))
        fastdrop.dropout(np.ones(1 << 18, dtype=np.float32), 0.5, seed=1)
        print(small - before, len(os.listdir("/proc/self/task")) - before)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "2"]
