"""The ``fastdrop`` operators of ``torch.library``: dropout on fastdrop's kernels, as torch sees it.

Operators (namespace ``fastdrop``, kernels for CPU):

- ``dropout(Tensor input, Tensor rng, float p, int kept_dims) -> (Tensor output, Tensor mask)``
  and ``alpha_dropout`` (same schema): the training-mode forward.  ``output`` is new memory
  laid out as ``input`` is (``torch.empty_like``, preserve_format); ``mask`` is 1-D uint8,
  1 bit per element of the noise shape (fastdrop's Mask format, DESIGN.md §4).
- ``dropout_(Tensor(a!) input, ...) -> Tensor mask`` and ``alpha_dropout_``: in place.
- ``dropout_backward(Tensor grad, Tensor mask, float p, int kept_dims, bool alpha) -> Tensor``:
  grad times the mask's scale where it keeps, 0 elsewhere.  Linear in ``grad``, so it is
  also the forward-mode tangent and its own double backward.

``rng`` is an int64 tensor of 4 entries: the key's low and high 32 bits, the stream and the
offset (the last two as the bit patterns of unsigned 64-bit ints).  ``kept_dims`` k > 0
samples the mask over ``input.shape[:k]`` and broadcasts it over the remaining axes (whole
channels); 0 samples one bit per element.  The mask of element i is the one
``fastdrop.dropout`` gives element i of the logical C order, whatever the strides.

Every operator is a pure function of its inputs (the randomness is in ``rng``), which is
what lets fake tensors, functionalization, ``torch.compile`` and ``torch.library.opcheck``
take them.  The forward operators carry an autograd formula (``register_autograd``), a
fake implementation and a vmap rule; eval mode, p = 0 and empty inputs never reach them.
"""
from __future__ import annotations

import ctypes
import math
import sys
from typing import Any, Optional, overload

import numpy as np
import torch

import fastdrop
from fastdrop import _kernels
from fastdrop.mask import Mask

_U64_MASK = (1 << 64) - 1
_NUMPY_DTYPES = frozenset({torch.float16, torch.float32, torch.float64})
#: computed in float32 and rounded once (to nearest, ties to even) to their own dtype
_WIDENED_DTYPES = frozenset({torch.bfloat16})
KERNEL_DTYPES = _NUMPY_DTYPES | _WIDENED_DTYPES

_LIBRARY = torch.library.Library("fastdrop", "DEF")  # type: ignore[no-untyped-call]
_FORWARD_SCHEMA = "(Tensor input, Tensor rng, float p, int kept_dims) -> (Tensor, Tensor)"
_INPLACE_SCHEMA = "(Tensor(a!) input, Tensor rng, float p, int kept_dims) -> Tensor"
for _name in ("dropout", "alpha_dropout"):
    _LIBRARY.define(_name + _FORWARD_SCHEMA)  # type: ignore[no-untyped-call]
    _LIBRARY.define(_name + "_" + _INPLACE_SCHEMA)  # type: ignore[no-untyped-call]
_BACKWARD_SCHEMA = ("dropout_backward(Tensor grad, Tensor mask, float p, int kept_dims, "
                    "bool alpha) -> Tensor")
_LIBRARY.define(_BACKWARD_SCHEMA)  # type: ignore[no-untyped-call]

dropout_op = torch.ops.fastdrop.dropout.default
alpha_dropout_op = torch.ops.fastdrop.alpha_dropout.default
dropout_inplace_op = torch.ops.fastdrop.dropout_.default
alpha_dropout_inplace_op = torch.ops.fastdrop.alpha_dropout_.default
dropout_backward_op = torch.ops.fastdrop.dropout_backward.default

VMAP_RANDOMNESS_ERROR = (
    "vmap: called random operation while in randomness error mode. Please either use the "
    "'same' or 'different' randomness flags on vmap or perform the randomness operation out "
    "of vmap")


# -- memory ------------------------------------------------------------------------------------

_HUGE_PAGE = 1 << 21
_MADV_HUGEPAGE = 14
_madvise: Any = None
if sys.platform.startswith("linux"):
    try:
        _madvise = ctypes.CDLL(None, use_errno=True).madvise
        _madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        _madvise.restype = ctypes.c_int
    except (OSError, AttributeError):  # no libc symbol: the pages come 4 KiB at a time
        _madvise = None


