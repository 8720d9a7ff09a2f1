"""fastdrop for PyTorch: the dropout modules and functions of ``torch.nn``, on fastdrop's kernels.

    import fastdrop.torch as fdt
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), fdt.Dropout(0.5), ...)

``Dropout``, ``Dropout1d``, ``Dropout2d``, ``Dropout3d``, ``AlphaDropout`` and
``FeatureAlphaDropout`` take torch's arguments with torch's meaning (``p`` is the
probability of dropping, ``inplace``, ``train()`` / ``eval()``) and subclass the torch
modules of the same name, so ``isinstance(m, torch.nn.Dropout)`` still holds.  The
functions ``dropout``, ``dropout1d``, ``dropout2d``, ``dropout3d``, ``alpha_dropout`` and
``feature_alpha_dropout`` mirror ``torch.nn.functional``: the same checks, errors and
warnings, the same identities (eval mode, p = 0 and empty inputs return ``input``
itself).  A dropped element is +0.0 whatever it was (fastdrop's rule, DESIGN.md §3),
where torch multiplies by 0 (-0.0 for negatives, NaN for NaN and infinities).

The work runs in operators registered with ``torch.library`` (``torch.ops.fastdrop``,
see ``fastdrop.torch._ops``) on CPU tensors of float16, bfloat16, float32 and float64:
``torch.compile``, ``torch.export``, ``torch.func`` (grad, vmap, jvp, jacrev), forward-mode
AD and ``torch.jit.trace`` see them as operators.  The output has the input's layout
(preserve_format) and the mask is 1 bit per element on the logical C-order index, so a
channels_last tensor gets the values of its contiguous copy.  bfloat16 is computed in
float32 and rounded once.  Any other tensor (another device or dtype, a tensor subclass)
goes to torch's own dropout.

Randomness.  By default (``seed=None``) each call draws its key and stream from torch's
generator, as ``torch.nn.Dropout`` draws its mask: ``torch.manual_seed``, ``fork_rng``,
``freeze_rng_state`` and ``torch.utils.checkpoint``'s recomputation repeat masks as they
do with torch's dropout.  A module built with ``seed=`` owns its stream instead: its k-th
training forward uses stream k of that key, the key and step living in the int64 buffer
``rng_state`` (in the state_dict, so a checkpoint resumes the same masks; a tensor, so
``torch.compile`` compiles the step once).  The functions take ``seed=`` and ``stream=``
too: a fixed seed gives the same mask on every call unless ``stream`` changes.
"""
from __future__ import annotations

try:
    import torch
    import torch.nn.functional as F
except ImportError as exc:  # torch is an optional dependency
    raise ImportError('fastdrop.torch needs PyTorch; install it with: pip install "fastdrop[torch]"') \
        from exc

import numbers
import warnings
from typing import Any, Callable, ClassVar, Optional, TypeVar, Union, cast

from torch._subclasses.fake_tensor import FakeTensor
from torch._subclasses.functional_tensor import FunctionalTensor
from torch.nn.modules.dropout import _DropoutNd

import fastdrop
from fastdrop.api import _Seed
from fastdrop.torch import _ops
from fastdrop.torch._mc import MCResult, mc_predict

__all__ = ["dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
           "feature_alpha_dropout", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d",
           "AlphaDropout", "FeatureAlphaDropout", "mc_predict", "MCResult"]

# Subclasses (DTensor, a user's __torch_function__ tensor) take torch's own dropout; the
# tensors torch's own tracers make (export, make_fx, AOTAutograd) take the operators.
_PLAIN_TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter, FakeTensor, FunctionalTensor)
_U64 = 1 << 64
_U32 = 1 << 32
_RNG_BUFFER = "rng_state"
_LEGACY_EXTRA_STATE = "_extra_state"  # fastdrop 0.2's {"seed", "step"} state

#: what `seed` takes: fastdrop's seeds, or a torch.Generator to draw the key from
_TorchSeed = Union[_Seed, torch.Generator]


# -- what takes the kernels ---------------------------------------------------------------

def _compiling() -> bool:
    return bool(torch.compiler.is_compiling())


def _check_tensor(input: object) -> None:
    if not isinstance(input, torch.Tensor):
        kind = type(input)
        name = kind.__qualname__ if kind.__module__ == "builtins" else \
            f"{kind.__module__}.{kind.__qualname__}"
        raise TypeError(f"dropout(): argument 'input' (position 1) must be Tensor, not {name}")


