"""Shared fixtures: every kernel test runs at every SIMD level this CPU has and at
several thread counts, and API tests run over both the kernels and the reference."""
import numpy as np
import pytest

import fastdrop
from fastdrop import config

SIMD_LEVELS = config.available_simd_levels()
THREAD_COUNTS = (1, 2, 3)


@pytest.fixture(params=SIMD_LEVELS)
def simd(request):
    """Run the test with the kernels forced to one SIMD level."""
    previous = fastdrop.simd_level()
    config.set_simd_level(request.param)
    yield request.param
    config.set_simd_level(previous)


@pytest.fixture(params=THREAD_COUNTS)
def threads(request):
    previous = fastdrop.get_num_threads()
    fastdrop.set_num_threads(request.param)
    yield request.param
    fastdrop.set_num_threads(previous)


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