def _advise_huge_pages(tensor: torch.Tensor) -> torch.Tensor:
    """Ask Linux to back a large new tensor with transparent huge pages, as NumPy does
    for its own large arrays: a fresh output then faults once per 2 MiB, not per 4 KiB,
    which is most of the time a memory-bound kernel spends on a fresh buffer."""
    nbytes = tensor.nbytes
    if _madvise is not None and nbytes >= 2 * _HUGE_PAGE:
        start = tensor.data_ptr()
        first = (start + 4095) & ~4095
        last = (start + nbytes) & ~4095
        if last > first:
            _madvise(first, last - first, _MADV_HUGEPAGE)  # advice only: failure is harmless
    return tensor


def empty_like(input: torch.Tensor) -> torch.Tensor:
    """torch.empty_like(input) (its layout, preserve_format), huge-page advised when large."""
    return _advise_huge_pages(torch.empty_like(input))


# -- arguments ---------------------------------------------------------------------------------

def _check_rng(rng: torch.Tensor) -> tuple[int, int, int]:
    """(key, stream, offset) of an rng tensor, as unsigned 64-bit ints."""
    if rng.dtype != torch.int64 or rng.shape != (4,):
        raise RuntimeError(f"fastdrop: rng must be an int64 tensor of shape (4,) (key low and "
                           f"high 32 bits, stream, offset), got {rng.dtype} of shape "
                           f"{tuple(rng.shape)}")
    low, high, stream, offset = rng.tolist()
    if not (0 <= low < 1 << 32 and 0 <= high < 1 << 32):
        raise RuntimeError(f"fastdrop: rng[0] and rng[1] must be the key's 32-bit halves, in "
                           f"[0, 2**32), got {low} and {high}")
    return low | (high << 32), stream & _U64_MASK, offset & _U64_MASK


def _check_kept_dims(input: torch.Tensor, kept_dims: int) -> Optional[tuple[int, ...]]:
    """The noise shape of `kept_dims` (None: one bit per element)."""
    if kept_dims == 0:
        return None
    if not 0 < kept_dims <= input.dim():
        raise RuntimeError(f"fastdrop: kept_dims must be in [0, input.dim()] = [0, "
                           f"{input.dim()}], got {kept_dims}")
    shape = tuple(input.shape)
    return shape[:kept_dims] + (1,) * (input.dim() - kept_dims)


