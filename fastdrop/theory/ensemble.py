"""Dropout as an ensemble, made checkable.

A dropout layer with ``n`` units defines ``2**n`` thinned networks that share all their
weights; mask ``m`` has probability ``prod_i p_i**m_i * (1 - p_i)**(1 - m_i)``.  This
module runs those networks explicitly, so the claims of the theory can be tested on a
real model instead of being taken on trust:

- `enumerate_masks` lists every mask of a layer with its probability;
- `subnetwork_predictions` runs every thinned network of one dropout layer of a
  `fastdrop.nn.Sequential` (batched over masks);
- `nwgm` (normalized weighted geometric mean) and `arithmetic_mean` combine them;
- `compare` sets the deterministic (weight-scaled) prediction against both means and a
  Monte Carlo estimate;
- `mc_predict` is MC dropout over any number of dropout layers, with the usual
  uncertainty summaries (predictive entropy, mutual information / BALD);
- `marginalized_linear_loss` is the closed form of the dropout objective of linear
  regression (Srivastava et al. 2014, section 9.1).

Mask ``k`` of `enumerate_masks` keeps unit ``i`` iff bit ``i`` of ``k`` is set, so mask 0
drops everything and mask ``2**n - 1`` keeps everything.
"""
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import numpy as np
import threadpoolctl

from ..api import dropout
from ..config import get_num_threads
from .._validate import resolve_seed
from ..nn import Dropout, DropoutDense
from ..nn._checks import check_int, is_flag, is_int

#: Enumeration beyond this many units is refused: 2**24 masks is already 16.7 million
#: forward passes per input, and the mask table alone takes 400 MB.
MAX_ENUMERATED_UNITS = 24

# Bytes of activations one batched forward may hold (the widest layer of the chunk).
_DEFAULT_CHUNK_BYTES = 64 * 2**20


# -- masks and their probabilities ---------------------------------------------------------

def enumerate_masks(n, keep_prob):
    """All ``2**n`` dropout masks of ``n`` units and their probabilities.

    Returns ``(masks, probs)``: ``masks`` is a ``(2**n, n)`` bool array (True = kept;
    row ``k`` keeps unit ``i`` iff bit ``i`` of ``k`` is set) and ``probs`` the float64
    probabilities ``prod_i p_i**m_i * (1 - p_i)**(1 - m_i)``, which sum to 1.
    ``keep_prob`` is one probability for every unit or a sequence of ``n`` of them.
    """
    n = _check_unit_count(n)
    keep = _check_keep_prob(keep_prob, n)
    count = 1 << n
    index = np.arange(count, dtype=np.uint32)
    masks = np.empty((count, n), dtype=bool)
    for unit in range(n):
        np.not_equal(index & np.uint32(1 << unit), 0, out=masks[:, unit])
    # Unit i decides bit i: appending it doubles the table, dropped half first.
    probs = np.ones(1)
    for p in keep:
        probs = np.concatenate([probs * (1.0 - p), probs * p])
    return masks, probs


def _check_unit_count(n):
    n = check_int(n, "n", 0)
    if n > MAX_ENUMERATED_UNITS:
        raise ValueError(
            f"n={n} dropout units give 2**{n} = {1 << n:,} thinned networks: enumerating "
            f"them is limited to n <= {MAX_ENUMERATED_UNITS} (time and memory grow as 2**n). "
            f"Use fastdrop.theory.mc_predict to estimate the ensemble average by sampling "
            f"masks instead.")
    return n


def _check_keep_prob(keep_prob, n):
    """keep_prob as a float64 vector of n probabilities in [0, 1]."""
    if is_flag(keep_prob):
        raise TypeError("keep_prob must be a number or a sequence of numbers, got bool")
    try:
        keep = np.asarray(keep_prob, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"keep_prob must be a number or a sequence of numbers, "
                        f"got {type(keep_prob).__name__}") from None
    if keep.ndim == 0:
        keep = np.full(n, float(keep))
    elif keep.shape != (n,):
        raise ValueError(f"keep_prob must be a scalar or hold one value per unit "
                         f"(shape ({n},)), got shape {keep.shape}")
    if not np.all((keep >= 0.0) & (keep <= 1.0)):  # NaN fails both comparisons
        raise ValueError(f"keep_prob must lie in [0, 1], got {keep_prob!r}")
    return keep


# -- combining the members' predictions -----------------------------------------------------

def _check_ensemble(P, weights):
    P = np.asarray(P)
    if P.dtype.kind not in "fiu":
        raise TypeError(f"P must hold real probabilities, got dtype {P.dtype}")
    if P.ndim != 3:
        raise ValueError(f"P must have shape (members, batch, classes), got shape {P.shape}")
    P = P.astype(np.float64, copy=False)
    if P.size and (np.any(P < 0) or np.any(P > 1) or np.isnan(P).any()):
        raise ValueError("P must hold probabilities in [0, 1]")
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (P.shape[0],):
        raise ValueError(f"weights must have shape ({P.shape[0]},) (one per member of P), "
                         f"got shape {w.shape}")
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite and >= 0")
    total = w.sum()
    if total <= 0:
        raise ValueError("weights must not all be 0")
    return P, w / total


