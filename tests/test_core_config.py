"""SIMD dispatch and threads: what is reported, what can be forced, what is rejected."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastdrop
from fastdrop import _core


def run_python(code, **env):
    environment = {**os.environ, **env}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=environment, cwd=os.path.dirname(os.path.dirname(fastdrop.__file__)))
    return result


def test_default_level_is_the_best_the_cpu_has():
    assert fastdrop.simd_level() == _core.cpu_simd_levels()[-1]
    assert _core.cpu_simd_levels()[0] == "scalar"


@pytest.mark.parametrize("level", _core.cpu_simd_levels())
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
        _core.set_simd_level("neon")
    if "avx512" not in _core.cpu_simd_levels():
        with pytest.raises(ValueError, match="not available"):
            _core.set_simd_level("avx512")


def test_omp_num_threads_is_honoured():
    result = run_python("import fastdrop; print(fastdrop.get_num_threads())", OMP_NUM_THREADS="3")
    assert result.returncode == 0, result.stderr
    expected = "3" if fastdrop._kernels.have_openmp() else "1"
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