def _check_p(p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise RuntimeError(f"dropout probability has to be between 0 and 1, but got {p}")


def _check_floating(input: torch.Tensor, name: str) -> None:
    if input.dtype not in KERNEL_DTYPES:
        raise RuntimeError(f"fastdrop: {name} must be float16, bfloat16, float32 or float64, "
                           f"got {input.dtype}")


def noise_numel(shape: Any, kept_dims: int) -> Any:
    """Elements the mask of an input of `shape` has (symbolic sizes welcome)."""
    return math.prod(shape[:kept_dims]) if kept_dims else math.prod(shape)


def _mask_bytes(shape: Any, kept_dims: int) -> Any:
    return (noise_numel(shape, kept_dims) + 7) // 8


# -- the kernels on NumPy views ----------------------------------------------------------------

def _numpy(tensor: torch.Tensor) -> Any:
    """The NumPy view of a CPU tensor's memory (no copy)."""
    return (tensor.detach() if tensor.requires_grad else tensor).numpy()


def _compute_views(input: torch.Tensor, out: torch.Tensor) -> tuple[Any, Any, bool]:
    """(x, y, copy_back): NumPy arrays in C order the kernel reads and writes.

    A C-contiguous tensor of a NumPy dtype is its own view: no copy.  Any other layout
    goes through C-order copies, so the mask stays on the logical C-order index; bfloat16
    goes through float32 (computed in float32, rounded once on the way back)."""
    if input.dtype in _NUMPY_DTYPES:
        if input.is_contiguous() and out.is_contiguous():
            return _numpy(input), out.numpy(), False
        x = _numpy(input.contiguous())
        return x, np.empty(x.shape, dtype=x.dtype), True
    x = _numpy(input.to(torch.float32, memory_format=torch.contiguous_format))
    return x, np.empty(x.shape, dtype=x.dtype), True


def _writable_bits(mask: Mask) -> torch.Tensor:
    """The mask's bits as a uint8 tensor, without a copy where NumPy allows it.

    A Mask's bits are read-only (a Mask is immutable); a just-sampled Mask that no one
    else holds owns them, so the flag may be lifted on its way into a tensor."""
    bits = mask.bits
    try:
        bits.setflags(write=True)
    except ValueError:  # not the owner: copy
        bits = bits.copy()
    return torch.from_numpy(bits)


@overload
def run_forward(input: torch.Tensor, out: torch.Tensor, rng: torch.Tensor, p: float,
                kept_dims: int, alpha: bool) -> torch.Tensor: ...
@overload
def run_forward(input: torch.Tensor, out: torch.Tensor, rng: torch.Tensor, p: float,
                kept_dims: int, alpha: bool, need_mask: bool) -> Optional[torch.Tensor]: ...
def run_forward(input: torch.Tensor, out: torch.Tensor, rng: torch.Tensor, p: float,
                kept_dims: int, alpha: bool, need_mask: bool = True) -> Optional[torch.Tensor]:
    """Dropout of `input` into `out` (same shape, any layout); returns the mask tensor
    (None when not `need_mask`: the kernel then writes no bits)."""
    _check_floating(input, "input")
    _check_p(p)
    key, stream, offset = _check_rng(rng)
    noise_shape = _check_kept_dims(input, kept_dims)
    x, y, copy_back = _compute_views(input, out)
    kernel = fastdrop.alpha_dropout if alpha else fastdrop.dropout
    result = kernel(x, p, seed=key, stream=stream, offset=offset, noise_shape=noise_shape,
                    out=y, return_mask=need_mask)
    if copy_back:
        out.copy_(torch.from_numpy(y))  # bfloat16: rounds to nearest, ties to even
    return _writable_bits(result[1]) if need_mask else None  # type: ignore[arg-type]


def _forward_cpu(alpha: bool) -> Any:
    def forward(input: torch.Tensor, rng: torch.Tensor, p: float,
                kept_dims: int) -> tuple[torch.Tensor, torch.Tensor]:
        out = empty_like(input)
        return out, run_forward(input, out, rng, p, kept_dims, alpha)
    return forward


def _inplace_cpu(alpha: bool) -> Any:
    def forward_(input: torch.Tensor, rng: torch.Tensor, p: float,
                 kept_dims: int) -> torch.Tensor:
        return run_forward(input, input, rng, p, kept_dims, alpha)
    return forward_


def _backward_cpu(grad: torch.Tensor, mask: torch.Tensor, p: float, kept_dims: int,
                  alpha: bool) -> torch.Tensor:
    _check_floating(grad, "grad")
    _check_p(p)
    noise_shape = _check_kept_dims(grad, kept_dims) or tuple(grad.shape)
    size = math.prod(noise_shape)
    if mask.dtype != torch.uint8 or mask.dim() != 1 or mask.shape[0] != (size + 7) // 8:
        raise RuntimeError(f"fastdrop: mask must be 1-D uint8 of {(size + 7) // 8} bytes (1 bit "
                           f"per element of the noise shape {noise_shape}), got {mask.dtype} of "
                           f"shape {tuple(mask.shape)}")
    keep_prob = 1.0 - p  # as fastdrop turns a rate into a keep probability
    scale = _kernels.alpha_scale(keep_prob) if alpha else _kernels.dropout_scale(keep_prob, True)
    stored = Mask._from_kernels(  # type: ignore[no-untyped-call]
        _numpy(mask.contiguous()), noise_shape, size, keep_prob, scale, None, None, None)
    out = empty_like(grad)
    g, y, copy_back = _compute_views(grad, out)
    fastdrop.apply_mask(g, stored, out=y)
    if copy_back:
        out.copy_(torch.from_numpy(y))
    return out


for _name, _alpha in (("dropout", False), ("alpha_dropout", True)):
    _LIBRARY.impl(_name, _forward_cpu(_alpha), "CPU")  # type: ignore[no-untyped-call]
    _LIBRARY.impl(_name + "_", _inplace_cpu(_alpha), "CPU")  # type: ignore[no-untyped-call]
_LIBRARY.impl("dropout_backward", _backward_cpu, "CPU")  # type: ignore[no-untyped-call]


# -- fake (meta) implementations ---------------------------------------------------------------

def _fake_forward(input: torch.Tensor, rng: torch.Tensor, p: float,
                  kept_dims: int) -> tuple[torch.Tensor, torch.Tensor]:
    _check_floating(input, "input")
    return (torch.empty_like(input),
            input.new_empty((_mask_bytes(input.shape, kept_dims),), dtype=torch.uint8))


def _fake_inplace(input: torch.Tensor, rng: torch.Tensor, p: float,
                  kept_dims: int) -> torch.Tensor:
    _check_floating(input, "input")
    return input.new_empty((_mask_bytes(input.shape, kept_dims),), dtype=torch.uint8)


def _fake_backward(grad: torch.Tensor, mask: torch.Tensor, p: float, kept_dims: int,
                   alpha: bool) -> torch.Tensor:
    _check_floating(grad, "grad")
    return torch.empty_like(grad)


for _name in ("dropout", "alpha_dropout"):
    torch.library.register_fake(f"fastdrop::{_name}", _fake_forward, lib=_LIBRARY)
    torch.library.register_fake(f"fastdrop::{_name}_", _fake_inplace, lib=_LIBRARY)
torch.library.register_fake("fastdrop::dropout_backward", _fake_backward, lib=_LIBRARY)


# -- autograd ----------------------------------------------------------------------------------

def _setup_forward(alpha: bool) -> Any:
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, ...]) -> None:
        _, _, p, kept_dims = inputs
        ctx.save_for_backward(output[1])
        ctx.p, ctx.kept_dims, ctx.alpha = p, kept_dims, alpha
    return setup_context


