"""The CS231n dropout pair on fastdrop's kernels: a drop-in for ``layers.py``.

    from fastdrop.cs231n import dropout_forward, dropout_backward

    out, cache = dropout_forward(x, {"p": 0.8, "mode": "train"})
    dx = dropout_backward(dout, cache)

The convention is the course's: ``dropout_param["p"]`` is the probability of **keeping**
a unit (fastdrop's ``keep_prob``, not its ``rate``), ``"mode"`` is ``"train"`` or
``"test"``, and training is inverted dropout (kept units scaled by 1/p; test mode
returns x itself).  With ``dropout_param["seed"]`` every call uses the same mask, as the
gradient checks need (and NumPy's global random state is left alone); without it each call
draws its key from NumPy's global generator, as the assignment's own ``np.random.rand``
mask does, so ``np.random.seed(231)`` at the top of a notebook repeats the run.  The mask
is kept in ``cache`` as 1 bit per element (a ``fastdrop.Mask``).
"""
from __future__ import annotations

import numbers
from typing import Any, Optional

import numpy as np
from numpy.typing import NDArray

import fastdrop
from fastdrop.api import _Seed

__all__ = ["dropout_forward", "dropout_backward"]

MODES = ("train", "test")

#: ``(dropout_param, mask)``: the Mask of a training call, None in test mode
Cache = tuple[dict[str, Any], Optional[fastdrop.Mask]]


def _check_param(dropout_param: dict[str, Any]) -> tuple[float, str, _Seed]:
    """(keep probability, mode, seed) from a CS231n dropout_param dict."""
    if not isinstance(dropout_param, dict):
        raise TypeError(f"dropout_param must be a dict, got {type(dropout_param).__name__}")
    for key in ("p", "mode"):
        if key not in dropout_param:
            raise ValueError(f"dropout_param must have {key!r} "
                             "(p: the probability of keeping a unit; mode: 'train' or 'test')")
    p, mode = dropout_param["p"], dropout_param["mode"]
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"dropout_param['p'] (the keep probability) must be a real number, "
                        f"got {type(p).__name__}")
    if not 0.0 <= float(p) <= 1.0:  # also rejects NaN
        raise ValueError(f"dropout_param['p'] (the keep probability) must be in [0, 1], got {p!r}")
    if mode not in MODES:
        raise ValueError(f"dropout_param['mode'] must be 'train' or 'test', got {mode!r}")
    return float(p), mode, dropout_param.get("seed")


def dropout_forward(x: NDArray[Any], dropout_param: dict[str, Any]) -> tuple[NDArray[Any], Cache]:
    """Inverted dropout, keeping each unit with probability ``dropout_param["p"]``.

    Returns ``(out, cache)``; ``cache = (dropout_param, mask)`` with ``mask`` the
    ``fastdrop.Mask`` of a training call (None in test mode, where ``out`` is x).
    """
    p, mode, seed = _check_param(dropout_param)
    if mode == "test":
        return x, (dropout_param, None)
    if seed is None:  # one draw from NumPy's global generator: np.random.seed repeats it
        seed = int(np.random.randint(0, 1 << 64, dtype=np.uint64))
    out, mask = fastdrop.dropout(x, keep_prob=p, seed=seed, return_mask=True)
    return out, (dropout_param, mask)


def dropout_backward(dout: NDArray[Any], cache: Cache) -> NDArray[Any]:
    """The gradient of dropout_forward: dout scaled by 1/p where kept, 0 where dropped."""
    dropout_param, mask = cache
    _, mode, _ = _check_param(dropout_param)
    if mode == "test":
        return dout
    # a training-mode cache holds a Mask; anything else is apply_mask's TypeError
    return fastdrop.apply_mask(dout, mask)  # type: ignore[arg-type]