def _takes(input: torch.Tensor) -> bool:
    """Whether fastdrop's kernels can work on `input` in place of torch's dropout."""
    return (type(input) in _PLAIN_TENSOR_TYPES and input.device.type == "cpu"
            and input.dtype in _ops.KERNEL_DTYPES and input.layout == torch.strided)


def _check_p(p: float) -> float:
    """torch's check of the drop probability (ValueError, torch's text)."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"dropout probability p must be a real number, got {type(p).__name__}")
    if not 0.0 <= p <= 1.0:  # also rejects NaN
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    return float(p)


# -- keys -------------------------------------------------------------------------------------

def _key(seed: _Seed) -> int:
    """The 64-bit key of a fastdrop seed (not None, not a torch.Generator)."""
    if type(seed) is int and 0 <= seed < _U64:
        return seed
    # fastdrop's own mapping and errors; a sampled Mask always records its key
    return cast(int, fastdrop.sample_mask(0, seed=seed).seed)


def _check_stream(stream: int) -> int:
    if type(stream) is int and 0 <= stream < _U64:
        return stream
    return cast(int, fastdrop.sample_mask(0, seed=0, stream=stream).stream)  # fastdrop's errors


def _as_int64(value: int) -> int:
    """The int64 whose bits are the unsigned 64-bit `value`."""
    return value - _U64 if value >= 1 << 63 else value


def _fixed_rng(key: int, stream: int, offset: int = 0) -> list[int]:
    """The 4 entries of an rng tensor (DESIGN.md §9.1) for a key, a stream and an offset."""
    return [key & (_U32 - 1), key >> 32, _as_int64(stream), _as_int64(offset)]


def _drawn_rng(generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Key, stream and offset from torch's generator (the default one unless given): four
    32-bit draws, so the mask follows torch's generator state as its own dropout's does."""
    return torch.randint(0, _U32, (4,), dtype=torch.int64, generator=generator)


def _call_rng(seed: _TorchSeed, stream: int) -> torch.Tensor:
    """The rng tensor of a function call's seed and stream."""
    if seed is None or isinstance(seed, torch.Generator):
        _check_stream(stream)
        return _drawn_rng(seed)
    if torch._C._is_tracing():
        raise RuntimeError(
            "fastdrop.torch: a seed given as a Python value would be frozen into the trace, "
            "so every call of the traced function would drop the same units; trace the "
            "modules (Dropout(p, seed=...) keeps its step in a buffer the trace reads) or "
            "call without seed (each call then draws from torch's generator)")
    return torch.tensor(_fixed_rng(_key(seed), _check_stream(stream)), dtype=torch.int64)


# -- the work -------------------------------------------------------------------------------------

def _run(input: torch.Tensor, p: float, inplace: bool, rng: torch.Tensor, kept_dims: int,
         alpha: bool) -> torch.Tensor:
    """Training-mode dropout of `input` (taken by the kernels, 0 < p, not empty) in the ops."""
    if _ops._forward_ad_active():
        out = _ops.DropoutFunction.apply(  # type: ignore[no-untyped-call]
            input, rng, p, kept_dims, alpha)[0]
        return input.copy_(out) if inplace else out
    if _plain_eager(input):
        # Nothing between this call and the CPU kernel would act (no autograd, mode, tracer
        # or subclass): call the operator's own CPU kernel, without ~10 us of dispatch.
        if inplace:
            _ops.run_forward(input, input, rng, p, kept_dims, alpha, False)
            return input
        out = _ops.empty_like(input)
        _ops.run_forward(input, out, rng, p, kept_dims, alpha, False)
        return out
    if _plain_eager(input, needs_grad=True):
        out = _ops.EagerDropoutFunction.apply(  # type: ignore[no-untyped-call]
            input, rng, p, kept_dims, alpha)
        return input.copy_(out) if inplace else out
    if inplace and not (torch.is_grad_enabled() and input.requires_grad):
        (_ops.alpha_dropout_inplace_op if alpha else _ops.dropout_inplace_op)(
            input, rng, p, kept_dims)
        return input
    out = (_ops.alpha_dropout_op if alpha else _ops.dropout_op)(input, rng, p, kept_dims)[0]
    return input.copy_(out) if inplace else out


