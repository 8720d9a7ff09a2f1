"""fastdrop for PyTorch: the dropout modules and functions of ``torch.nn``, on fastdrop's kernels.

    import fastdrop.torch as fdt
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), fdt.Dropout(0.5), ...)

``Dropout``, ``Dropout1d``, ``Dropout2d``, ``Dropout3d``, ``AlphaDropout`` and
``FeatureAlphaDropout`` take torch's arguments with torch's meaning (``p`` is the
probability of dropping, ``inplace``, ``train()`` / ``eval()``) and subclass the torch
modules of the same name, so ``isinstance(m, torch.nn.Dropout)`` still holds.  The
functions ``dropout``, ``dropout1d``, ``dropout2d``, ``dropout3d``, ``alpha_dropout`` and
``feature_alpha_dropout`` mirror ``torch.nn.functional``.

On CPU tensors of float16, float32 and float64 the work runs in fastdrop's kernels through
an autograd Function, on the tensors' own memory (no copies of contiguous tensors); the
mask is kept as 1 bit per element for backward.  The result equals
``fastdrop.reference`` bit for bit for the same key and stream.  Any other tensor (another
device, bfloat16 or another dtype, a tensor subclass, code being traced by
``torch.compile``) goes to torch's own dropout, which draws from torch's generator: its
masks are torch's, not fastdrop's, so they are not bit-exact with fastdrop's and do not
follow ``seed``.

Randomness.  Each module owns ``seed`` (a 64-bit key) and ``step``; its k-th training
forward uses stream k, so every step gets a new mask and the sequence is a pure function
of (seed, step).  Both are in the module's ``state_dict`` (extra state): loading a
checkpoint resumes the same masks.  ``seed=None`` draws the key from torch's default
generator when the module is built, so ``torch.manual_seed`` makes runs reproducible.
The functions draw a new key from torch's default generator on every call unless given
``seed``; a fixed ``seed`` gives the same mask on every call unless ``stream`` changes
(pass the step number as ``stream``).  A checkpoint saved with ``torch.nn`` dropout
modules (no extra state) loads into these modules, which keep their own seed and step.
``torch.utils.checkpoint`` recomputes a forward after restoring torch's generator only, not
a module's step, so the recomputed mask would differ: keep the modules outside
checkpointed segments.
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
from typing import Any, Callable, ClassVar, Optional, Union

from torch.nn.modules.dropout import _DropoutNd

import fastdrop
from fastdrop.api import _Seed

__all__ = ["dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
           "feature_alpha_dropout", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d",
           "AlphaDropout", "FeatureAlphaDropout"]

_KERNEL_DTYPES = frozenset({torch.float16, torch.float32, torch.float64})
# Subclasses (FakeTensor, DTensor, a user's __torch_function__) take torch's own dropout.
_PLAIN_TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter)
_U64 = 1 << 64
_EXTRA_STATE_KEY = "_extra_state"  # the key torch.nn.Module stores get_extra_state() under

#: what `seed` takes: fastdrop's seeds, or a torch.Generator to draw the key from
_TorchSeed = Union[_Seed, torch.Generator]
_NoiseShape = Optional[tuple[int, ...]]


# -- what takes the kernels ---------------------------------------------------------------

def _compiling() -> bool:
    is_compiling = getattr(torch.compiler, "is_compiling", None)
    return is_compiling is not None and is_compiling()


def _check_tensor(input: object) -> None:
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"input must be a torch.Tensor, got {type(input).__name__}")


def _takes(input: torch.Tensor) -> bool:
    """Whether fastdrop's kernels can work on `input` in place of torch's dropout."""
    return (type(input) in _PLAIN_TENSOR_TYPES and input.device.type == "cpu"
            and input.dtype in _KERNEL_DTYPES and input.layout == torch.strided
            and not _compiling())


def _check_p(p: float) -> float:
    """torch's check of the drop probability, with the argument named."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"p (the dropout probability) must be a real number, got {type(p).__name__}")
    if not 0.0 <= p <= 1.0:  # also rejects NaN
        raise ValueError(f"dropout probability p has to be between 0 and 1, but got {p}")
    return float(p)