def _forward_ad_active() -> bool:
    """Under a torch.func transform or forward-mode AD, which need an autograd.Function's jvp."""
    return (not torch.compiler.is_compiling()
            and (torch._C._functorch.peek_interpreter_stack() is not None
                 or torch.autograd.forward_ad._current_level >= 0))


def masked_scale(grad: torch.Tensor, mask: torch.Tensor, p: float, kept_dims: int,
                 alpha: bool) -> torch.Tensor:
    """dropout_backward, through MaskedScaleFunction where forward-mode AD may look at it."""
    if _forward_ad_active():
        result: torch.Tensor = MaskedScaleFunction.apply(  # type: ignore[no-untyped-call]
            grad, mask, p, kept_dims, alpha)
        return result
    return dropout_backward_op(grad, mask, p, kept_dims, alpha)  # type: ignore[no-any-return]


def _backward_of_forward(ctx: Any, grad: torch.Tensor, _grad_mask: Any) -> tuple[Any, ...]:
    (mask,) = ctx.saved_tensors
    return masked_scale(grad, mask, ctx.p, ctx.kept_dims, ctx.alpha), None, None, None


def _setup_backward(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    _, mask, p, kept_dims, alpha = inputs
    ctx.save_for_backward(mask)
    ctx.p, ctx.kept_dims, ctx.alpha = p, kept_dims, alpha


def _backward_of_backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
    (mask,) = ctx.saved_tensors
    return masked_scale(grad, mask, ctx.p, ctx.kept_dims, ctx.alpha), None, None, None, None


for _name, _alpha in (("dropout", False), ("alpha_dropout", True)):
    torch.library.register_autograd(f"fastdrop::{_name}", _backward_of_forward,
                                    setup_context=_setup_forward(_alpha), lib=_LIBRARY)
torch.library.register_autograd("fastdrop::dropout_backward", _backward_of_backward,
                                setup_context=_setup_backward, lib=_LIBRARY)


# -- vmap --------------------------------------------------------------------------------------

def _batch(tensor: torch.Tensor, dim: Optional[int], size: int) -> list[torch.Tensor]:
    """The `size` slices of a batched tensor along `dim`, or `size` times an unbatched one."""
    if dim is None:
        return [tensor] * size
    return list(tensor.movedim(dim, 0).unbind(0))


def _vmap_forward(op: Any) -> Any:
    def rule(info: Any, in_dims: tuple[Optional[int], ...], input: torch.Tensor,
             rng: torch.Tensor, p: float, kept_dims: int) -> tuple[Any, Any]:
        input_dim, rng_dim = in_dims[0], in_dims[1]
        if rng_dim is None and info.randomness == "error":
            raise RuntimeError(VMAP_RANDOMNESS_ERROR)
        size = info.batch_size
        inputs = _batch(input, input_dim, size)
        if rng_dim is not None:
            rngs = _batch(rng, rng_dim, size)
        elif info.randomness == "same":
            rngs = [rng] * size
        else:  # 'different' from one rng: sample b takes the counters after sample b - 1
            per_sample = noise_numel(inputs[0].shape, kept_dims) if size else 0
            shift = torch.zeros(4, dtype=torch.int64, device=rng.device)
            rngs = [rng + shift.index_fill(0, torch.tensor([3]), b * per_sample)
                    for b in range(size)]
        results = [op(x, r, p, kept_dims) for x, r in zip(inputs, rngs)]
        outputs = torch.stack([out for out, _ in results])
        masks = torch.stack([mask for _, mask in results])
        return (outputs, masks), (0, 0)
    return rule


def _vmap_backward(info: Any, in_dims: tuple[Optional[int], ...], grad: torch.Tensor,
                   mask: torch.Tensor, p: float, kept_dims: int, alpha: bool) -> tuple[Any, int]:
    size = info.batch_size
    grads = _batch(grad, in_dims[0], size)
    masks = _batch(mask, in_dims[1], size)
    return torch.stack([dropout_backward_op(g, m, p, kept_dims, alpha)
                        for g, m in zip(grads, masks)]), 0


torch.library.register_vmap("fastdrop::dropout", _vmap_forward(dropout_op), lib=_LIBRARY)
torch.library.register_vmap("fastdrop::alpha_dropout", _vmap_forward(alpha_dropout_op),
                            lib=_LIBRARY)
torch.library.register_vmap("fastdrop::dropout_backward", _vmap_backward, lib=_LIBRARY)


# -- forward-mode AD ---------------------------------------------------------------------------

class DropoutFunction(torch.autograd.Function):
    """The forward operator under torch.func and forward-mode AD, which take an
    autograd.Function's jvp (dropout is linear in its input: the tangent gets the mask)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(input: torch.Tensor, rng: torch.Tensor, p: float, kept_dims: int,
                alpha: bool) -> tuple[torch.Tensor, torch.Tensor]:
        op = alpha_dropout_op if alpha else dropout_op
        result: tuple[torch.Tensor, torch.Tensor] = op(input, rng, p, kept_dims)
        return result

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, ...]) -> None:
        _, _, p, kept_dims, alpha = inputs
        mask = output[1]
        ctx.mark_non_differentiable(mask)
        ctx.save_for_backward(mask)
        ctx.save_for_forward(mask)
        ctx.p, ctx.kept_dims, ctx.alpha = p, kept_dims, alpha

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor, _grad_mask: Any) -> tuple[Any, ...]:
        (mask,) = ctx.saved_tensors
        return masked_scale(grad, mask, ctx.p, ctx.kept_dims, ctx.alpha), None, None, None, None

    @staticmethod
    def jvp(ctx: Any, tangent: torch.Tensor, *_: Any) -> tuple[torch.Tensor, None]:
        (mask,) = ctx.saved_tensors
        return masked_scale(tangent, mask, ctx.p, ctx.kept_dims, ctx.alpha), None


class MaskedScaleFunction(torch.autograd.Function):
    """dropout_backward for torch.func and forward-mode AD: linear in grad, so its backward
    and its jvp are itself."""

    generate_vmap_rule = True

    @staticmethod
    def forward(grad: torch.Tensor, mask: torch.Tensor, p: float, kept_dims: int,
                alpha: bool) -> torch.Tensor:
        result: torch.Tensor = dropout_backward_op(grad, mask, p, kept_dims, alpha)
        return result

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        _, mask, p, kept_dims, alpha = inputs
        ctx.save_for_backward(mask)
        ctx.save_for_forward(mask)
        ctx.p, ctx.kept_dims, ctx.alpha = p, kept_dims, alpha

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        (mask,) = ctx.saved_tensors
        return masked_scale(grad, mask, ctx.p, ctx.kept_dims, ctx.alpha), None, None, None, None

    @staticmethod
    def jvp(ctx: Any, tangent: torch.Tensor, *_: Any) -> torch.Tensor:
        (mask,) = ctx.saved_tensors
        return masked_scale(tangent, mask, ctx.p, ctx.kept_dims, ctx.alpha)


class EagerDropoutFunction(torch.autograd.Function):
    """Dropout for a plain eager call that needs a gradient: the operators' CPU kernels
    called directly (the same functions, so the same bits), without the dispatcher's
    layers; a backward that must itself be differentiated goes through the operator."""

    @staticmethod
    def forward(ctx: Any, input: torch.Tensor, rng: torch.Tensor, p: float, kept_dims: int,
                alpha: bool) -> torch.Tensor:
        out = empty_like(input)
        mask = run_forward(input, out, rng, p, kept_dims, alpha)
        ctx.save_for_backward(mask)
        ctx.p, ctx.kept_dims, ctx.alpha = p, kept_dims, alpha
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        (mask,) = ctx.saved_tensors
        functorch = torch._C._functorch
        if (torch.is_grad_enabled() or type(grad) is not torch.Tensor  # create_graph, subclass
                or functorch.is_legacy_batchedtensor(grad)  # batched gradients
                or functorch.is_functorch_wrapped_tensor(grad)):
            grad_input = masked_scale(grad, mask, ctx.p, ctx.kept_dims, ctx.alpha)
        else:
            grad_input = _backward_cpu(grad, mask, ctx.p, ctx.kept_dims, ctx.alpha)
        return grad_input, None, None, None, None
