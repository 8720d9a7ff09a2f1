"""Rebuild the bundled MNIST subset, fastdrop/datasets/data/mnist_5k.npz, from its source CSV.

    python tools/build_mnist5k.py ../shared/data/mnist_5k.csv.gz [OUT.npz]

The CSV holds 5000 rows of 784 pixel values 0-255 followed by the label, 500 rows per
digit.  For each digit its first 400 rows become training rows and its last 100 test
rows; each part is shuffled once with a fixed seed.  The result is what
`fastdrop.datasets.load_mnist5k` reads.  Users never need this script: it lives outside
the package so the data can be regenerated and checked.
"""
import argparse
import gzip
import os
import sys

import numpy as np

TRAIN_PER_CLASS = 400
TEST_PER_CLASS = 100
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "fastdrop",
                           "datasets", "data", "mnist_5k.npz")


def build_mnist5k(csv_path, out_path=DEFAULT_OUT):
    """Write the stratified, shuffled 4000/1000 split of the CSV to `out_path`; return it."""
    opener = gzip.open if os.fspath(csv_path).endswith(".gz") else open
    with opener(csv_path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
    if table.shape[1] != 785:
        raise ValueError(f"{csv_path!r}: expected rows of 784 pixels + 1 label, got shape {table.shape}")
    if table.min() < 0 or table[:, :784].max() > 255 or table[:, 784].max() > 9:
        raise ValueError(f"{csv_path!r}: pixels must be in 0..255 and labels in 0..9")
    images, labels = table[:, :784].astype(np.uint8), table[:, 784]
    train_rows, test_rows = [], []
    for digit in range(10):
        rows = np.flatnonzero(labels == digit)
        if rows.size != TRAIN_PER_CLASS + TEST_PER_CLASS:
            raise ValueError(f"{csv_path!r}: expected {TRAIN_PER_CLASS + TEST_PER_CLASS} "
                             f"rows of digit {digit}, got {rows.size}")
        train_rows.append(rows[:TRAIN_PER_CLASS])
        test_rows.append(rows[TRAIN_PER_CLASS:])
    rng = np.random.default_rng(5000)
    train_rows = rng.permutation(np.concatenate(train_rows))
    test_rows = rng.permutation(np.concatenate(test_rows))
    np.savez_compressed(out_path, x_train=images[train_rows], y_train=labels[train_rows].astype(np.uint8),
                        x_test=images[test_rows], y_test=labels[test_rows].astype(np.uint8))
    return out_path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", help="the source CSV (optionally .gz), e.g. ../shared/data/mnist_5k.csv.gz")
    parser.add_argument("out", nargs="?", default=DEFAULT_OUT,
                        help="where to write the .npz (default: the bundled file)")
    args = parser.parse_args(argv)
    print(build_mnist5k(args.csv, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
