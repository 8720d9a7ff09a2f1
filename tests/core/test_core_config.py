"""SIMD dispatch and threads: what is reported, what can be forced, what is rejected."""
import os

import numpy as np
import pytest

import fastdrop
from conftest import run_python
from fastdrop import config


def test_default_level_is_the_best_the_cpu_has():
    assert fastdrop.simd_level() == config.available_simd_levels()[-1]
    assert config.available_simd_levels()[0] == "scalar"


@pytest.mark.parametrize("level", config.available_simd_levels())
def test_environment_forces_a_level(level):
    result = run_python("import fastdrop; print(fastdrop.simd_level())", FASTDROP_SIMD=level)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == level


def test_environment_rejects_unknown_level():
    result = run_python("import fastdrop", FASTDROP_SIMD="sse9")
    assert result.returncode != 0
    assert "FASTDROP_SIMD must be one of" in result.stderr


def test_set_simd_level_rejects_unknown_and_unavailable():
    with pytest.raises(ValueError, match="SIMD level"):
        config.set_simd_level("neon")
    if "avx512" not in config.available_simd_levels():
        with pytest.raises(ValueError, match="not available"):
            config.set_simd_level("avx512")


def test_omp_num_threads_is_honoured():
    result = run_python("import fastdrop; print(fastdrop.get_num_threads())", OMP_NUM_THREADS="3")
    assert result.returncode == 0, result.stderr
    expected = "3" if fastdrop._kernels.have_threads() else "1"
    assert result.stdout.strip() == expected


def test_set_num_threads():
    previous = fastdrop.get_num_threads()
    try:
        fastdrop.set_num_threads(3)
        assert fastdrop.get_num_threads() == 3
        fastdrop.set_num_threads(None)
        assert fastdrop.get_num_threads() == previous
        with pytest.raises(ValueError, match="at least 1"):
            fastdrop.set_num_threads(0)
        with pytest.raises(TypeError, match="must be an int"):
            fastdrop.set_num_threads(1.5)
    finally:
        fastdrop.set_num_threads(None)


def test_concurrent_calls_from_python_threads():
    # The kernels run without the GIL; two Python threads calling them at once must not interfere.
    import threading

    x = np.random.default_rng(0).standard_normal(2**21).astype(np.float32)
    expected = fastdrop.reference.dropout(x, 0.5, seed=1)
    results = [None, None]

    def work(i):
        results[i] = fastdrop.dropout(x, 0.5, seed=1)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for r in results:
        np.testing.assert_array_equal(r, expected)


def test_many_python_threads_share_the_pool():
    # Calls made while the pool serves another thread run on their caller; all must be exact.
    from concurrent.futures import ThreadPoolExecutor

    fastdrop.set_num_threads(2)
    try:
        x = np.random.default_rng(1).standard_normal(2**19 + 3).astype(np.float32)

        def work(seed):
            return seed, fastdrop.dropout(x, 0.3, seed=seed, stream=seed, offset=seed)

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(work, range(12)))
        for seed, y in results[::5]:
            expected = fastdrop.reference.dropout(x, 0.3, seed=seed, stream=seed, offset=seed)
            np.testing.assert_array_equal(y, expected)
        baseline = {seed: fastdrop.dropout(x, 0.3, seed=seed, stream=seed, offset=seed)
                    for seed, _ in results}
        for seed, y in results:
            np.testing.assert_array_equal(y, baseline[seed])
    finally:
        fastdrop.set_num_threads(None)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore:os.fork")  # other libraries' threads; the child uses none
def test_thread_pool_survives_fork():
    fastdrop.set_num_threads(2)
    try:
        x = np.random.default_rng(2).standard_normal(2**20).astype(np.float32)
        expected = fastdrop.dropout(x, 0.5, seed=5)  # the pool is running in the parent now
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: the pool's threads did not survive the fork; it must restart
            try:
                y = fastdrop.dropout(x, 0.5, seed=5)
                os.write(write_end, b"ok" if np.array_equal(y, expected) else b"bad")
            finally:
                os._exit(0)
        os.close(write_end)
        import select

        ready, _, _ = select.select([read_end], [], [], 60)
        answer = os.read(read_end, 2) if ready else b"hung"
        os.close(read_end)
        if answer == b"hung":
            import signal

            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert answer == b"ok"
    finally:
        fastdrop.set_num_threads(None)


def test_environment_caps_the_levels_tests_and_benchmarks_can_select():
    code = ("import fastdrop, fastdrop.config as c\n"
            "print(','.join(c.available_simd_levels()))\n"
            "try:\n    c.set_simd_level('avx2')\nexcept ValueError as e:\n    print('refused')\n")
    result = run_python(code, FASTDROP_SIMD="scalar")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert lines[0] == "scalar"
    assert lines[1:] == ["refused"]


def test_threads_context_restores_the_previous_setting():
    fastdrop.set_num_threads(None)
    default = fastdrop.get_num_threads()
    with config.threads(default + 2):
        assert fastdrop.get_num_threads() == default + 2
    assert fastdrop.get_num_threads() == default
    fastdrop.set_num_threads(5)
    try:
        with config.threads(1):
            assert fastdrop.get_num_threads() == 1
        assert fastdrop.get_num_threads() == 5
        with pytest.raises(ValueError, match="at least 1"):
            with config.threads(0):
                pass
        assert fastdrop.get_num_threads() == 5
    finally:
        fastdrop.set_num_threads(None)


def test_simd_context_restores_the_previous_level():
    levels = config.available_simd_levels()
    with config.simd(levels[0]):
        assert fastdrop.simd_level() == levels[0]
    assert fastdrop.simd_level() == levels[-1]
