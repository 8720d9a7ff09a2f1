"""pytest-benchmark suite: the fastdrop kernels next to NumPy, the reference and peers.

    python -m pytest bench/bench_kernels.py --benchmark-only
    python bench/bench_kernels.py [pytest options]      # the same, as a script
    FASTDROP_BENCH_SIZES=10,16,20,24,26 python -m pytest bench/ --benchmark-only

Every implementation of one dtype and size lands in the same group ("float32 n=2^24"),
so pytest-benchmark's table compares them side by side.  Outputs are preallocated
(``out=``) except where the implementation has no way to take one (the mask of
``return_mask=True``, ``sample_mask``, torch, jax).  ``extra_info`` records the elements
and the bytes read + written, for throughput.  fastdrop runs at every SIMD level and
thread count chosen in conftest.py; the level and thread count are put back afterwards.

At sizes up to 2^16 each fastdrop benchmark also checks its output against
``fastdrop.reference`` once, so a broken kernel is not timed as a fast one.

The group "small calls float32 n=1024" holds a 1024-element call of every public function
next to ``np.multiply`` on the same array (the calls of ``fastdrop bench``'s small-calls
table), at fastdrop's default SIMD level and thread count.
"""
import sys

import sitepath

sitepath.prefer_built_source_tree()

import numpy as np  # noqa: E402  (after the choice of fastdrop)
import pytest  # noqa: E402

import fastdrop  # noqa: E402
from fastdrop.cli.bench import SMALL_CALL_SIZE, SMALL_CALLS, Arrays, kernel_calls  # noqa: E402

RATE = 0.5
SEED = 20240601
REFERENCE_MAX_SIZE = 1 << 24   # the NumPy reference takes over a second per call there
CHECK_MAX_SIZE = 1 << 16


def record(benchmark, arrays, impl, *, mask=False, **info):
    benchmark.group = arrays.group
    benchmark.extra_info.update(impl=impl, elements=arrays.size, dtype=str(arrays.dtype),
                                bytes_moved=arrays.bytes_moved(mask=mask), **info)


def fastdrop_info(simd_level, num_threads):
    return {"simd": simd_level, "threads": num_threads}


def check_against_reference(arrays, produced, expected_call):
    if arrays.size <= CHECK_MAX_SIZE:
        np.testing.assert_array_equal(produced, expected_call())


# -- baselines --------------------------------------------------------------------------------

def test_np_multiply(benchmark, bench_arrays):
    a = bench_arrays
    record(benchmark, a, "np.multiply(x, 2.0, out=y)")
    benchmark(np.multiply, a.x, 2.0, out=a.y)


def test_np_copyto(benchmark, bench_arrays):
    a = bench_arrays
    record(benchmark, a, "np.copyto(y, x)")
    benchmark(np.copyto, a.y, a.x)


def test_reference_dropout(benchmark, bench_arrays):
    a = bench_arrays
    if a.size > REFERENCE_MAX_SIZE:
        pytest.skip("fastdrop.reference is only benchmarked up to 2^24 elements")
    record(benchmark, a, "fastdrop.reference.dropout(x, out=y)")
    benchmark(fastdrop.reference.dropout, a.x, RATE, seed=SEED, out=a.y)


def test_torch_dropout(benchmark, bench_arrays):
    torch = pytest.importorskip("torch")
    a = bench_arrays
    tensor = torch.from_numpy(a.x)
    record(benchmark, a, "torch.nn.functional.dropout (allocates y)",
           torch=torch.__version__, torch_threads=torch.get_num_threads())
    benchmark(torch.nn.functional.dropout, tensor, RATE, True)