def arithmetic_mean(P, weights):
    """Weighted arithmetic mean of the members' distributions: ``(M, B, K), (M,) -> (B, K)``.

    ``weights`` are normalised to sum to 1 (mask probabilities already do).
    """
    P, w = _check_ensemble(P, weights)
    return np.tensordot(w, P, axes=(0, 0))


def geometric_mean(P, weights):
    """Weighted geometric mean ``prod_m P_m**w_m`` per class, *not* renormalised.

    For one logistic unit this is Baldi & Sadowski's G (class 1) and G' (class 0).
    """
    return np.exp(_mean_log(*_check_ensemble(P, weights)))


def nwgm(P, weights):
    """Normalized weighted geometric mean: ``(M, B, K), (M,) -> (B, K)``.

    ``NWGM_k = exp(E_w[log P_k]) / sum_j exp(E_w[log P_j])``, computed in log space so
    that products of thousands of small probabilities neither underflow nor lose
    precision.  A class that some member with non-zero weight gives probability 0 gets
    0; members with weight 0 take no part.
    """
    return _normalize_log(_mean_log(*_check_ensemble(P, weights)))


def _mean_log(P, w):
    used = w > 0
    with np.errstate(divide="ignore"):
        log_p = np.log(P[used])
    return np.tensordot(w[used], log_p, axes=(0, 0))


def _normalize_log(log_g):
    """exp(log_g) normalised over the last axis (a softmax of log-scores)."""
    top = np.max(log_g, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)  # an all -inf row stays NaN: 0/0 is undefined
    g = np.exp(log_g - top)
    with np.errstate(invalid="ignore"):
        return g / g.sum(axis=-1, keepdims=True)


def _log_softmax(z):
    z = z.astype(np.float64, copy=False)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _softmax(z):
    return np.exp(_log_softmax(z))


# -- walking a Sequential model ------------------------------------------------------------

@dataclass(frozen=True)
class _DropoutSite:
    """One dropout layer of a model, as the ensemble code needs it."""
    index: int
    keep_prob: float
    inverted: bool
    weight: object = None  # DropoutDense: its affine map follows the masking
    bias: object = None
    noise_layer: object = None  # a variant layer (fastdrop.nn.variants): MC through mc_forward

    def scale(self, dtype):
        """What a kept unit is multiplied by in training (classical: 1)."""
        if not self.inverted:
            return dtype.type(1.0)
        return dtype.type(1.0 / self.keep_prob) if self.keep_prob > 0 else dtype.type(0.0)

    def after_mask(self, h):
        return h if self.weight is None else h @ self.weight + self.bias


def _layers_of(model):
    layers = getattr(model, "layers", None)
    if layers is None:
        raise TypeError(f"model must be a fastdrop.nn.Sequential (something with a "
                        f".layers list), got {type(model).__name__}")
    return list(layers)


def _site_of(layer, index):
    """The _DropoutSite of a layer, or None if it does not drop anything."""
    if isinstance(layer, DropoutDense):
        return _DropoutSite(index, float(layer.keep_prob), bool(getattr(layer, "inverted", True)),
                            layer.W, layer.b)
    if isinstance(layer, Dropout):
        return _DropoutSite(index, float(layer.keep_prob), bool(getattr(layer, "inverted", True)))
    return None


def _mc_site_of(layer, index):
    """Like _site_of, and also the variant noise layers, which MC averaging can sample
    (through their mc_forward) but which have no finite set of masks to enumerate."""
    site = _site_of(layer, index)
    if site is None and callable(getattr(layer, "mc_forward", None)):
        site = _DropoutSite(index, float(layer.keep_prob), bool(getattr(layer, "inverted", True)),
                            noise_layer=layer)
    return site


def dropout_layer_indices(model):
    """Indices in ``model.layers`` of its dropout layers (`Dropout` and `DropoutDense`)."""
    return [i for i, layer in enumerate(_layers_of(model)) if _site_of(layer, i) is not None]


def _resolve_site(model, layer, site_of=_site_of):
    layers = _layers_of(model)
    if is_flag(layer):
        raise TypeError("layer must be an index into model.layers or a layer of the model")
    if is_int(layer):
        index = int(layer)
        if not -len(layers) <= index < len(layers):
            raise ValueError(f"layer index {index} is out of range for a model of "
                             f"{len(layers)} layers")
        index %= len(layers)
    else:
        matches = [i for i, candidate in enumerate(layers) if candidate is layer]
        if not matches:
            raise ValueError("layer is not one of model.layers (pass the layer object itself "
                             "or its index)")
        index = matches[0]
    site = site_of(layers[index], index)
    if site is None:
        available = dropout_layer_indices(model)
        raise ValueError(f"model.layers[{index}] ({type(layers[index]).__name__}) is not a "
                         f"dropout layer; the model's dropout layers are at {available}")
    return layers, site


