"""mc_predict gives a row the same bits however the work is cut: any chunk_bytes, BLAS
thread count, fastdrop thread count, and any split of the batch into calls with
row_offset / total_rows.

The model has general float32 weights (He initialisation, inputs in [0, 1)), so the
matrix products round: equal results come from every row meeting the same products (row
tiles aligned on the global row index, passes grouped by the whole batch, the BLAS on one
thread), not from exact arithmetic.  Results are compared with other runs, never with
stored values."""
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import fastdrop
from conftest import assert_bit_equal
from fastdrop import config
from fastdrop.nn import AlphaDropout, Dense, Sequential, Tanh, build_mlp
from fastdrop.theory import ensemble, mc_predict

FIELDS = ("mean", "std", "predictive_entropy", "mutual_information", "expected_entropy")
ROWS, FEATURES, T, SEED = 1000, 40, 6, 31


def general_model():
    return build_mlp((FEATURES, 96, 64, 7), input_rate=0.2, hidden_rate=0.5, seed=8)


def general_inputs(rows=ROWS):
    return np.random.default_rng(5).random((rows, FEATURES), dtype=np.float32)


@pytest.fixture(scope="module")
def whole():
    return mc_predict(general_model(), general_inputs(), T, seed=SEED, return_samples=True)


def assert_same(result, expected, rows=slice(None)):
    for name in FIELDS:
        assert_bit_equal(getattr(result, name), getattr(expected, name)[rows])
    if result.samples is not None:
        assert_bit_equal(result.samples, expected.samples[:, rows])
    assert result.T == expected.T and result.seed == expected.seed


def blas_threads():
    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def test_the_model_rounds():
    """The products of this model are not exact: float64 gives other logits, so equal bits
    below are the grouping's doing."""
    model, X = general_model(), general_inputs(50)
    layer = model.layers[0]
    z32 = layer.forward_eval(X)
    z64 = X.astype(np.float64) @ layer.W.astype(np.float64) + layer.b
    assert np.any(z32 != z64.astype(np.float32))


@pytest.mark.parametrize("chunk_bytes", [1, 2**16, 2**22, 2**30])
@pytest.mark.parametrize("blas", [1, 2])
def test_chunk_bytes_and_blas_threads_change_nothing(whole, chunk_bytes, blas):
    with threadpool_limits(limits=blas, user_api="blas"):
        result = mc_predict(general_model(), general_inputs(), T, seed=SEED,
                            return_samples=True, chunk_bytes=chunk_bytes)
        assert blas_threads() == [blas] * len(blas_threads())  # restored after the call
    assert_same(result, whole)


@pytest.mark.parametrize("nthreads", [1, 2, 3])
def test_fastdrop_thread_count_changes_nothing(whole, nthreads):
    with config.threads(nthreads):
        result = mc_predict(general_model(), general_inputs(), T, seed=SEED, return_samples=True)
    assert_same(result, whole)


@pytest.mark.parametrize("start, stop", [(337, 701), (0, 1), (999, 1000), (0, 64), (63, 127),
                                         (500, 1000), (1, 999)])
def test_a_block_of_rows_is_those_rows_of_the_whole_batch(whole, start, stop):
    X = general_inputs()
    result = mc_predict(general_model(), X[start:stop], T, seed=SEED, return_samples=True,
                        row_offset=start, total_rows=ROWS)
    assert_same(result, whole, slice(start, stop))


def test_blocks_of_a_partition_make_the_whole(whole):
    X, model = general_inputs(), general_model()
    edges = (0, 1, 300, 301, 717, 1000)
    parts = [mc_predict(model, X[a:b], T, seed=SEED, row_offset=a, total_rows=ROWS)
             for a, b in zip(edges[:-1], edges[1:])]
    for name in FIELDS:
        assert_bit_equal(np.concatenate([getattr(p, name) for p in parts]), getattr(whole, name))


def test_the_masks_follow_the_global_row(whole):
    """Rows 337.. predicted as if they started at 336 draw other masks."""
    X = general_inputs()
    shifted = mc_predict(general_model(), X[337:400], T, seed=SEED, row_offset=336,
                         total_rows=ROWS)
    assert not np.array_equal(shifted.mean, whole.mean[337:400])
    alone = mc_predict(general_model(), X[337:400], T, seed=SEED)  # a batch of 63 rows
    assert not np.array_equal(alone.mean, whole.mean[337:400])


