"""Argument checks of the NN toolkit and the theory code, each written once.

A bool is never taken for a number here: ``True`` is an ``int`` to Python, but a caller
passing it as a width, a count or a seed has made a mistake.
"""
import numbers

import numpy as np


def is_flag(value):
    """True for Python and NumPy bools."""
    return isinstance(value, (bool, np.bool_))


def is_int(value):
    """True for integers that are not bools (Python or NumPy)."""
    return isinstance(value, numbers.Integral) and not is_flag(value)


def is_real(value):
    """True for real numbers that are not bools (Python or NumPy)."""
    return isinstance(value, numbers.Real) and not is_flag(value)


def check_flag(value, name):
    if not is_flag(value):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
    return bool(value)


def check_int(value, name, low=None):
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be at least {low}, got {value}")
    return int(value)


def check_choice(value, name, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_float_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def check_finite(X, name):
    """Raise a ValueError naming `name` and the first (row, column) of the 2-D float array
    `X` that is NaN or infinite.  Scans blocks of rows, so the check needs little memory."""
    rows = max(1, (1 << 16) // max(1, X.shape[1]))
    for start in range(0, X.shape[0], rows):
        finite = np.isfinite(X[start:start + rows])
        if not finite.all():
            row, column = np.unravel_index(int(np.argmin(finite)), finite.shape)
            row += start
            raise ValueError(f"{name}[{row}, {column}] = {X[row, column]} is not finite; "
                             f"{name} must hold only finite numbers")