# -- keys -------------------------------------------------------------------------------------

def _draw_key(generator: Optional[torch.Generator] = None) -> int:
    """A 64-bit key from a torch generator (the default one unless given): two 32-bit draws."""
    low, high = torch.randint(0, 1 << 32, (2,), dtype=torch.int64, generator=generator).tolist()
    return int(low) | (int(high) << 32)


def _key(seed: _TorchSeed) -> int:
    """The 64-bit key of `seed`: None and torch.Generator draw it from torch; the rest as fastdrop."""
    if seed is None or isinstance(seed, torch.Generator):
        return _draw_key(seed)
    if type(seed) is int and 0 <= seed < _U64:
        return seed
    key: int = fastdrop.sample_mask(0, seed=seed).seed  # fastdrop's own mapping and errors
    return key


def _check_stream(stream: int) -> int:
    if type(stream) is int and 0 <= stream < _U64:
        return stream
    # fastdrop's checks and errors
    checked: int = fastdrop.sample_mask(0, seed=0, stream=stream).stream
    return checked


# -- the autograd Functions ---------------------------------------------------------------

def _numpy(tensor: torch.Tensor) -> Any:
    """The NumPy view of a CPU tensor's memory (no copy)."""
    return tensor.detach().numpy()


def _apply_mask(tensor: torch.Tensor, mask: fastdrop.Mask) -> torch.Tensor:
    out = torch.empty(tensor.shape, dtype=tensor.dtype)
    fastdrop.apply_mask(_numpy(tensor), mask, out=_numpy(out))
    return out


class _MaskGrad(torch.autograd.Function):
    """grad * scale where the mask keeps, 0 elsewhere: linear and its own adjoint."""

    @staticmethod
    def forward(ctx: Any, grad: torch.Tensor, mask: fastdrop.Mask) -> torch.Tensor:
        ctx.mask = mask
        return _apply_mask(grad, mask)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return _MaskGrad.apply(grad, ctx.mask), None  # type: ignore[no-untyped-call]


class _KernelDropout(torch.autograd.Function):
    """Dropout (or alpha dropout) of a CPU float tensor in fastdrop's kernels, 1-bit mask kept."""

    @staticmethod
    def forward(ctx: Any, input: torch.Tensor, rate: float, seed: int,
                stream: int, noise_shape: _NoiseShape, alpha: bool, inplace: bool) -> torch.Tensor:
        kernel = fastdrop.alpha_dropout if alpha else fastdrop.dropout
        # Strided in-place targets go through a contiguous result and copy_, which also lets
        # torch reject a target with overlapping elements (an expanded tensor).
        direct = inplace and input.is_contiguous()
        out = input if direct else torch.empty(input.shape, dtype=input.dtype)
        need_mask = ctx.needs_input_grad[0]
        result = kernel(_numpy(input), rate, seed=seed, stream=stream, noise_shape=noise_shape,
                        out=_numpy(out), return_mask=need_mask)
        ctx.mask = result[1] if need_mask else None
        if not inplace:
            return out
        if not direct:
            input.copy_(out)
        ctx.mark_dirty(input)
        return input

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        grad_input = _MaskGrad.apply(grad, ctx.mask)  # type: ignore[no-untyped-call]
        return grad_input, None, None, None, None, None, None


# -- functions ----------------------------------------------------------------------------

def _noise(input: torch.Tensor, noise_shape: _NoiseShape, p: float, training: bool,
           inplace: bool, seed: _TorchSeed, stream: int, alpha: bool,
           torch_fallback: Callable[..., torch.Tensor]) -> torch.Tensor:
    """Training-mode dropout of `input` in the kernels, or in torch where they cannot take it."""
    if not training:
        return input
    key = _key(seed)
    stream = _check_stream(stream)
    if not _takes(input):
        return torch_fallback(input, p, training, inplace)
    result: torch.Tensor = _KernelDropout.apply(  # type: ignore[no-untyped-call]
        input, p, key, stream, noise_shape, alpha, inplace)
    return result


