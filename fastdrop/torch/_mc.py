"""MC dropout for torch models: T stochastic passes whose bits do not depend on batching.

Sample (t, r), pass t of global row r, is the global sample index ``g = r * T + t``.  Its
dropout masks are a pure function of (key, the dropout module's index, g): module i draws
from stream i, and sample g takes the counters ``[g * n, (g + 1) * n)`` of the module's
noise (n elements per sample), so a row's T passes are one contiguous run.  The model runs
on fixed tiles of ``tile`` consecutive samples, aligned on g (the last padded with zero
rows), one tile per forward, with torch's intra-op thread count fixed for the call: every
GEMM then has the same shape and every sample the same place in it, however many rows or
passes a call has and whatever ``chunk`` is.  (torch's CPU GEMMs give a row different
bits for a small number of rows than for many, and their thread count can change the
reduction; neither is left to vary here.)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch.nn.modules.dropout import _DropoutNd

DEFAULT_TILE = 128


@dataclass(frozen=True)
class MCResult:
    """What `mc_predict` returns (torch tensors on the CPU).

    ``samples`` (T, B, ...): the model's T outputs for each row; ``mean`` (B, K): the mean
    of the T softmax probabilities (float64); ``predictive_entropy`` (B,): H[mean] in nats;
    ``expected_entropy`` (B,): mean_t H[p_t]; ``mutual_information`` (B,): their difference
    (BALD, >= 0), as ``fastdrop.theory.mc_predict``; ``seed``: the 64-bit key used.
    """

    samples: torch.Tensor
    mean: torch.Tensor
    predictive_entropy: torch.Tensor
    mutual_information: torch.Tensor
    expected_entropy: torch.Tensor
    T: int
    seed: int


def _kind_of(module: _DropoutNd) -> str:
    kind = getattr(module, "_kind", None)
    if isinstance(kind, str):
        return kind
    for cls, name in ((torch.nn.FeatureAlphaDropout, "feature_alpha_dropout"),
                      (torch.nn.AlphaDropout, "alpha_dropout"),
                      (torch.nn.Dropout1d, "dropout1d"), (torch.nn.Dropout2d, "dropout2d"),
                      (torch.nn.Dropout3d, "dropout3d"), (torch.nn.Dropout, "dropout")):
        if isinstance(module, cls):
            return name
    raise TypeError(f"mc_predict: {type(module).__name__} is not a dropout module it knows")


def _check_positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


class _TileMasks:
    """The masks of the current tile: module i, tile k -> stream i, offset k * noise size."""

    def __init__(self, key: int) -> None:
        self.key = key
        self.tile_index = 0

    def forward_of(self, module: _DropoutNd, index: int) -> Any:
        from fastdrop.torch import _dropout_tile  # the functions' own checks and operators

        def forward(input: torch.Tensor) -> torch.Tensor:
            return _dropout_tile(_kind_of(module), input, module.p, self.key, index,
                                 self.tile_index)
        return forward


def mc_predict(model: torch.nn.Module, x: torch.Tensor, T: int, *, chunk: Optional[int] = None,
               seed: Any = None, row_offset: int = 0, tile: int = DEFAULT_TILE,
               threads: int = 1) -> MCResult:
    """MC dropout: T stochastic passes of `model` over the rows of `x`.

    Every dropout module of `model` (torch.nn's and fastdrop.torch's) drops with its own
    p on every pass; every other module runs in eval mode.  The training flags of all
    modules and their state (buffers, fastdrop modules' steps, torch's generator when
    `seed` is given) are as they were afterwards.  `seed` (any seed fastdrop takes; None:
    one key drawn from torch's generator) fixes every mask; `row_offset` is the global
    index of x's first row, so rows predicted in separate calls get the bits one call
    gives them.  `chunk`: samples (row, pass) gathered per step (a memory bound, rounded
    up to whole tiles); it does not change a bit.  `tile`: samples per forward (the GEMM
    shape; changing it may change bits).  `threads`: torch's intra-op threads inside.
    """
    from fastdrop.torch import _check_tensor, _key, _U32

    _check_tensor(x)
    T = _check_positive_int(T, "T")
    tile = _check_positive_int(tile, "tile")
    threads = _check_positive_int(threads, "threads")
    if isinstance(row_offset, bool) or not isinstance(row_offset, int) or row_offset < 0:
        raise ValueError(f"row_offset must be an int >= 0, got {row_offset!r}")
    chunk_tiles = 1 if chunk is None else math.ceil(_check_positive_int(chunk, "chunk") / tile)
    if x.dim() < 1:
        raise ValueError("x must have a batch axis (rows on axis 0), got a 0-D tensor")
    if seed is None:
        low, high = torch.randint(0, _U32, (2,)).tolist()
        key = int(low) | (int(high) << 32)
    else:
        key = _key(seed)
    sites = [m for m in model.modules() if isinstance(m, _DropoutNd)]
    if not sites:
        raise ValueError("model has no dropout module: its T passes would all be the same")

    rows = x.shape[0]
    first, last = row_offset * T, (row_offset + rows) * T  # this call's global samples
    masks = _TileMasks(key)
    flags = [(m, m.training) for m in model.modules()]
    saved_threads = torch.get_num_threads()
    outputs: list[torch.Tensor] = []
    try:
        model.eval()
        for index, site in enumerate(sites):
            site.forward = masks.forward_of(site, index)
        torch.set_num_threads(threads)
        with torch.no_grad():
            for k0 in range(first // tile, math.ceil(last / tile), chunk_tiles):
                k1 = min(k0 + chunk_tiles, math.ceil(last / tile))
                outputs.append(_run_tiles(model, x, T, row_offset, first, last, k0, k1, tile,
                                          masks))
    finally:
        torch.set_num_threads(saved_threads)
        for site in sites:
            site.__dict__.pop("forward", None)
        for member, training in flags:
            member.training = training
    flat = torch.cat(outputs)  # (rows * T, ...): row-major over (row, pass)
    samples = flat.reshape((rows, T) + flat.shape[1:]).transpose(0, 1)
    return _summaries(samples, T, key)


def _run_tiles(model: torch.nn.Module, x: torch.Tensor, T: int, row_offset: int, first: int,
               last: int, k0: int, k1: int, tile: int, masks: _TileMasks) -> torch.Tensor:
    """The outputs of this call's samples in tiles k0 .. k1 - 1, one forward per tile."""
    pieces = []
    for k in range(k0, k1):
        g = torch.arange(k * tile, (k + 1) * tile)
        present = (g >= first) & (g < last)
        local_rows = torch.where(present, g // T - row_offset, 0)
        batch = x.index_select(0, local_rows)
        batch[~present] = 0  # padding: rows of other calls, or past the end
        masks.tile_index = k
        out = model(batch)
        pieces.append(out[present])
    return torch.cat(pieces)


def _summaries(samples: torch.Tensor, T: int, key: int) -> MCResult:
    """Mean, entropies and mutual information of the softmax of the samples, pass by pass in
    float64 (so each row's sums are in one order for any number of rows)."""
    log_p = torch.log_softmax(samples.to(torch.float64), dim=-1)
    p = log_p.exp()
    sum_p = p[0].clone()
    sum_entropy = -(p[0] * log_p[0]).sum(dim=-1)
    for t in range(1, T):
        sum_p += p[t]
        sum_entropy += -(p[t] * log_p[t]).sum(dim=-1)
    mean = sum_p / T
    predictive_entropy = -torch.where(mean > 0, mean * mean.log(), 0.0).sum(dim=-1)
    expected_entropy = sum_entropy / T
    mutual_information = (predictive_entropy - expected_entropy).clamp_min(0.0)
    return MCResult(samples, mean, predictive_entropy, mutual_information, expected_entropy,
                    T, key)
