"""The floor kernel of `fastdrop bench` (y = 2x on the kernels' thread pool): exactly 2x."""
import numpy as np
import pytest

from fastdrop import _kernels

LENGTHS = [0, 1, 3, 4, 5, 15, 16, 17, 63, 64, 65, 1 << 18, (1 << 18) + 513, 1000003]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("nthreads", [1, 2, 3])
def test_times_two_is_exactly_twice_x(dtype, n, nthreads):
    x = np.random.default_rng(n).standard_normal(n + 3).astype(dtype)[3:]  # an odd offset
    x[: min(n, 4)] = [np.inf, -0.0, np.finfo(dtype).max, np.finfo(dtype).tiny][: min(n, 4)]
    y = np.full(n + 1, 7.0, dtype)
    _kernels.times_two(x, y[:n], nthreads)
    unsigned = np.uint32 if dtype == np.float32 else np.uint64
    np.testing.assert_array_equal(y[:n].view(unsigned), (x * dtype(2)).view(unsigned))
    assert y[n] == 7.0  # nothing written past the end


def test_times_two_rejects_bad_arguments():
    x = np.ones(8, np.float32)
    with pytest.raises(ValueError, match="differ in length"):
        _kernels.times_two(x, np.ones(7, np.float32), 1)
    with pytest.raises(ValueError, match="nthreads"):
        _kernels.times_two(x, np.ones(8, np.float32), 0)
    with pytest.raises(ValueError, match="dtype mismatch"):  # Cython's buffer check
        _kernels.times_two(x, np.ones(8, np.float64), 1)
