"""fastdrop.dask on a real distributed.LocalCluster: two worker processes on the loopback
interface, started and closed here.  The same chunkings as test_dask_api.py give the
in-memory bits; MC prediction is row for row the in-memory one (exact and rounding
weights, several row chunkings) with the model sent to each worker once; a worker killed in the middle of a computation (Dask reruns its tasks
elsewhere) changes nothing.  Every wait is bounded."""
import os
import tempfile

import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster

import fastdrop
import fastdrop.dask as fdd
from fastdrop import theory
from fastdrop.nn import build_mlp
from conftest import assert_bit_equal
from test_dask_api import CASES, assert_all_equal, lazy_and_expected
from test_dask_mc import FIELDS, dyadic_inputs, dyadic_model

TIMEOUT = 120  # seconds, for any one computation


@pytest.fixture(scope="module")
def client():
    # Starting worker processes sets OMP_NUM_THREADS and friends in this process's own
    # environment and leaves them there; later tests and their subprocesses must not see it.
    environ = dict(os.environ)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None, silence_logs=40)
    client = Client(cluster, timeout=TIMEOUT)
    try:
        client.wait_for_workers(2, timeout=TIMEOUT)
        yield client
    finally:
        client.close(timeout=30)
        cluster.close(timeout=30)
        os.environ.clear()
        os.environ.update(environ)


def test_every_chunking_gives_the_in_memory_bits_on_the_cluster(client):
    """The float32 cases of test_dask_api.py (every shape and chunking), submitted together."""
    cases = [lazy_and_expected(case) for case in CASES if case[2] == np.float32]
    futures = client.compute([list(lazy.values()) for lazy, _ in cases])
    for (lazy, expected), future in zip(cases, futures):
        assert_all_equal(dict(zip(lazy, future.result(timeout=TIMEOUT))), expected)


def test_mc_predict_on_the_cluster_is_row_for_row_the_in_memory_one(client):
    model, X = dyadic_model(), dyadic_inputs()
    expected = theory.mc_predict(model, X, 7, seed=12)
    result = fdd.mc_predict(model, da.from_array(X, chunks=((5, 11, 1, 30, 6), -1)), 7, seed=12)
    for name in FIELDS:
        got = client.compute(getattr(result, name)).result(timeout=TIMEOUT)
        assert_bit_equal(got, getattr(expected, name))


@pytest.mark.parametrize("chunks", [1000, 128, (1, 299, 700)], ids=str)
def test_mc_predict_with_general_weights_on_the_cluster(client, chunks):
    """float32 weights that round: each worker process (its own BLAS, one thread per
    worker) gives the rows the bits of the in-memory call in this process."""
    model = build_mlp((24, 160, 96, 6), input_rate=0.2, hidden_rate=0.5, seed=14)
    X = np.random.default_rng(15).random((1000, 24), dtype=np.float32)
    expected = theory.mc_predict(model, X, 6, seed=21)
    result = fdd.mc_predict(model, da.from_array(X, chunks=(chunks, -1)), 6, seed=21)
    fields = client.compute([getattr(result, name) for name in FIELDS])
    for name, future in zip(FIELDS, fields):
        assert_bit_equal(future.result(timeout=TIMEOUT), getattr(expected, name))


class _CountUnpickling:
    """Makes a fresh directory in `where` each time it is unpickled."""

    def __init__(self, where):
        self.where = where

    def __reduce__(self):
        return tempfile.mkdtemp, ("", "unpickled-", self.where)


def test_the_model_goes_to_each_worker_once(client, tmp_path):
    model, X = dyadic_model(), dyadic_inputs()
    model.unpickling_probe = _CountUnpickling(str(tmp_path))
    result = fdd.mc_predict(model, da.from_array(X, chunks=(5, -1)), 3, seed=1)
    blocks = result.mean.numblocks[0]
    assert blocks == 11
    mean = client.compute(result.mean).result(timeout=TIMEOUT)
    np.testing.assert_array_equal(mean, theory.mc_predict(model, X, 3, seed=1).mean)
    unpickled = len(os.listdir(tmp_path))
    # two workers (and possibly the scheduler once), never once per block
    assert 1 <= unpickled <= 3 < blocks


def _kill_worker_once(block, marker):
    """The first time any task runs this, its worker process dies on the spot."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return block
    os.close(fd)
    os._exit(1)


def test_a_worker_killed_mid_computation_changes_nothing(client, tmp_path):
    x = np.random.default_rng(2).standard_normal((64, 48)).astype(np.float32)
    dx = da.from_array(x, chunks=(8, 16))
    marker = str(tmp_path / "killed")
    y = fdd.dropout(dx, 0.35, seed=99, stream=4, noise_shape=(64, 1))
    z = fdd.gaussian_dropout(y.map_blocks(_kill_worker_once, marker, meta=np.empty((0, 0), y.dtype)), 0.2,
                             seed=98)
    got = client.compute(z).result(timeout=TIMEOUT)
    assert os.path.exists(marker)  # a worker did die
    expected = fastdrop.gaussian_dropout(fastdrop.dropout(x, 0.35, seed=99, stream=4,
                                                          noise_shape=(64, 1)), 0.2, seed=98)
    assert_bit_equal(got, expected)
    client.wait_for_workers(2, timeout=TIMEOUT)  # the nanny brings the worker back