def _check_inputs(X):
    X = np.asarray(X)
    if X.dtype.kind != "f":
        raise TypeError(f"X must be a float array, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"X must have shape (batch, features), got shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError("X must hold at least one input (row), got shape (0, ...)")
    return X


class _Buffers:
    """Reusable output arrays, one per key, so chunk after chunk writes into the same memory
    (fresh multi-megabyte arrays cost page faults on every chunk)."""

    def __init__(self):
        self._arrays = {}

    def get(self, key, shape, dtype):
        size = int(np.prod(shape))
        array = self._arrays.get(key)
        if array is None or array.size < size or array.dtype != dtype:
            array = self._arrays[key] = np.empty(size, dtype)
        return array[:size].reshape(shape)


def _eval_layer(layer, h, owned, buffers=None, key=None):
    """One layer in eval mode -> (output, owned).

    ``owned``: this module may overwrite the memory of ``h``.  Every `fastdrop.nn` layer
    runs its ``forward_eval``, which caches nothing in the layer (a forward over
    thousands of thinned nets would otherwise leave huge arrays in the model) and may
    work in place on owned arrays or write into reusable ``buffers``.  An object without
    ``forward_eval`` runs ``forward(h, training=False)`` and its output is not owned.
    """
    forward_eval = getattr(layer, "forward_eval", None)
    if forward_eval is None:
        return layer.forward(h, training=False), False
    scratch = None if buffers is None else partial(buffers.get, key)
    out = forward_eval(h, overwrite_input=owned, scratch=scratch)
    return out, owned or not np.may_share_memory(out, h)


def _forward_eval(layers, h, owned=False):
    for layer in layers:
        h, owned = _eval_layer(layer, h, owned)
    return h


def _widest(layers, default):
    width = default
    for layer in layers:
        W = getattr(layer, "W", None)
        if W is not None:
            width = max(width, *np.shape(W))
    return width


def _chunk_rows(per_member_elements, itemsize, chunk_bytes):
    return max(1, int(chunk_bytes // max(1, per_member_elements * itemsize)))


# -- every thinned network of one layer -----------------------------------------------------

def _thinned_logits(h, multipliers, site, tail):
    """Logits of the thinned nets: h (B, n) times multipliers (C, n) or (C, B, n)."""
    chunk, batch = multipliers.shape[0], h.shape[0]
    if multipliers.ndim == 2:
        multipliers = multipliers[:, None, :]
    thinned = (h[None, :, :] * multipliers).reshape(chunk * batch, h.shape[1])
    z = _forward_eval(tail, site.after_mask(thinned), owned=True)
    return z.reshape(chunk, batch, -1)


def _iter_subnetwork_logits(model, X, layer, chunk_bytes):
    """Yield (mask slice, logits chunk (C, B, K)) over all 2**n masks, plus the setup."""
    layers, site = _resolve_site(model, layer)
    X = _check_inputs(X)
    h = _forward_eval(layers[:site.index], X)
    if h.ndim != 2:
        raise ValueError(f"the input of the dropout layer must be (batch, units), "
                         f"got shape {h.shape}")
    masks, probs = enumerate_masks(h.shape[1], site.keep_prob)
    tail = layers[site.index + 1:]
    scale = site.scale(h.dtype)
    chunk = _chunk_rows(h.shape[0] * _widest(tail, h.shape[1]), 8, chunk_bytes)

    def chunks():
        for start in range(0, masks.shape[0], chunk):
            stop = min(start + chunk, masks.shape[0])
            multipliers = masks[start:stop].astype(h.dtype) * scale
            yield slice(start, stop), _thinned_logits(h, multipliers, site, tail)

    return h, probs, site, layers, chunks()


def subnetwork_predictions(model, X, layer, *, chunk_bytes=_DEFAULT_CHUNK_BYTES):
    """Class probabilities of every thinned network of one dropout layer.

    ``layer`` is the index in ``model.layers`` of a `Dropout` or `DropoutDense` layer, or
    the layer itself.  The layers before it run once in eval mode; then each of the
    ``2**n`` masks of its ``n`` input units is applied (scaled as the layer does in
    training: ``m / keep_prob`` when inverted, ``m`` when classical) and the layers after
    it run in eval mode, many masks per batched forward.  Other dropout layers stay in
    eval mode.  Returns ``(P, probs)``: ``P`` of shape ``(2**n, batch, classes)`` (float64,
    softmax of the model's logits) and the masks' probabilities (as `enumerate_masks`).
    """
    _, probs, _, _, chunks = _iter_subnetwork_logits(model, X, layer, chunk_bytes)
    parts = [_softmax(z) for _, z in chunks]
    return np.concatenate(parts, axis=0), probs


def _exact_means(model, X, layer, chunk_bytes):
    """NWGM and arithmetic mean over all masks without holding every member at once."""
    h, probs, site, layers, chunks = _iter_subnetwork_logits(model, X, layer, chunk_bytes)
    mean_log = mean_p = None
    for where, z in chunks:
        log_p = _log_softmax(z)
        w = probs[where]
        used = w > 0
        part_log = np.tensordot(w[used], log_p[used], axes=(0, 0))
        part_p = np.tensordot(w, np.exp(log_p), axes=(0, 0))
        mean_log = part_log if mean_log is None else mean_log + part_log
        mean_p = part_p if mean_p is None else mean_p + part_p
    return _normalize_log(mean_log), mean_p, h.shape[1], site


def exact_means(model, X, layer, *, chunk_bytes=_DEFAULT_CHUNK_BYTES):
    """``(nwgm, arithmetic_mean)`` over all thinned nets of one dropout layer, each (B, K).

    The same numbers as `nwgm` and `arithmetic_mean` of `subnetwork_predictions`, but
    accumulated chunk by chunk, so the ``(2**n, B, K)`` array is never held.
    """
    geometric, arithmetic, _, _ = _exact_means(model, X, layer, chunk_bytes)
    return geometric, arithmetic


def deterministic_predictions(model, X):
    """The weight-scaled deterministic prediction: softmax of the eval-mode logits."""
    return _softmax(_forward_eval(_layers_of(model), _check_inputs(X)))


# -- comparing the four predictors ----------------------------------------------------------

def _kl(p, q):
    """KL(p || q) per row, with 0 log 0 = 0 and q floored at the float64 tiny."""
    q = np.maximum(q, np.finfo(np.float64).tiny)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(np.maximum(p, np.finfo(np.float64).tiny)) - np.log(q)), 0.0)
    return np.maximum(terms.sum(axis=-1), 0.0)  # >= 0 in exact arithmetic; rounding can dip below


@dataclass(frozen=True)
class PairStats:
    """How far two predictors are apart on one batch."""
    max_abs_diff: float   # largest |p - q| over inputs and classes
    mean_kl: float        # KL(p || q), averaged over inputs
    max_kl: float
    argmax_agreement: float  # share of inputs whose predicted class is the same

    @classmethod
    def between(cls, p, q):
        kl = _kl(p, q)
        return cls(float(np.max(np.abs(p - q))) if p.size else 0.0,
                   float(kl.mean()) if kl.size else 0.0,
                   float(kl.max()) if kl.size else 0.0,
                   float(np.mean(p.argmax(axis=-1) == q.argmax(axis=-1))) if kl.size else 1.0)


@dataclass(frozen=True)
class Comparison:
    """`compare`'s result: the four predictions and their pairwise distances.

    ``pairs`` maps ``(a, b)`` names (among "deterministic", "nwgm", "arithmetic", "mc")
    to `PairStats`, with KL taken as KL(a || b).
    """
    deterministic: np.ndarray
    nwgm: np.ndarray
    arithmetic: np.ndarray
    mc: np.ndarray
    pairs: dict
    layer: int
    units: int
    keep_prob: float
    T: int

    PAIR_ORDER = (("deterministic", "nwgm"), ("deterministic", "arithmetic"),
                  ("nwgm", "arithmetic"), ("mc", "arithmetic"), ("deterministic", "mc"))

    def __getitem__(self, pair):
        return self.pairs[tuple(pair)]

    def __str__(self):
        labels = {"deterministic": "weight scaling", "nwgm": "NWGM", "arithmetic": "arith. mean",
                  "mc": f"MC (T={self.T})"}
        batch = self.deterministic.shape[0]
        lines = [f"dropout layer {self.layer}: {self.units} units, keep_prob {self.keep_prob:g}, "
                 f"{2 ** self.units:,} thinned networks, {batch} inputs",
                 f"{'':34s} {'max|dp|':>10s} {'mean KL':>10s} {'max KL':>10s} {'argmax =':>9s}"]
        for a, b in self.PAIR_ORDER:
            s = self.pairs[(a, b)]
            lines.append(f"{labels[a] + ' vs ' + labels[b]:34s} {s.max_abs_diff:10.3g} "
                         f"{s.mean_kl:10.3g} {s.max_kl:10.3g} {100 * s.argmax_agreement:8.1f}%")
        return "\n".join(lines)


def compare(model, X, layer, *, T=1000, seed=0, chunk_bytes=_DEFAULT_CHUNK_BYTES):
    """Weight scaling vs NWGM vs arithmetic mean vs MC, for one dropout layer of a model.

    The NWGM and the arithmetic mean run over all ``2**n`` thinned networks of ``layer``
    (as `subnetwork_predictions`, streamed so the members are never all held); the MC
    estimate samples ``T`` masks of that layer only, per input (`mc_predict` with
    ``layers=[layer]``), so it estimates the same arithmetic mean.  Returns a
    `Comparison`; ``print`` it for a table.
    """
    layers, site = _resolve_site(model, layer)
    deterministic = deterministic_predictions(model, X)
    geometric, arithmetic, units, site = _exact_means(model, X, site.index, chunk_bytes)
    mc = mc_predict(model, X, T, seed=seed, layers=[site.index], chunk_bytes=chunk_bytes).mean
    named = {"deterministic": deterministic, "nwgm": geometric, "arithmetic": arithmetic, "mc": mc}
    pairs = {(a, b): PairStats.between(named[a], named[b]) for a, b in Comparison.PAIR_ORDER}
    return Comparison(deterministic, geometric, arithmetic, mc, pairs, site.index, units,
                      site.keep_prob, int(T))


# -- MC dropout -------------------------------------------------------------------------------

@dataclass(frozen=True)
class MCResult:
    """What `mc_predict` returns.

    ``mean`` (B, K): the MC estimate of the arithmetic ensemble mean; ``std`` (B, K): the
    spread of the T predictions (population standard deviation); ``predictive_entropy``
    (B,): H[mean], in nats; ``mutual_information`` (B,): H[mean] - mean_t H[p_t] (BALD, the
    part of the uncertainty due to the masks, >= 0); ``expected_entropy`` (B,):
    mean_t H[p_t]; ``samples`` (T, B, K) or None; ``seed``: the 64-bit key used.
    """
    mean: np.ndarray
    std: np.ndarray
    predictive_entropy: np.ndarray
    mutual_information: np.ndarray
    expected_entropy: np.ndarray
    samples: object
    T: int
    seed: int


def _site_dropout(h, site, key, stream, t0, passes, first_row, total_rows, owned):
    """Dropout of h, passes t0 .. t0+passes-1 (pass-major) of the rows ``[first_row,
    first_row + rows)``: unit u of global row r in pass t uses counter ``(t * total_rows +
    r) * n + u`` of the layer's stream (n units per row), so a pass's rows of the whole
    batch are one contiguous run and a block of rows is a run per pass."""
    rows = h.shape[0] // passes
    per_row = int(np.prod(h.shape[1:]))
    out = h if owned else np.empty_like(h)
    runs = [(0, passes * rows, t0 * total_rows * per_row)] if rows == total_rows else [
        (p * rows, (p + 1) * rows, ((t0 + p) * total_rows + first_row) * per_row)
        for p in range(passes)]
    for lo, hi, offset in runs:
        dropout(h[lo:hi], keep_prob=site.keep_prob, seed=key, stream=stream, offset=offset,
                 inverted=site.inverted, out=out[lo:hi])
    return out


def mc_predict(model, X, T, *, seed=None, layers=None, return_samples=False,
               chunk_bytes=_DEFAULT_CHUNK_BYTES, row_offset=0, total_rows=None):
    """MC dropout: average the predictions of T stochastic forward passes.

    Every dropout layer (or only those in ``layers``: indices or layer objects) samples a
    fresh mask per pass and per input, from the fast kernels; all other layers run in
    eval mode, and the model's own state (its layers' step counters) is not touched.
    The masks are a pure function of ``seed``: dropout layer ``i`` of ``model.layers``
    uses stream ``i``, and unit ``u`` of global row ``r`` in pass ``t`` takes counter
    ``(t * total_rows + r) * n + u`` of that stream (``n`` units per row).

    ``X`` holds the rows ``[row_offset, row_offset + len(X))`` of a batch of
    ``total_rows`` rows (default: X is the whole batch).  The rows are cut into tiles
    aligned on the global row index, the last one padded, and every matrix product is one
    tile over a group of passes, with the BLAS on one thread; both sizes follow from
    ``total_rows`` and ``T`` alone, and the sums over passes run pass by pass.  So a row's
    result depends only on the model, the seed, T, total_rows, the row's global index and
    its values: not on ``chunk_bytes``, on how the rows are split into calls (rows 337 to
    700 predicted on their own, with ``row_offset=337, total_rows=len(whole)``, are those
    rows of the whole batch's result bit for bit), nor on the thread counts.  The tiles
    run on up to ``fastdrop.get_num_threads()`` threads; ``chunk_bytes`` bounds the
    working memory of the tiles in flight (at least one tile runs).  Variant noise layers
    (``mc_forward``) address their noise by pass over the whole batch: a model with one
    stacks whole passes instead and takes no ``row_offset``/``total_rows``.
    Returns an `MCResult`.
    """
    T = check_int(T, "T", 1)
    all_layers, sites = _mc_sites(model, layers)
    key = resolve_seed(seed)
    X = _check_inputs(X)
    row_offset, total_rows = _check_row_block(row_offset, total_rows, X.shape[0])
    chunk_bytes = check_int(chunk_bytes, "chunk_bytes", 1)
    if any(s.noise_layer is not None for s in sites.values()):
        if (row_offset, total_rows) != (0, X.shape[0]):
            raise ValueError("mc_predict over a block of rows supports Dropout and DropoutDense "
                             "layers only: a variant layer's mc_forward addresses its noise by "
                             "pass, not by (pass, global row)")
        return _mc_predict_stacked(all_layers, sites, X, T, key, return_samples, chunk_bytes)
    with _one_blas_thread():
        return _mc_predict_tiled(all_layers, sites, X, T, key, return_samples, chunk_bytes,
                                 row_offset, total_rows)


def _mc_sites(model, layers):
    """(model.layers, {index: _DropoutSite}) of the layers MC prediction samples."""
    all_layers = _layers_of(model)
    if layers is None:
        sites = [_mc_site_of(layer, i) for i, layer in enumerate(all_layers)]
        sites = {s.index: s for s in sites if s is not None}
        if not sites:
            raise ValueError("model has no dropout layer: its T passes would all be the same")
    else:
        if is_int(layers) or isinstance(layers, str) or not hasattr(layers, "__iter__"):
            raise TypeError("layers must be a list of dropout layers (indices or layer objects)")
        sites = {}
        for layer in layers:
            site = _resolve_site(model, layer, _mc_site_of)[1]
            sites[site.index] = site
        if not sites:
            raise ValueError("layers must name at least one dropout layer")
    return all_layers, sites


def _check_row_block(row_offset, total_rows, rows):
    row_offset = check_int(row_offset, "row_offset", 0)
    if total_rows is None:
        return row_offset, row_offset + rows
    total_rows = check_int(total_rows, "total_rows", 1)
    if row_offset + rows > total_rows:
        raise ValueError(f"X holds rows [{row_offset}, {row_offset + rows}) (row_offset="
                         f"{row_offset}, {rows} rows), which do not fit in total_rows="
                         f"{total_rows}")
    return row_offset, total_rows


# -- MC prediction by row tiles ----------------------------------------------------------------

#: Rows (pass, row pairs) of one matrix product.  On the 784-1024-1024-10 MLP of
#: bench/bench_mc.py, products of 256 to 1024 rows, one BLAS thread each on two threads,
#: ran within the noise of one 16000-row product on two BLAS threads.
_MC_PRODUCT_ROWS = 512
#: Tiles are at most this many rows, or more when T is small, and passes are stacked to
#: fill a product: small tiles waste little on a block of rows that cuts a tile.
_MC_TILE_ROWS = 64


def _mc_tiling(total_rows, T):
    """(tile_rows, passes per product), from the whole batch's row count and T only.

    The tiles cover ``[0, total_rows)`` in equal parts (the last one padded by fewer rows
    than there are tiles)."""
    cap = max(_MC_TILE_ROWS, _MC_PRODUCT_ROWS // T)
    tiles = -(-total_rows // cap)
    tile_rows = -(-total_rows // tiles)
    return tile_rows, max(1, min(T, _MC_PRODUCT_ROWS // tile_rows))


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter = None


@contextmanager
def _one_blas_thread():
    """The BLAS on one thread while any mc_predict of this process runs.

    The thread count is process-wide, so concurrent calls (Dask's threads) share one
    limit, set by the first and restored by the last."""
    global _blas_users, _blas_limiter
    with _blas_lock:
        if _blas_users == 0:
            _blas_limiter = threadpoolctl.threadpool_limits(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None


@dataclass(frozen=True)
class _Tile:
    """Tile ``index`` of the batch: global rows ``[index * rows, (index + 1) * rows)``,
    of which ``[lo, hi)`` (tile-relative) are rows of this call's X."""
    index: int
    rows: int
    lo: int
    hi: int

    @property
    def first_row(self):
        return self.index * self.rows

    def x_rows(self, row_offset):
        """The slice of X's rows (and of the results) this tile holds."""
        return slice(self.first_row + self.lo - row_offset, self.first_row + self.hi - row_offset)


def _tiles_of(row_offset, rows, total_rows, tile_rows):
    first, last = row_offset // tile_rows, (row_offset + rows - 1) // tile_rows
    return [_Tile(k, tile_rows, max(row_offset - k * tile_rows, 0),
                  min(row_offset + rows - k * tile_rows, tile_rows)) for k in range(first, last + 1)]


def _tile_dropout(h, site, key, stream, t0, passes, tile, total_rows, owned):
    """Dropout of a tile's rows over passes t0 .. t0+passes-1 (pass-major in h), with the
    counters of §8.2.  Rows of the tile outside X are left alone, except when one tile
    holds the whole batch: then each pass is one run, and they take the masks of the rows
    they stand for (their results are dropped either way)."""
    if not owned:
        h = h.copy()
    per_row = int(np.prod(h.shape[1:]))
    stacked = h.reshape((passes, tile.rows) + h.shape[1:])
    if tile.rows == total_rows:  # one tile holds the batch: the passes are one run
        runs = [(h, t0 * total_rows * per_row)]
    else:
        runs = [(stacked[p, tile.lo:tile.hi],
                 ((t0 + p) * total_rows + tile.first_row + tile.lo) * per_row)
                for p in range(passes)]
    for part, offset in runs:
        dropout(part, keep_prob=site.keep_prob, seed=key, stream=stream, offset=offset,
                inverted=site.inverted, out=part)
    return h


def _tile_passes(tail, first, sites, h0, tile, t0, passes, key, total_rows, buffers):
    """Passes t0 .. t0+passes-1 of one tile: (probabilities, entropies) of its real rows,
    shapes (passes, rows, K) and (passes, rows)."""
    h = buffers.get("tiled", (passes * tile.rows,) + h0.shape[1:], h0.dtype)
    h.reshape((passes,) + h0.shape)[...] = h0
    owned = True
    for i, layer in enumerate(tail, start=first):
        site = sites.get(i)
        if site is None:
            h, owned = _eval_layer(layer, h, owned, buffers, i)
            continue
        h = _tile_dropout(h, site, key, i, t0, passes, tile, total_rows, owned)
        owned = True
        if site.weight is not None:
            h, owned = _eval_layer(layer, h, owned, buffers, i)
    log_p = _log_softmax(h.reshape(passes, tile.rows, -1)[:, tile.lo:tile.hi])
    p = np.exp(log_p)
    return p, -(p * log_p).sum(axis=-1)


def _tile_input(head, X, tile, row_offset):
    """The layers before the first dropout layer on one tile of X (padded with zeros)."""
    x = np.zeros((tile.rows,) + X.shape[1:], X.dtype)
    x[tile.lo:tile.hi] = X[tile.x_rows(row_offset)]
    h = _forward_eval(head, x, owned=True)
    if h.ndim != 2:
        raise ValueError(f"the input of the first dropout layer must be (batch, units), "
                         f"got shape {h.shape[1:]} per row")
    return h


def _in_order(function, items, workers):
    """function(*item) for every item, yielded in the items' order, on `workers` threads
    (a bounded number in flight)."""
    if workers <= 1:
        for item in items:
            yield function(*item)
        return
    pool = ThreadPoolExecutor(workers)
    pending = deque()
    try:
        for item in items:
            pending.append(pool.submit(function, *item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _mc_predict_tiled(all_layers, sites, X, T, key, return_samples, chunk_bytes, row_offset,
                      total_rows):
    batch = X.shape[0]
    first = min(sites)
    head, tail = all_layers[:first], all_layers[first:]
    tile_rows, group = _mc_tiling(total_rows, T)
    tiles = _tiles_of(row_offset, batch, total_rows, tile_rows)
    # A product's input and output at the widest layer (float32 at least).
    item_bytes = 2 * group * tile_rows * _widest(tail, X.shape[1]) * max(X.dtype.itemsize, 4)
    workers = max(1, min(get_num_threads(), chunk_bytes // item_bytes,
                         len(tiles) * -(-T // group)))
    local = threading.local()

    def buffers():
        if not hasattr(local, "buffers"):
            local.buffers = _Buffers()
        return local.buffers

    inputs = list(_in_order(lambda tile: (tile, _tile_input(head, X, tile, row_offset)),
                            [(tile,) for tile in tiles], workers))

    def run(tile, h0, t0):
        passes = min(group, T - t0)
        return (tile, t0) + _tile_passes(tail, first, sites, h0, tile, t0, passes, key,
                                         total_rows, buffers())

    items = [(tile, h0, t0) for tile, h0 in inputs for t0 in range(0, T, group)]
    sum_p = sum_p2 = sum_entropy = samples = None
    for tile, t0, p, entropy in _in_order(run, items, workers):
        if sum_p is None:
            classes = p.shape[-1]
            sum_p, sum_p2 = np.empty((batch, classes)), np.empty((batch, classes))
            sum_entropy = np.empty(batch)
            if return_samples:
                samples = np.empty((T, batch, classes))
        where = tile.x_rows(row_offset)
        s_p, s_p2, s_e = sum_p[where], sum_p2[where], sum_entropy[where]
        for q in range(p.shape[0]):  # pass by pass: one order for every row and grouping
            if t0 + q == 0:
                s_p[...], s_e[...] = p[q], entropy[q]
                np.multiply(p[q], p[q], out=s_p2)
            else:
                s_p += p[q]
                s_p2 += p[q] * p[q]
                s_e += entropy[q]
        if return_samples:
            samples[t0:t0 + p.shape[0], where] = p
    return _mc_result(sum_p, sum_p2, sum_entropy, samples, T, key)


def _mc_result(sum_p, sum_p2, sum_entropy, samples, T, key):
    mean = sum_p / T
    std = np.sqrt(np.maximum(sum_p2 / T - mean * mean, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        predictive_entropy = -np.where(mean > 0, mean * np.log(mean), 0.0).sum(axis=-1)
    expected_entropy = sum_entropy / T
    mutual_information = np.maximum(predictive_entropy - expected_entropy, 0.0)
    return MCResult(mean, std, predictive_entropy, mutual_information, expected_entropy,
                    samples, T, key)


def _mc_predict_stacked(all_layers, sites, X, T, key, return_samples, chunk_bytes):
    """MC prediction of the whole batch with whole passes stacked into one product, as many
    as ``chunk_bytes`` allows: the path of models with variant noise layers, whose
    ``mc_forward`` addresses noise by pass.  (Its products group rows by chunk_bytes and
    run on the BLAS's threads, so its rounding follows those.)"""
    first = min(sites)
    h0 = _forward_eval(all_layers[:first], X)
    batch = X.shape[0]
    first_row, total_rows = 0, batch
    tail = all_layers[first:]
    passes_per_chunk = min(T, _chunk_rows(total_rows * _widest(tail, h0.shape[-1]),
                                          max(h0.dtype.itemsize, 4), chunk_bytes))

    sum_p = sum_p2 = sum_entropy = None
    samples = None
    buffers = _Buffers()
    for t0 in range(0, T, passes_per_chunk):
        passes = min(passes_per_chunk, T - t0)
        h = buffers.get("tiled", (passes * batch,) + h0.shape[1:], h0.dtype)
        h.reshape((passes,) + h0.shape)[...] = h0
        owned = True  # h is this function's memory: dropout and activations may overwrite it
        for i, layer in enumerate(tail, start=first):
            site = sites.get(i)
            if site is None:
                h, owned = _eval_layer(layer, h, owned, buffers, i)
                continue
            if site.noise_layer is not None:
                h = site.noise_layer.mc_forward(h, passes, seed=key, stream=i, first_pass=t0)
                owned = True
                continue
            h = _site_dropout(h, site, key, i, t0, passes, first_row, total_rows, owned)
            owned = True
            if site.weight is not None:
                h, owned = _eval_layer(layer, h, owned, buffers, i)
        log_p = _log_softmax(h.reshape(passes, batch, -1))
        p = np.exp(log_p)
        per_pass = -(p * log_p).sum(axis=-1)
        entropy = per_pass[0].copy()
        for pass_entropy in per_pass[1:]:  # pass by pass: one order for any number of rows
            entropy += pass_entropy
        if sum_p is None:
            sum_p, sum_p2, sum_entropy = p.sum(axis=0), (p * p).sum(axis=0), entropy
            if return_samples:
                samples = np.empty((T,) + p.shape[1:])
        else:
            sum_p += p.sum(axis=0)
            sum_p2 += (p * p).sum(axis=0)
            sum_entropy += entropy
        if return_samples:
            samples[t0:t0 + passes] = p
    return _mc_result(sum_p, sum_p2, sum_entropy, samples, T, key)


# -- linear regression: the marginalised objective -------------------------------------------

def marginalized_linear_loss(X, y, w, keep_prob):
    """E_R ||y - (R * X) w||^2 for R_ij ~ Bernoulli(p), in closed form.

    Srivastava et al. 2014, section 9.1: ``||y - p X w||^2 + p (1 - p) ||Gamma w||^2`` with
    ``Gamma = diag(X^T X)^(1/2)`` — dropout on the inputs of linear regression is, in
    expectation, ridge regression with a data-dependent penalty.  (Classical dropout,
    no rescaling of the kept inputs.)
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must have shape (N, D), got shape {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},), got shape {y.shape}")
    if w.shape != (X.shape[1],):
        raise ValueError(f"w must have shape ({X.shape[1]},), got shape {w.shape}")
    if np.ndim(keep_prob) != 0:
        raise ValueError(f"keep_prob must be a scalar, got shape {np.shape(keep_prob)}")
    p = float(_check_keep_prob(keep_prob, 1)[0])
    residual = y - p * (X @ w)
    gamma_sq = np.einsum("nd,nd->d", X, X)
    return float(residual @ residual + p * (1.0 - p) * np.sum(gamma_sq * w * w))
