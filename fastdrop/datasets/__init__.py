"""Data for the demo and the tests: the bundled MNIST 5k subset, and a reader for full MNIST.

`load_mnist5k()` needs nothing but the package: 5000 MNIST digits (500 per class) are
shipped in ``fastdrop/datasets/data/mnist_5k.npz`` as uint8 pixels, already split into a fixed,
stratified 4000/1000 train/test split (for each class, its first 400 rows of the source
CSV are training rows and its last 100 are test rows; each part is stored in one fixed
shuffled order; ``tools/build_mnist5k.py`` in the source tree rebuilds the file). `load_mnist(path)` reads the full MNIST for users who have it, from the
four standard IDX files (gzipped or not) or from an ``.npz`` with the keys ``x_train``,
``y_train``, ``x_test``, ``y_test`` (the layout Keras uses).

Every loader returns ``(X_train, y_train, X_test, y_test)``: images flattened to rows of
``float32`` in [0, 1] (pixel / 255) and labels as ``int64``.

A file that cannot be what it claims (a truncated or garbled ``.gz`` or ``.npz``, an IDX
file with a wrong magic number or size, a label outside 0..9, a pixel that is NaN or
infinite) is a ``ValueError`` naming the path; a missing file stays a ``FileNotFoundError``.
"""
import gzip
import os
import zipfile
import zlib

import numpy as np

MNIST5K_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "mnist_5k.npz")

#: The standard MNIST file names (as distributed, optionally with a .gz suffix).
MNIST_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")

#: MNIST labels are the digits 0..9.
N_CLASSES = 10

# What a damaged compressed file raises while it is read (gzip.BadGzipFile is an OSError,
# a torn zip member a BadZipFile, a stream cut short an EOFError).
_CORRUPT_FILE_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, zipfile.BadZipFile)

# IDX type codes (third byte of the magic number) -> big-endian dtypes.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def load_mnist5k():
    """The bundled 5000-digit MNIST subset: a fixed stratified 4000/1000 split.

    Returns ``(X_train, y_train, X_test, y_test)`` with ``X`` of shape ``(n, 784)``,
    float32 in [0, 1], and ``y`` int64 labels in 0..9.
    """
    return _from_uint8_npz(MNIST5K_FILE)


def load_mnist(path):
    """Read MNIST from a directory of IDX files or from an ``.npz`` file.

    `path` is either a directory holding ``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``
    (each optionally gzipped, ``*.gz``), or an ``.npz`` file with the arrays ``x_train``,
    ``y_train``, ``x_test`` and ``y_test``.  Images are flattened and scaled to [0, 1]
    float32 (uint8 pixels are divided by 255; float pixels are taken as they are).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        arrays = {key: read_idx(_find_idx_file(path, name)) for key, name in MNIST_IDX_FILES.items()}
        return _as_dataset(arrays, path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"path {path!r} is neither a directory of MNIST IDX files nor an .npz file")
    return _from_uint8_npz(path)


def read_idx(path):
    """Read one IDX file (gzipped if its name ends in .gz) into a native-endian ndarray."""
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except _CORRUPT_FILE_ERRORS as exc:
        raise ValueError(f"{path!r} is truncated or corrupt: {exc}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path!r} is not an IDX file (bad magic number)")
    type_code, ndim = data[2], data[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(f"{path!r}: unknown IDX data type code 0x{type_code:02x}")
    header_end = 4 + 4 * ndim
    if len(data) < header_end:
        raise ValueError(f"{path!r}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[type_code]
    count = int(np.prod(shape, dtype=np.int64))
    expected = header_end + count * dtype.itemsize
    if len(data) != expected:
        raise ValueError(f"{path!r}: IDX header promises shape {shape} ({expected} bytes), "
                         f"but the file holds {len(data)} bytes")
    array = np.frombuffer(data, dtype=dtype, count=count, offset=header_end).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def _find_idx_file(directory, name):
    for candidate in (name, name + ".gz", name.replace("-idx", ".idx"),
                      name.replace("-idx", ".idx") + ".gz"):
        full = os.path.join(directory, candidate)
        if os.path.exists(full):
            return full
    raise FileNotFoundError(f"no {name} or {name}.gz in {directory!r}")


def _from_uint8_npz(path):
    try:
        npz = np.load(path, allow_pickle=False)
    except (ValueError, OSError, *_CORRUPT_FILE_ERRORS) as exc:
        if isinstance(exc, (FileNotFoundError, IsADirectoryError, PermissionError)):
            raise
        raise ValueError(f"{path!r} is not a readable .npz file: {exc}") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(f"{path!r} is not an .npz archive (it holds a single array)")
    with npz:
        missing = [key for key in _NPZ_KEYS if key not in npz.files]
        if missing:
            raise ValueError(f"{path!r} lacks the arrays {missing} "
                             f"(expected keys {list(_NPZ_KEYS)})")
        try:
            arrays = {key: npz[key] for key in _NPZ_KEYS}
        except (ValueError, OSError, *_CORRUPT_FILE_ERRORS) as exc:
            raise ValueError(f"{path!r} is truncated or corrupt: {exc}") from None
    return _as_dataset(arrays, path)


def _as_dataset(arrays, source):
    out = []
    for part in ("train", "test"):
        images, labels = arrays["x_" + part], arrays["y_" + part]
        if images.ndim < 2:
            raise ValueError(f"{source!r}: x_{part} must have one row per image, got shape {images.shape}")
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise ValueError(f"{source!r}: y_{part} must be 1-D with {images.shape[0]} labels, "
                             f"got shape {labels.shape}")
        if labels.dtype.kind not in "iu":
            raise ValueError(f"{source!r}: y_{part} must hold integer labels, got dtype {labels.dtype}")
        _check_labels(labels, f"y_{part}", source)
        out.append(_scale_pixels(images.reshape(images.shape[0], -1), f"x_{part}", source))
        out.append(labels.astype(np.int64))
    return tuple(out)


def _check_labels(labels, name, source):
    bad = np.flatnonzero((labels < 0) | (labels >= N_CLASSES))
    if bad.size:
        raise ValueError(f"{source!r}: {name}[{bad[0]}] = {labels[bad[0]]} is not a digit "
                         f"label in 0..{N_CLASSES - 1}")


def _scale_pixels(images, name, source):
    if images.dtype == np.uint8:
        scaled = images.astype(np.float32)
        scaled /= np.float32(255.0)
        return scaled
    if images.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(images).all(axis=1))
        if bad.size:
            column = int(np.flatnonzero(~np.isfinite(images[bad[0]]))[0])
            raise ValueError(f"{source!r}: {name}[{bad[0]}, {column}] = {images[bad[0], column]} "
                             "is not a finite pixel value")
        return images.astype(np.float32)
    raise ValueError(f"{source!r}: {name} must be uint8 or float pixels, got dtype {images.dtype}")