def _plain_eager(input: torch.Tensor, needs_grad: bool = False) -> bool:
    """An eager call on a plain CPU tensor (a Parameter too, when it `needs_grad`) with no
    tracer or mode active, that needs autograd (`needs_grad`) or not."""
    return (not _compiling() and (input.requires_grad and torch.is_grad_enabled()) == needs_grad
            and type(input) in ((torch.Tensor, torch.nn.Parameter) if needs_grad
                                else (torch.Tensor,))
            and not torch._C._len_torch_dispatch_stack()
            and not torch._C._len_torch_function_stack() and not torch._C._is_tracing())


def _channel_kept_dims(input: torch.Tensor) -> int:
    """Feature dropout's noise over (N, C): torch's check of at least 2 dimensions."""
    if input.dim() < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
    return 2


_DROPOUT1D_DIMS = ("dropout1d: Expected 2D or 3D input, but received a {}D input. Note that "
                   "dropout1d exists to provide channel-wise dropout on inputs with 1 spatial "
                   "dimension, a channel dimension, and an optional batch dimension (i.e. 2D "
                   "or 3D inputs).")
_DEPRECATED_DIMS = ("{name}: Received a {dim}-D input to {name}, which is deprecated and will "
                    "result in an error in a future release. To retain the behavior and silence "
                    "this warning, please use dropout instead. Note that {name} exists to "
                    "provide channel-wise dropout on inputs with {spatial} spatial dimensions, a "
                    "channel dimension, and an optional batch dimension (i.e. {low}D or {high}D "
                    "inputs).")
_DROPOUT2D_3D = ("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise "
                 "1D dropout behavior is desired - input is interpreted as shape (N, C, L), "
                 "where C is the channel dim. This behavior will change in a future release to "
                 "interpret the input as one without a batch dimension, i.e. shape (C, H, W). To "
                 "maintain the 1D channel-wise dropout behavior, please switch to using "
                 "dropout1d instead.")

#: function name -> (alpha, torch's function)
_KINDS: dict[str, tuple[bool, Callable[..., torch.Tensor]]] = {
    "dropout": (False, F.dropout), "dropout1d": (False, F.dropout1d),
    "dropout2d": (False, F.dropout2d), "dropout3d": (False, F.dropout3d),
    "alpha_dropout": (True, F.alpha_dropout),
    "feature_alpha_dropout": (True, F.feature_alpha_dropout)}


def _check_dims(kind: str, input: torch.Tensor) -> None:
    """torch's dimension checks and warnings of `kind`, made in eval mode too."""
    dim = input.dim()
    if kind == "dropout1d" and dim not in (2, 3):
        raise RuntimeError(_DROPOUT1D_DIMS.format(dim))
    if kind == "dropout2d":
        if dim not in (3, 4):
            warnings.warn(_DEPRECATED_DIMS.format(name="dropout2d", dim=dim, spatial=2, low=3,
                                                  high=4), stacklevel=4)
        if dim == 3:
            warnings.warn(_DROPOUT2D_3D, stacklevel=4)
    if kind == "dropout3d" and dim not in (4, 5):
        warnings.warn(_DEPRECATED_DIMS.format(name="dropout3d", dim=dim, spatial=3, low=4,
                                              high=5), stacklevel=4)


def _kept_dims(kind: str, input: torch.Tensor) -> int:
    """The axes the mask is sampled over (0: every element), torch's rules for `kind`."""
    dim = input.dim()
    if kind in ("dropout", "alpha_dropout"):
        return 0
    if kind == "dropout1d":
        return 2 if dim == 3 else 1
    if kind == "dropout3d" and dim != 5:
        # torch adds a batch axis of 1: feature noise over (1, C) is noise over axis 0 here
        if dim + 1 < 2:
            raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
        return 1
    return _channel_kept_dims(input)


