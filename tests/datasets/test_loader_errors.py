"""Damaged or wrong files given to the MNIST loaders: a ValueError naming the path."""
import gzip
import re

import numpy as np
import pytest

from fastdrop import datasets


def _idx_bytes(array):
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">f4"): 0x0D}
    header = bytes([0, 0, codes[array.dtype], array.ndim])
    return header + np.asarray(array.shape, dtype=">u4").tobytes() + array.tobytes()


def _mnist_arrays(seed=0):
    rng = np.random.default_rng(seed)
    return {"x_train": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
            "y_train": rng.integers(0, 10, 6).astype(np.uint8),
            "x_test": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
            "y_test": rng.integers(0, 10, 3).astype(np.uint8)}


def _write_idx_dir(directory, arrays):
    for key, name in datasets.MNIST_IDX_FILES.items():
        with gzip.open(directory / (name + ".gz"), "wb") as f:
            f.write(_idx_bytes(arrays[key]))


def _raises_naming(path, match=""):
    return pytest.raises(ValueError, match=re.escape(repr(str(path))) + ".*" + match)


def test_truncated_gz_names_the_file(tmp_path):
    _write_idx_dir(tmp_path, _mnist_arrays())
    victim = tmp_path / (datasets.MNIST_IDX_FILES["x_test"] + ".gz")
    victim.write_bytes(victim.read_bytes()[:-20])
    with _raises_naming(victim, "truncated or corrupt"):
        datasets.load_mnist(tmp_path)
    with _raises_naming(victim):
        datasets.read_idx(victim)


def test_garbage_gz_names_the_file(tmp_path):
    victim = tmp_path / "labels.idx.gz"
    victim.write_bytes(b"this is not gzip data at all" * 4)
    with _raises_naming(victim, "truncated or corrupt"):
        datasets.read_idx(victim)
    # a valid gzip header followed by a corrupt deflate stream
    good = gzip.compress(_idx_bytes(np.arange(200, dtype=np.uint8)))
    victim.write_bytes(good[:12] + bytes(b ^ 0xA5 for b in good[12:]))
    with _raises_naming(victim):
        datasets.read_idx(victim)


@pytest.mark.parametrize("header, match", [
    (b"\x00\x01\x08\x01\x00\x00\x00\x02", "magic"),         # second magic byte set
    (b"\x00\x00\x07\x01\x00\x00\x00\x02", "type code"),     # unknown element type
    (b"\x00\x00\x08\x03\x00\x00\x00\x02", "header"),        # 3 dims promised, 1 given
    (b"\x00\x00\x08\x01\x00\x00\x00\x05", "bytes"),         # 5 elements promised, 2 given
])
def test_idx_wrong_magic_or_size_names_the_file(tmp_path, header, match):
    victim = tmp_path / "bad.idx"
    victim.write_bytes(header + b"\x01\x02")
    with _raises_naming(victim, match):
        datasets.read_idx(victim)


def test_idx_extra_bytes_name_the_file(tmp_path):
    victim = tmp_path / "long.idx"
    victim.write_bytes(_idx_bytes(np.arange(4, dtype=np.uint8)) + b"\x00")
    with _raises_naming(victim, "bytes"):
        datasets.read_idx(victim)


def test_truncated_npz_names_the_file(tmp_path):
    victim = tmp_path / "mnist.npz"
    np.savez(victim, **_mnist_arrays())
    data = victim.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 30):
        victim.write_bytes(data[:cut])
        with _raises_naming(victim):
            datasets.load_mnist(victim)


def test_corrupt_npz_member_names_the_file(tmp_path):
    victim = tmp_path / "mnist.npz"
    np.savez_compressed(victim, **_mnist_arrays())
    data = bytearray(victim.read_bytes())
    start = data.index(b"x_test.npy") + 40  # inside that member's deflate stream
    data[start:start + 64] = bytes(64)
    victim.write_bytes(bytes(data))
    with _raises_naming(victim, "truncated or corrupt"):
        datasets.load_mnist(victim)


def test_npz_that_is_something_else_names_the_file(tmp_path):
    plain = tmp_path / "plain.npz"
    with open(plain, "wb") as f:
        np.save(f, np.zeros(3))
    with _raises_naming(plain, "single array"):
        datasets.load_mnist(plain)
    text = tmp_path / "text.npz"
    text.write_text("x_train,y_train\n1,2\n")
    with _raises_naming(text, "not a readable"):
        datasets.load_mnist(text)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, x_train=np.array([{"a": 1}], dtype=object), y_train=np.zeros(1, int),
             x_test=np.zeros((1, 4), np.uint8), y_test=np.zeros(1, int))
    with _raises_naming(pickled):
        datasets.load_mnist(pickled)


@pytest.mark.parametrize("bad_label", [10, 200])
def test_out_of_range_label_names_file_array_and_index(tmp_path, bad_label):
    arrays = _mnist_arrays()
    arrays["y_test"][2] = bad_label
    victim = tmp_path / "mnist.npz"
    np.savez(victim, **arrays)
    with _raises_naming(victim, rf"y_test\[2\] = {bad_label}"):
        datasets.load_mnist(victim)
    _write_idx_dir(tmp_path, arrays)
    with _raises_naming(tmp_path, rf"y_test\[2\] = {bad_label}"):
        datasets.load_mnist(tmp_path)


def test_negative_label_is_rejected(tmp_path):
    arrays = _mnist_arrays()
    arrays["y_train"] = arrays["y_train"].astype(np.int8)
    arrays["y_train"][4] = -1
    _write_idx_dir(tmp_path, arrays)
    with _raises_naming(tmp_path, r"y_train\[4\] = -1"):
        datasets.load_mnist(tmp_path)


@pytest.mark.parametrize("bad_pixel", [np.nan, np.inf, -np.inf])
def test_non_finite_pixels_name_file_array_and_index(tmp_path, bad_pixel):
    arrays = _mnist_arrays()
    arrays["x_train"] = arrays["x_train"].astype(np.float32) / 255
    arrays["x_train"][3, 1, 2] = bad_pixel
    victim = tmp_path / "mnist.npz"
    np.savez(victim, **arrays)
    with _raises_naming(victim, r"x_train\[3, 30\]"):
        datasets.load_mnist(victim)


def test_good_files_still_load(tmp_path):
    arrays = _mnist_arrays()
    _write_idx_dir(tmp_path, arrays)
    X_train, y_train, X_test, y_test = datasets.load_mnist(tmp_path)
    np.testing.assert_array_equal(y_test, arrays["y_test"])
    assert X_train.shape == (6, 784) and np.isfinite(X_train).all()


def test_missing_file_is_still_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        datasets.read_idx(tmp_path / "absent.idx.gz")
