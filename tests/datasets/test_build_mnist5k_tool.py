"""tools/build_mnist5k.py, the maintainer script that builds the bundled file from its CSV."""
import importlib.util
import os

import numpy as np
import pytest

from fastdrop import datasets

TOOL = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "tools", "build_mnist5k.py")


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("build_mnist5k", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_csv(path, per_digit):
    """A CSV of `per_digit` rows per digit, interleaved; row r has every pixel (r % 256)."""
    labels = np.tile(np.arange(10), per_digit)
    pixels = (np.arange(labels.size)[:, None] % 256) * np.ones((1, 784), dtype=np.int64)
    np.savetxt(path, np.column_stack([pixels, labels]), fmt="%d", delimiter=",")
    return pixels, labels


def test_the_split_is_stratified_first_400_rows_of_each_digit_for_training(tool, tmp_path):
    pixels, labels = _write_csv(tmp_path / "digits.csv", 500)
    out = tool.build_mnist5k(str(tmp_path / "digits.csv"), str(tmp_path / "out.npz"))
    X_train, y_train, X_test, y_test = datasets.load_mnist(out)
    assert X_train.shape == (4000, 784) and X_test.shape == (1000, 784)
    np.testing.assert_array_equal(np.bincount(y_train), [400] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [100] * 10)
    for digit in range(10):
        rows = np.flatnonzero(labels == digit)
        expected_train = np.sort(pixels[rows[:400], 0]) / 255
        got_train = np.sort(X_train[y_train == digit, 0])
        np.testing.assert_allclose(got_train, expected_train, rtol=1e-6)
    # the same CSV gives the same file, bit for bit
    again = tool.build_mnist5k(str(tmp_path / "digits.csv"), str(tmp_path / "again.npz"))
    for a, b in zip(datasets.load_mnist(again), (X_train, y_train, X_test, y_test)):
        np.testing.assert_array_equal(a, b)


def test_a_csv_without_500_rows_per_digit_is_refused(tool, tmp_path):
    _write_csv(tmp_path / "short.csv", 3)
    with pytest.raises(ValueError, match="expected 500 rows of digit 0, got 3"):
        tool.main([str(tmp_path / "short.csv"), str(tmp_path / "out.npz")])
    assert not (tmp_path / "out.npz").exists()


def test_the_tool_is_not_part_of_the_package():
    assert not hasattr(datasets, "build_mnist5k")