def _dropout(kind: str, input: torch.Tensor, p: float, training: bool, inplace: bool,
             rng: Optional[torch.Tensor], seed: _TorchSeed = None, stream: int = 0) -> torch.Tensor:
    """`kind` of torch.nn.functional on the ops; `rng` None: from seed and stream."""
    _check_tensor(input)
    p = _check_p(p)
    _check_dims(kind, input)
    if not training or p == 0.0 or 0 in input.shape:
        return input
    alpha, torch_function = _KINDS[kind]
    if not _takes(input):
        result: torch.Tensor = torch_function(input, p, training, inplace)
        return result
    kept_dims = _kept_dims(kind, input)
    if rng is None:
        rng = _call_rng(seed, stream)
    return _run(input, p, inplace, rng, kept_dims, alpha)


def _dropout_tile(kind: str, input: torch.Tensor, p: float, key: int, stream: int,
                  tile_index: int) -> torch.Tensor:
    """`kind` in training mode for mc_predict: tile k of samples takes the k-th run of the
    noise's size in `stream`, so sample g of the tiling gets counters [g*n, (g+1)*n)."""
    _check_tensor(input)
    _check_dims(kind, input)
    if not _takes(input):
        raise TypeError(f"mc_predict runs fastdrop's kernels: it needs CPU tensors of float16, "
                        f"bfloat16, float32 or float64, got {input.dtype} on {input.device}")
    if p == 0.0 or 0 in input.shape:
        return input
    kept_dims = _kept_dims(kind, input)
    offset = tile_index * _ops.noise_numel(input.shape, kept_dims)
    rng = torch.tensor(_fixed_rng(key, stream, offset), dtype=torch.int64)
    return _run(input, p, False, rng, kept_dims, _KINDS[kind][0])


_FUNCTION_DOC = """

    `seed` None (the default) draws each call's key and stream from torch's default
    generator (or from `seed` itself when it is a torch.Generator); any seed fastdrop takes
    fixes the key, and then the mask is the same on every call unless `stream` changes:
    pass the step number as `stream`.
    """


_Function = TypeVar("_Function", bound=Callable[..., torch.Tensor])


def _doc(function: _Function) -> _Function:
    function.__doc__ = (function.__doc__ or "") + _FUNCTION_DOC
    return function


@_doc
def dropout(input: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
            *, seed: _TorchSeed = None, stream: int = 0) -> torch.Tensor:
    """torch.nn.functional.dropout on fastdrop's kernels: each element dropped with probability p.

    Kept elements are scaled by 1/(1-p); not training, `input` itself is returned."""
    return _dropout("dropout", input, p, training, inplace, None, seed, stream)


@_doc
def dropout1d(input: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
              *, seed: _TorchSeed = None, stream: int = 0) -> torch.Tensor:
    """torch.nn.functional.dropout1d: whole channels of (N, C, L) or (C, L) input dropped."""
    return _dropout("dropout1d", input, p, training, inplace, None, seed, stream)


@_doc
def dropout2d(input: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
              *, seed: _TorchSeed = None, stream: int = 0) -> torch.Tensor:
    """torch.nn.functional.dropout2d: whole channels of (N, C, H, W) input dropped.

    As torch does, a 3-D input is taken as (N, C, L), with torch's warning."""
    return _dropout("dropout2d", input, p, training, inplace, None, seed, stream)


@_doc
def dropout3d(input: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
              *, seed: _TorchSeed = None, stream: int = 0) -> torch.Tensor:
    """torch.nn.functional.dropout3d: whole channels of (N, C, D, H, W) or (C, D, H, W) input."""
    return _dropout("dropout3d", input, p, training, inplace, None, seed, stream)


@_doc
def alpha_dropout(input: torch.Tensor, p: float = 0.5, training: bool = False,
                  inplace: bool = False, *, seed: _TorchSeed = None,
                  stream: int = 0) -> torch.Tensor:
    """torch.nn.functional.alpha_dropout (training defaults to False, as in torch), for SELU nets."""
    return _dropout("alpha_dropout", input, p, training, inplace, None, seed, stream)


@_doc
def feature_alpha_dropout(input: torch.Tensor, p: float = 0.5, training: bool = False,
                          inplace: bool = False, *, seed: _TorchSeed = None,
                          stream: int = 0) -> torch.Tensor:
    """torch.nn.functional.feature_alpha_dropout: alpha dropout of whole channels (axis 1)."""
    return _dropout("feature_alpha_dropout", input, p, training, inplace, None, seed, stream)


# -- modules ------------------------------------------------------------------------------