def test_jax_bernoulli_where(benchmark, bench_arrays):
    jax = pytest.importorskip("jax")
    a = bench_arrays
    if a.dtype == np.float64:
        # without x64 JAX silently computes float64 input in float32
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    keep = 1.0 - RATE

    @jax.jit
    def jax_dropout(key, x):
        return jnp.where(jax.random.bernoulli(key, keep, x.shape), x / keep,
                         jnp.zeros((), x.dtype))

    key = jax.random.PRNGKey(SEED)
    x = jnp.asarray(a.x)
    assert jax_dropout(key, x).dtype == a.dtype  # compiles before timing, checks the dtype
    record(benchmark, a, "jit(where(jax.random.bernoulli, x / keep, 0)) (allocates y)",
           jax=jax.__version__)
    benchmark(lambda: jax_dropout(key, x).block_until_ready())


# -- fastdrop ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [False, True], ids=["no-bits", "bits"])
def test_dropout_forward(benchmark, bench_arrays, simd_level, num_threads, bits):
    a = bench_arrays
    record(benchmark, a, "fastdrop.dropout(x, out=y" + (", return_mask=True)" if bits else ")"),
           mask=bits, **fastdrop_info(simd_level, num_threads))
    benchmark(fastdrop.dropout, a.x, RATE, seed=SEED, out=a.y, return_mask=bits)
    check_against_reference(a, a.y, lambda: fastdrop.reference.dropout(a.x, RATE, seed=SEED))


def test_apply_mask(benchmark, bench_arrays, simd_level, num_threads):
    a = bench_arrays
    record(benchmark, a, "fastdrop.apply_mask(x, mask, out=y)", mask=True,
           **fastdrop_info(simd_level, num_threads))
    benchmark(fastdrop.apply_mask, a.x, a.mask, out=a.y)
    check_against_reference(a, a.y, lambda: fastdrop.reference.apply_mask(a.x, a.mask))


def test_backward_from_mask(benchmark, bench_arrays, num_threads):
    a = bench_arrays
    record(benchmark, a, "fastdrop.dropout_backward(grad, mask, out=y)", mask=True,
           **fastdrop_info(fastdrop.simd_level(), num_threads))
    benchmark(fastdrop.dropout_backward, a.x, a.mask, out=a.y)
    check_against_reference(a, a.y, lambda: fastdrop.reference.apply_mask(a.x, a.mask))


def test_backward_regenerate(benchmark, bench_arrays, simd_level, num_threads):
    a = bench_arrays
    record(benchmark, a, "fastdrop.dropout_backward(grad, rate=, seed=, out=y)",
           **fastdrop_info(simd_level, num_threads))
    benchmark(fastdrop.dropout_backward, a.x, rate=RATE, seed=SEED, out=a.y)
    check_against_reference(
        a, a.y, lambda: fastdrop.reference.dropout_backward(a.x, rate=RATE, seed=SEED))


def test_sample_mask(benchmark, bench_size, bench_arrays_for, simd_level, num_threads):
    # The mask does not depend on the dtype: it is timed once, in the float32 group.
    a = bench_arrays_for("float32", bench_size)
    benchmark.group = a.group
    benchmark.extra_info.update(impl="fastdrop.sample_mask(n)", elements=bench_size,
                                bytes_moved=a.mask.nbytes,
                                **fastdrop_info(simd_level, num_threads))
    mask = benchmark(fastdrop.sample_mask, bench_size, RATE, seed=SEED)
    if bench_size <= CHECK_MAX_SIZE:
        assert mask == fastdrop.reference.sample_mask(bench_size, RATE, seed=SEED)


# -- small calls ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_calls():
    return kernel_calls(Arrays("float32", SMALL_CALL_SIZE))


@pytest.mark.parametrize("impl", ["np.multiply", *SMALL_CALLS])
def test_small_call(benchmark, small_calls, impl):
    text, _, call = small_calls[impl]
    benchmark.group = f"small calls float32 n={SMALL_CALL_SIZE}"
    benchmark.extra_info.update(impl=text, elements=SMALL_CALL_SIZE, simd=fastdrop.simd_level(),
                                threads=fastdrop.get_num_threads())
    benchmark(call)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "--benchmark-only", *sys.argv[1:]]))