@pytest.mark.parametrize("rows", [1, 3, 5, 17, 65, 129])
def test_awkward_batches_split_anywhere(rows):
    model, X = general_model(), general_inputs(rows)
    for passes in (1, 5, 129):
        expected = mc_predict(model, X, passes, seed=4, return_samples=True)
        for cut in sorted({1, rows // 2, rows - 1} - {0, rows}):
            for (a, b), chunk in (((0, cut), 2**12), ((cut, rows), 2**26)):
                part = mc_predict(model, X[a:b], passes, seed=4, return_samples=True,
                                  row_offset=a, total_rows=rows, chunk_bytes=chunk)
                assert_same(part, expected, slice(a, b))
        last = mc_predict(model, X[-1:], passes, seed=4, row_offset=rows - 1, total_rows=rows)
        assert_same(last, expected, slice(rows - 1, rows))


def test_tiles_cover_the_batch_aligned_on_the_global_row():
    for total in (1, 2, 63, 64, 65, 1000, 4097):
        for passes in (1, 2, 7, 16, 1000):
            tile_rows, group = ensemble._mc_tiling(total, passes)
            tiles = -(-total // tile_rows)
            assert 0 <= tiles * tile_rows - total < tiles  # only the last tile is padded
            assert 1 <= group <= passes
            for start, stop in ((0, total), (total // 3, total), (total - 1, total)):
                cover = ensemble._tiles_of(start, stop - start, total, tile_rows)
                held = [r for t in cover for r in range(t.first_row + t.lo, t.first_row + t.hi)]
                assert held == list(range(start, stop))


def test_concurrent_calls_give_the_same_bits(whole):
    """Calls on several threads at once (Dask's threaded scheduler) share one BLAS limit."""
    model, X = general_model(), general_inputs()
    results = [None] * 4
    before = blas_threads()

    def predict(i):
        results[i] = mc_predict(model, X, T, seed=SEED, return_samples=True)

    threads = [threading.Thread(target=predict, args=(i,)) for i in range(len(results))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads)
    for result in results:
        assert_same(result, whole)
    assert blas_threads() == before


def test_variant_noise_layers_take_the_whole_batch_only():
    model = Sequential([Dense(6, 8, seed=1), Tanh(), AlphaDropout(0.2, seed=1), Dense(8, 3, seed=2)])
    X = np.random.default_rng(3).standard_normal((5, 6))
    whole = mc_predict(model, X, 4, seed=9)
    same = mc_predict(model, X, 4, seed=9, row_offset=0, total_rows=5)
    np.testing.assert_array_equal(same.mean, whole.mean)
    with pytest.raises(ValueError, match="Dropout and DropoutDense layers only"):
        mc_predict(model, X[1:], 4, seed=9, row_offset=1, total_rows=5)


def test_row_block_arguments_are_checked():
    model, X = general_model(), general_inputs(10)
    with pytest.raises(ValueError, match="row_offset must be at least 0"):
        mc_predict(model, X, 2, seed=1, row_offset=-1)
    with pytest.raises(TypeError, match="row_offset must be an int"):
        mc_predict(model, X, 2, seed=1, row_offset=1.0)
    with pytest.raises(TypeError, match="total_rows must be an int"):
        mc_predict(model, X, 2, seed=1, total_rows="10")
    with pytest.raises(ValueError, match=r"rows \[5, 15\).*total_rows=12"):
        mc_predict(model, X, 2, seed=1, row_offset=5, total_rows=12)
    with pytest.raises(ValueError, match="chunk_bytes must be at least 1"):
        mc_predict(model, X, 2, seed=1, chunk_bytes=0)
    with pytest.raises(TypeError, match="chunk_bytes must be an int"):
        mc_predict(model, X, 2, seed=1, chunk_bytes=2.0**20)
    fastdrop.dropout(np.ones(3, np.float32), seed=1)  # the kernels still work after refusals
