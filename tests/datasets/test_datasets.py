"""The bundled MNIST 5k subset and the IDX / npz readers."""
import gzip
import os

import numpy as np
import pytest

from fastdrop import datasets


@pytest.fixture(scope="module")
def mnist5k():
    return datasets.load_mnist5k()


def test_bundled_file_is_small_package_data():
    assert os.path.exists(datasets.MNIST5K_FILE)
    assert os.path.getsize(datasets.MNIST5K_FILE) < 2 * 1024 * 1024


def test_mnist5k_shapes_dtypes_and_ranges(mnist5k):
    X_train, y_train, X_test, y_test = mnist5k
    assert X_train.shape == (4000, 784) and X_test.shape == (1000, 784)
    assert X_train.dtype == np.float32 and X_test.dtype == np.float32
    assert y_train.shape == (4000,) and y_test.shape == (1000,)
    assert y_train.dtype == np.int64
    assert X_train.min() == 0.0 and X_train.max() == 1.0
    # pixels are k/255 exactly as float32
    k = np.rint(X_train[:50] * 255)
    np.testing.assert_array_equal(X_train[:50], k.astype(np.float32) / np.float32(255))


def test_mnist5k_split_is_stratified_and_fixed(mnist5k):
    X_train, y_train, X_test, y_test = mnist5k
    np.testing.assert_array_equal(np.bincount(y_train, minlength=10), [400] * 10)
    np.testing.assert_array_equal(np.bincount(y_test, minlength=10), [100] * 10)
    again = datasets.load_mnist5k()
    np.testing.assert_array_equal(again[0], X_train)
    np.testing.assert_array_equal(again[3], y_test)
    # no test image also appears in the training part
    train_rows = {row.tobytes() for row in (X_train * 255).astype(np.uint8)}
    assert sum(row.tobytes() in train_rows for row in (X_test * 255).astype(np.uint8)) == 0


def _write_idx(path, array, compress):
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}
    array = np.asarray(array)
    header = bytes([0, 0, codes[array.dtype], array.ndim])
    header += np.asarray(array.shape, dtype=">u4").tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_reads_idx_directory(tmp_path, compress):
    rng = np.random.default_rng(1)
    arrays = {
        "x_train": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 6).astype(np.uint8),
        "x_test": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 3).astype(np.uint8),
    }
    for key, name in datasets.MNIST_IDX_FILES.items():
        _write_idx(tmp_path / (name + (".gz" if compress else "")), arrays[key], compress)
    X_train, y_train, X_test, y_test = datasets.load_mnist(tmp_path)
    assert X_train.shape == (6, 784) and X_test.shape == (3, 784)
    np.testing.assert_array_equal(X_train, arrays["x_train"].reshape(6, -1).astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(y_train, arrays["y_train"])
    np.testing.assert_array_equal(y_test, arrays["y_test"])
    assert y_test.dtype == np.int64


def test_read_idx_non_byte_types(tmp_path):
    values = (np.arange(12).reshape(3, 4) - 5).astype(">i4")
    _write_idx(tmp_path / "a.idx", values, False)
    got = datasets.read_idx(tmp_path / "a.idx")
    np.testing.assert_array_equal(got, values)
    assert got.dtype.isnative
    floats = np.linspace(0, 1, 5, dtype=">f4")
    _write_idx(tmp_path / "f.idx.gz", floats, True)
    np.testing.assert_array_equal(datasets.read_idx(tmp_path / "f.idx.gz"), floats)


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="magic"):
        datasets.read_idx(tmp_path / "bad")
    _write_idx(tmp_path / "short", np.zeros(4, dtype=np.uint8), False)
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-1])
    with pytest.raises(ValueError, match="bytes"):
        datasets.read_idx(tmp_path / "short")


def test_load_mnist_reads_npz(tmp_path):
    rng = np.random.default_rng(2)
    x_train = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    y_train = rng.integers(0, 10, 5)
    x_test = rng.integers(0, 256, (2, 28, 28), dtype=np.uint8)
    y_test = rng.integers(0, 10, 2)
    np.savez(tmp_path / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    X_train, got_y_train, X_test, got_y_test = datasets.load_mnist(tmp_path / "mnist.npz")
    np.testing.assert_array_equal(X_train, x_train.reshape(5, -1).astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(got_y_train, y_train)
    assert X_test.shape == (2, 784)
    np.testing.assert_array_equal(got_y_test, y_test)


def test_load_mnist_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        datasets.load_mnist(tmp_path / "nothing.npz")
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        datasets.load_mnist(tmp_path)
    np.savez(tmp_path / "partial.npz", x_train=np.zeros((2, 4), np.uint8), y_train=np.zeros(2, int))
    with pytest.raises(ValueError, match="x_test"):
        datasets.load_mnist(tmp_path / "partial.npz")
    np.savez(tmp_path / "mismatch.npz", x_train=np.zeros((2, 4), np.uint8), y_train=np.zeros(3, int),
             x_test=np.zeros((1, 4), np.uint8), y_test=np.zeros(1, int))
    with pytest.raises(ValueError, match="y_train"):
        datasets.load_mnist(tmp_path / "mismatch.npz")