class _Seeded(_DropoutNd):
    """The torch module's arguments, plus an optional stream of its own.

    `seed` None: each training forward draws from torch's generator, as the torch module
    does.  Any other seed: the key is fixed and the k-th training forward (k = `step`
    before it) uses stream k, as fastdrop's own layers do (DESIGN.md §7.7); key and step
    live in the int64 buffer ``rng_state`` = [key low 32 bits, key high 32 bits, step, 0].
    """

    _kind: ClassVar[str]
    rng_state: Optional[torch.Tensor]

    def __init__(self, p: float = 0.5, inplace: bool = False, *, seed: _TorchSeed = None) -> None:
        super().__init__(_check_p(p), inplace)
        if seed is None:
            self.rng_state = None
            return
        if isinstance(seed, torch.Generator):
            low, high = torch.randint(0, _U32, (2,), generator=seed).tolist()
            key = int(low) | (int(high) << 32)
        else:
            key = _key(seed)
        self.register_buffer(_RNG_BUFFER, torch.tensor(_fixed_rng(key, 0), dtype=torch.int64))

    @property
    def seed(self) -> Optional[int]:
        """The module's 64-bit key, or None when each forward draws from torch's generator."""
        if self.rng_state is None:
            return None
        low, high = self.rng_state[:2].tolist()
        return int(low) | (int(high) << 32)

    @property
    def step(self) -> Optional[int]:
        """Training forwards so far (the next one's stream), None without a seed."""
        if self.rng_state is None:
            return None
        return int(self.rng_state[2]) % _U64

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        rng = self.rng_state
        if rng is None or not self.training:
            return _dropout(self._kind, input, self.p, self.training, self.inplace, None)
        out = _dropout(self._kind, input, self.p, True, self.inplace, rng)
        rng.select(0, 2).add_(1)  # after the op has read it: the next forward's stream
        return out

    def __prepare_scriptable__(self) -> None:
        raise RuntimeError(
            f"fastdrop.torch.{type(self).__name__} cannot be compiled by torch.jit.script "
            "(its forward is Python that picks fastdrop's operators per tensor); use "
            "torch.compile, torch.export or torch.jit.trace, which record the "
            "torch.ops.fastdrop operators")

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str,
                              local_metadata: dict[str, Any], strict: bool,
                              missing_keys: list[str], unexpected_keys: list[str],
                              error_msgs: list[str]) -> None:
        legacy = state_dict.pop(prefix + _LEGACY_EXTRA_STATE, None)
        key = prefix + _RNG_BUFFER
        if self.rng_state is not None and key not in state_dict:
            if legacy is not None:  # fastdrop 0.2's extra state: the same key and step
                state_dict[key] = torch.tensor(_fixed_rng(legacy["seed"], 0)[:2]
                                               + [_as_int64(legacy["step"]), 0])
            else:  # a torch.nn module's checkpoint: keep this module's own stream
                state_dict[key] = self.rng_state.clone()
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def extra_repr(self) -> str:
        if self.rng_state is None:
            return super().extra_repr()
        return f"{super().extra_repr()}, seed={self.seed}, step={self.step}"


class Dropout(_Seeded, torch.nn.Dropout):
    """torch.nn.Dropout on fastdrop's kernels: each element dropped with probability p."""

    _kind = "dropout"


class Dropout1d(_Seeded, torch.nn.Dropout1d):
    """torch.nn.Dropout1d on fastdrop's kernels: whole channels of (N, C, L) or (C, L) input."""

    _kind = "dropout1d"


class Dropout2d(_Seeded, torch.nn.Dropout2d):
    """torch.nn.Dropout2d on fastdrop's kernels: whole channels of (N, C, H, W) input."""

    _kind = "dropout2d"


class Dropout3d(_Seeded, torch.nn.Dropout3d):
    """torch.nn.Dropout3d on fastdrop's kernels: whole channels of (N, C, D, H, W) input."""

    _kind = "dropout3d"


class AlphaDropout(_Seeded, torch.nn.AlphaDropout):
    """torch.nn.AlphaDropout on fastdrop's kernels (DESIGN.md §7.3), for SELU networks."""

    _kind = "alpha_dropout"


class FeatureAlphaDropout(_Seeded, torch.nn.FeatureAlphaDropout):
    """torch.nn.FeatureAlphaDropout on fastdrop's kernels: alpha dropout of whole channels."""

    _kind = "feature_alpha_dropout"