def _channel_noise_shape(input: torch.Tensor, batched: bool) -> tuple[int, ...]:
    """(N, C, 1, ..., 1) for batched input, (C, 1, ..., 1) for unbatched: whole channels."""
    kept = 2 if batched else 1
    if input.dim() < kept:
        raise ValueError(f"input must have at least {kept} dimensions for channel dropout "
                         f"(channels on axis {kept - 1}), got a {input.dim()}-D input")
    return tuple(input.shape[:kept]) + (1,) * (input.dim() - kept)


def dropout(input: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
            *, seed: _TorchSeed = None, stream: int = 0) -> torch.Tensor:
    """torch.nn.functional.dropout on fastdrop's kernels: each element dropped with probability p.

    Kept elements are scaled by 1/(1-p); not training, `input` itself is returned.  `seed`
    None draws a new key from torch's default generator on every call; an int (or a
    torch.Generator, or any seed fastdrop takes) fixes the key, and then the mask is the
    same on every call unless `stream` changes: pass the step number as `stream`.
    """
    _check_tensor(input)
    p = _check_p(p)
    return _noise(input, None, p, training, inplace, seed, stream, False, F.dropout)


def dropout1d(input: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
              *, seed: _TorchSeed = None, stream: int = 0) -> torch.Tensor:
    """torch.nn.functional.dropout1d: whole channels of (N, C, L) or (C, L) input dropped."""
    _check_tensor(input)
    p = _check_p(p)
    if input.dim() not in (2, 3):
        raise ValueError(f"dropout1d: input must be 2-D (C, L) or 3-D (N, C, L), got a "
                         f"{input.dim()}-D input")
    noise_shape = _channel_noise_shape(input, batched=input.dim() == 3)
    return _noise(input, noise_shape, p, training, inplace, seed, stream, False, F.dropout1d)


def dropout2d(input: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
              *, seed: _TorchSeed = None, stream: int = 0) -> torch.Tensor:
    """torch.nn.functional.dropout2d: whole channels of (N, C, H, W) input dropped.

    As torch does, a 3-D input is taken as (N, C, L), with a warning.
    """
    _check_tensor(input)
    p = _check_p(p)
    if input.dim() == 3:
        warnings.warn("dropout2d: a 3-D input is taken as (N, C, L), as torch does; use "
                      "dropout1d for channel-wise 1-D dropout", stacklevel=2)
    elif input.dim() != 4:
        warnings.warn(f"dropout2d: expected a 3-D or 4-D input, got a {input.dim()}-D one",
                      stacklevel=2)
    noise_shape = _channel_noise_shape(input, batched=True)
    return _noise(input, noise_shape, p, training, inplace, seed, stream, False, F.dropout2d)


def dropout3d(input: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
              *, seed: _TorchSeed = None, stream: int = 0) -> torch.Tensor:
    """torch.nn.functional.dropout3d: whole channels of (N, C, D, H, W) or (C, D, H, W) input dropped."""
    _check_tensor(input)
    p = _check_p(p)
    if input.dim() not in (4, 5):
        warnings.warn(f"dropout3d: expected a 4-D or 5-D input, got a {input.dim()}-D one",
                      stacklevel=2)
    noise_shape = _channel_noise_shape(input, batched=input.dim() == 5)
    return _noise(input, noise_shape, p, training, inplace, seed, stream, False, F.dropout3d)


def alpha_dropout(input: torch.Tensor, p: float = 0.5, training: bool = False,
                  inplace: bool = False, *, seed: _TorchSeed = None,
                  stream: int = 0) -> torch.Tensor:
    """torch.nn.functional.alpha_dropout (training defaults to False, as in torch), for SELU nets."""
    _check_tensor(input)
    p = _check_p(p)
    return _noise(input, None, p, training, inplace, seed, stream, True, F.alpha_dropout)


