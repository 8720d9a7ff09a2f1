"""The torch.ops.fastdrop operators: opcheck, fake tensors, autograd, vmap, forward-mode AD."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.autograd.forward_ad as fwAD  # noqa: E402
import torch.func  # noqa: E402

import fastdrop  # noqa: E402
import fastdrop.torch as fdt  # noqa: E402
from conftest import assert_bit_equal  # noqa: E402
from fastdrop.torch import _ops  # noqa: E402

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
LAYOUTS = {
    "contiguous": lambda t: t,
    "strided": lambda t: t[:, :, ::2],
    "channels_last": lambda t: t.contiguous(memory_format=torch.channels_last),
    "empty": lambda t: t[:0],
}
RNG = torch.tensor([0x9E3779B9, 0x7F4A7C15, 6, 0])


def sample(dtype, layout, requires_grad):
    base = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(1)).to(dtype)
    x = LAYOUTS[layout](base)
    return x.requires_grad_(requires_grad) if requires_grad else x


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_opcheck_dropout(dtype, layout, requires_grad):
    x = sample(dtype, layout, False).detach()
    if requires_grad:
        x = x.clone(memory_format=torch.preserve_format).requires_grad_()
    torch.library.opcheck(_ops.dropout_op, (x, RNG, 0.3, 0))


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("layout", ["strided", "channels_last", "empty"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
def test_opcheck_alpha_channels_backward_and_inplace(dtype, layout, requires_grad):
    x = sample(dtype, layout, False).detach()
    if requires_grad:
        x = x.clone(memory_format=torch.preserve_format).requires_grad_()
    torch.library.opcheck(_ops.alpha_dropout_op, (x, RNG, 0.3, 2))
    torch.library.opcheck(_ops.dropout_op, (x, RNG, 0.3, 1))
    mask = _ops.dropout_op(x.detach(), RNG, 0.3, 2)[1]
    torch.library.opcheck(_ops.dropout_backward_op, (x, mask, 0.3, 2, False))
    if not requires_grad:  # torch refuses in-place work on a leaf that requires grad
        torch.library.opcheck(_ops.dropout_inplace_op, (x.clone(), RNG, 0.3, 0))
        torch.library.opcheck(_ops.alpha_dropout_inplace_op, (x.clone(), RNG, 0.3, 2))


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_output_is_new_memory_in_the_input_layout(dtype, layout):
    x = sample(dtype, layout, False)
    out, mask = _ops.dropout_op(x, RNG, 0.5, 0)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.stride() == torch.empty_like(x).stride()
    assert x.numel() == 0 or out.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
    assert mask.dtype == torch.uint8 and mask.shape == ((x.numel() + 7) // 8,)
    fake_out, fake_mask = _ops.dropout_op(x.to("meta"), RNG.to("meta"), 0.5, 0)
    assert fake_out.stride() == out.stride() and fake_mask.shape == mask.shape


@pytest.mark.parametrize("kept_dims", [0, 1, 2, 4])
def test_forward_mask_is_fastdrops_mask_on_the_c_order_index(kept_dims):
    x = sample(torch.float64, "channels_last", False)
    out, mask = _ops.dropout_op(x, RNG, 0.4, kept_dims)
    key = int(RNG[0]) | (int(RNG[1]) << 32)
    noise = tuple(x.shape[:kept_dims]) + (1,) * (4 - kept_dims) if kept_dims else None
    expected, expected_mask = fastdrop.reference.dropout(
        x.contiguous().numpy(), 0.4, seed=key, stream=6, noise_shape=noise, return_mask=True)
    assert_bit_equal(out.contiguous().numpy(), expected)
    np.testing.assert_array_equal(mask.numpy(), expected_mask.bits)


def test_stream_and_offset_take_unsigned_bit_patterns():
    x = torch.randn(100, dtype=torch.float64)
    rng = torch.tensor([1, 2, -1, -200])  # stream 2**64 - 1, offset 2**64 - 200
    out, _ = _ops.dropout_op(x, rng, 0.5, 0)
    expected = fastdrop.reference.dropout(x.numpy(), 0.5, seed=1 | (2 << 32), stream=(1 << 64) - 1,
                                          offset=(1 << 64) - 200)
    assert_bit_equal(out.numpy(), expected)


@pytest.mark.parametrize("rng, match", [
    (torch.tensor([1, 2, 3]), "shape \\(4,\\)"),
    (torch.tensor([1.0, 2, 3, 4]), "int64"),
    (torch.tensor([1 << 32, 0, 0, 0]), "32-bit halves"),
    (torch.tensor([-1, 0, 0, 0]), "32-bit halves")])
def test_bad_rng_is_a_runtime_error(rng, match):
    with pytest.raises(RuntimeError, match=match):
        _ops.dropout_op(torch.ones(4), rng, 0.5, 0)


def test_bad_arguments_are_runtime_errors():
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        _ops.dropout_op(torch.ones(4), RNG, 1.5, 0)
    with pytest.raises(RuntimeError, match="kept_dims"):
        _ops.dropout_op(torch.ones(4), RNG, 0.5, 2)
    with pytest.raises(RuntimeError, match="float16, bfloat16, float32 or float64"):
        _ops.dropout_op(torch.ones(4, dtype=torch.int32), RNG, 0.5, 0)
    with pytest.raises(RuntimeError, match="mask must be 1-D uint8 of 1 bytes"):
        _ops.dropout_backward_op(torch.ones(4), torch.zeros(2, dtype=torch.uint8), 0.5, 0, False)


def test_inplace_op_writes_the_functional_result():
    x = torch.randn(3, 17)
    out, mask = _ops.dropout_op(x, RNG, 0.3, 0)
    y = x.clone()
    mask_inplace = _ops.dropout_inplace_op(y, RNG, 0.3, 0)
    assert torch.equal(y, out) and torch.equal(mask, mask_inplace)


# -- torch.func and forward-mode AD ------------------------------------------------------

X = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
FUNCTIONS = {
    "dropout": lambda t: fdt.dropout(t, 0.5, seed=1, stream=2),
    "alpha_dropout": lambda t: fdt.alpha_dropout(t, 0.3, True, seed=1, stream=2),
    "dropout1d": lambda t: fdt.dropout1d(t, 0.5, seed=3),
}


def mask_scale(function):
    """d function(x) / dx, elementwise: the mask times its scale."""
    x = X.clone().requires_grad_()
    function(x).backward(torch.ones_like(X))
    return x.grad


@pytest.mark.parametrize("name", ["dropout", "alpha_dropout", "dropout1d"])
def test_vmap_randomness_as_torchs_dropout(name):
    for randomness in ("error", "same", "different"):
        results = []
        for function in (getattr(fdt, name), getattr(torch.nn.functional, name)):
            try:
                torch.manual_seed(0)
                y = torch.func.vmap(lambda t: function(t, 0.5, True),
                                    randomness=randomness)(torch.ones(8, 6, 16))
            except RuntimeError as exc:
                results.append(str(exc))
                continue
            # on ones, kept and dropped elements have different values: rows equal iff masks do
            results.append(bool((y == y[0]).all()))
        assert results[0] == results[1], randomness
    assert results[0] is False  # 'different' gave different masks


@pytest.mark.parametrize("randomness", ["same", "different"])
def test_vmap_of_a_seeded_call(randomness):
    y = torch.func.vmap(FUNCTIONS["dropout"], randomness=randomness)(X)
    whole = FUNCTIONS["dropout"](X)
    rows = [FUNCTIONS["dropout"](X[b]) for b in range(4)]
    if randomness == "same":  # every sample gets the mask of sample 0
        assert all(torch.equal(y[b] != 0, rows[0] != 0) for b in range(4))
    else:  # sample b gets row b of the mask of the whole batch
        assert torch.equal(y, whole)
    with pytest.raises(RuntimeError, match="randomness error mode"):
        torch.func.vmap(FUNCTIONS["dropout"])(X)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_grad_jacrev_jacfwd_jvp_and_forward_ad_use_the_mask(name):
    function = FUNCTIONS[name]
    scale = mask_scale(function)
    assert torch.equal(torch.func.grad(lambda t: function(t).sum())(X), scale)
    jac = torch.func.jacrev(function)(X)
    assert torch.equal(jac, torch.func.jacfwd(function, randomness="same")(X))
    assert torch.equal(jac.reshape(24, 24), torch.diag(scale.reshape(-1)))
    tangent = torch.randn_like(X)
    primal_out, tangent_out = torch.func.jvp(function, (X,), (tangent,))
    assert torch.equal(primal_out, function(X))
    assert torch.equal(tangent_out, tangent * scale)
    with fwAD.dual_level():
        out = function(fwAD.make_dual(X, tangent))
        assert torch.equal(fwAD.unpack_dual(out).tangent, tangent * scale)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_gradcheck_every_mode(name):
    x = X.clone().requires_grad_()
    assert torch.autograd.gradcheck(FUNCTIONS[name], (x,), check_forward_ad=True,
                                    check_batched_grad=True, check_batched_forward_grad=True)
    assert torch.autograd.gradgradcheck(FUNCTIONS[name], (x,), check_fwd_over_rev=True,
                                        check_rev_over_rev=True)


def test_batched_gradients():
    x = X.clone().requires_grad_()
    y = FUNCTIONS["dropout"](x)
    grads = torch.eye(24, dtype=X.dtype).reshape(24, 4, 6)
    (batched,) = torch.autograd.grad(y, x, grads, is_grads_batched=True)
    assert torch.equal(batched.reshape(24, 24),
                       torch.diag(mask_scale(FUNCTIONS["dropout"]).reshape(-1)))