def feature_alpha_dropout(input: torch.Tensor, p: float = 0.5, training: bool = False,
                          inplace: bool = False, *, seed: _TorchSeed = None,
                          stream: int = 0) -> torch.Tensor:
    """torch.nn.functional.feature_alpha_dropout: alpha dropout of whole channels (axis 1)."""
    _check_tensor(input)
    p = _check_p(p)
    noise_shape = _channel_noise_shape(input, batched=True)
    return _noise(input, noise_shape, p, training, inplace, seed, stream, True,
                  F.feature_alpha_dropout)


# -- modules ------------------------------------------------------------------------------

class _Seeded(_DropoutNd):
    """The torch module's arguments plus a key and a step counter.

    `seed` None draws the key from torch's default generator; the k-th training forward
    (k = `step` before it) uses stream k, as fastdrop's own layers do (DESIGN.md §7.7).
    """

    # the module's function, as torch.nn.functional's for the torch module
    _function: ClassVar[Callable[..., torch.Tensor]]

    def __init__(self, p: float = 0.5, inplace: bool = False, *, seed: _TorchSeed = None) -> None:
        super().__init__(_check_p(p), inplace)
        self.seed = _key(seed)
        self.step = 0

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self._function(input, self.p, False, self.inplace)
        stream = self.step
        self.step += 1
        return self._function(input, self.p, True, self.inplace, seed=self.seed, stream=stream)

    def get_extra_state(self) -> dict[str, int]:
        return {"seed": self.seed, "step": self.step}

    def set_extra_state(self, state: Any) -> None:
        if not isinstance(state, dict) or set(state) != {"seed", "step"}:
            raise ValueError(f"{type(self).__name__} state must be a dict with 'seed' and 'step', "
                             f"got {state!r}")
        for name in ("seed", "step"):
            value = state[name]
            if type(value) is not int or not 0 <= value < _U64:
                raise ValueError(f"{type(self).__name__} state {name!r} must be an int in "
                                 f"[0, 2**64), got {value!r}")
        self.seed = state["seed"]
        self.step = state["step"]

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str,
                              local_metadata: dict[str, Any], strict: bool,
                              missing_keys: list[str], unexpected_keys: list[str],
                              error_msgs: list[str]) -> None:
        # A checkpoint of the torch.nn module has no extra state: keep this module's own.
        key = prefix + _EXTRA_STATE_KEY
        if key not in state_dict:
            state_dict[key] = self.get_extra_state()
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, seed={self.seed}, step={self.step}"


class Dropout(_Seeded, torch.nn.Dropout):
    """torch.nn.Dropout on fastdrop's kernels: each element dropped with probability p."""

    _function = staticmethod(dropout)


class Dropout1d(_Seeded, torch.nn.Dropout1d):
    """torch.nn.Dropout1d on fastdrop's kernels: whole channels of (N, C, L) or (C, L) input."""

    _function = staticmethod(dropout1d)


class Dropout2d(_Seeded, torch.nn.Dropout2d):
    """torch.nn.Dropout2d on fastdrop's kernels: whole channels of (N, C, H, W) input."""

    _function = staticmethod(dropout2d)


class Dropout3d(_Seeded, torch.nn.Dropout3d):
    """torch.nn.Dropout3d on fastdrop's kernels: whole channels of (N, C, D, H, W) input."""

    _function = staticmethod(dropout3d)


class AlphaDropout(_Seeded, torch.nn.AlphaDropout):
    """torch.nn.AlphaDropout on fastdrop's kernels (DESIGN.md §7.3), for SELU networks."""

    _function = staticmethod(alpha_dropout)


class FeatureAlphaDropout(_Seeded, torch.nn.FeatureAlphaDropout):
    """torch.nn.FeatureAlphaDropout on fastdrop's kernels: alpha dropout of whole channels."""

    _function = staticmethod(feature_alpha_dropout)
