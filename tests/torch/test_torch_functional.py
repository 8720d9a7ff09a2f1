"""fastdrop.torch functions: bit-exact with fastdrop.reference, autograd, layouts, torch's
semantics (identities, errors, warnings), bfloat16, fallback."""
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fastdrop  # noqa: E402
import fastdrop.torch as fdt  # noqa: E402
from conftest import assert_bit_equal  # noqa: E402

KERNEL_DTYPES = [torch.float16, torch.float32, torch.float64]
SIZES = [0, 1, 3, 5, 17, 64, 65, 1000003]


def randn(*shape, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype)


def test_import_torch_is_the_real_package():
    # tests/torch has no __init__.py: a namespace portion that must not shadow torch
    assert torch.__file__ is not None and hasattr(torch, "autograd")


@pytest.mark.parametrize("dtype", KERNEL_DTYPES)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("p", [0.0, 0.3, 0.5, 1.0])
def test_dropout_equals_reference(dtype, size, p):
    x = randn(size, dtype=dtype, seed=size)
    x[: size // 7] = float("nan")  # dropped NaNs are +0.0 too
    y = fdt.dropout(x, p, seed=1234, stream=9)
    expected = fastdrop.reference.dropout(x.numpy(), p, seed=1234, stream=9)
    assert y.dtype == dtype
    assert_bit_equal(y.numpy(), expected)


@pytest.mark.parametrize("dtype", KERNEL_DTYPES)
@pytest.mark.parametrize("function, shape, noise_shape", [
    (fdt.dropout1d, (3, 4, 17), (3, 4, 1)),
    (fdt.dropout1d, (4, 17), (4, 1)),
    (fdt.dropout2d, (2, 5, 3, 7), (2, 5, 1, 1)),
    (fdt.dropout3d, (2, 3, 2, 3, 5), (2, 3, 1, 1, 1)),
    (fdt.dropout3d, (3, 2, 3, 5), (3, 1, 1, 1)),
])
def test_channel_dropout_equals_reference(dtype, function, shape, noise_shape):
    x = randn(*shape, dtype=dtype)
    y = function(x, 0.4, seed=77, stream=3)
    expected = fastdrop.reference.dropout(x.numpy(), 0.4, seed=77, stream=3,
                                          noise_shape=noise_shape)
    assert_bit_equal(y.numpy(), expected)


@pytest.mark.parametrize("dtype", KERNEL_DTYPES)
@pytest.mark.parametrize("p", [0.0, 0.2, 1.0])
def test_alpha_dropout_equals_reference(dtype, p):
    x = randn(6, 5, 7, dtype=dtype)
    y = fdt.alpha_dropout(x, p, training=True, seed=5, stream=2)
    assert_bit_equal(y.numpy(), fastdrop.reference.alpha_dropout(x.numpy(), p, seed=5, stream=2))
    y = fdt.feature_alpha_dropout(x, p, training=True, seed=5, stream=2)
    assert_bit_equal(y.numpy(), fastdrop.reference.alpha_dropout(
        x.numpy(), p, seed=5, stream=2, noise_shape=(6, 5, 1)))


def test_alpha_dropout_defaults_to_eval_like_torch():
    x = randn(10)
    assert fdt.alpha_dropout(x, 0.5) is x
    assert fdt.feature_alpha_dropout(x.reshape(2, 5), 0.5) is not None


@pytest.mark.parametrize("function", [fdt.dropout, fdt.alpha_dropout])
def test_gradcheck_float64(function):
    x = randn(4, 9, dtype=torch.float64).requires_grad_()
    run = lambda t: function(t, 0.35, True, seed=11, stream=4)  # noqa: E731
    assert torch.autograd.gradcheck(run, (x,))
    assert torch.autograd.gradgradcheck(run, (x,))


@pytest.mark.parametrize("function, shape", [
    (fdt.dropout1d, (3, 4, 5)), (fdt.dropout2d, (2, 3, 2, 2)),
    (fdt.dropout3d, (2, 2, 2, 1, 2)), (fdt.feature_alpha_dropout, (3, 4, 2))])
def test_gradcheck_channel_float64(function, shape):
    x = randn(*shape, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: function(t, 0.5, True, seed=3), (x,))


@pytest.mark.parametrize("dtype", KERNEL_DTYPES)
def test_backward_is_the_mask_times_scale(dtype):
    x = randn(1000, dtype=dtype).requires_grad_()
    grad = randn(1000, dtype=dtype, seed=1)
    fdt.dropout(x, 0.25, seed=8, stream=1).backward(grad)
    expected = fastdrop.reference.dropout(grad.numpy(), 0.25, seed=8, stream=1)
    assert_bit_equal(x.grad.numpy(), expected)


def test_backward_of_expanded_gradient():
    x = randn(64, dtype=torch.float64).requires_grad_()
    y = fdt.dropout(x, 0.5, seed=2)
    y.sum().backward()  # the incoming gradient is an expanded (stride 0) tensor of ones
    expected = fastdrop.reference.dropout(np.ones(64), 0.5, seed=2)
    assert_bit_equal(x.grad.numpy(), expected)


@pytest.mark.parametrize("function, shape", [
    (fdt.dropout, (7,)), (fdt.dropout1d, (2, 3, 4)), (fdt.dropout2d, (2, 3, 4, 5)),
    (fdt.dropout3d, (2, 3, 4, 5, 6)), (fdt.alpha_dropout, (7,)),
    (fdt.feature_alpha_dropout, (2, 3, 4))])
def test_eval_returns_the_input(function, shape):
    x = randn(*shape)
    assert function(x, 0.5, training=False) is x


def test_inplace_modifies_the_input():
    x = randn(8, 16)
    expected = fastdrop.reference.dropout(x.numpy(), 0.5, seed=4)
    pointer = x.data_ptr()
    y = fdt.dropout(x, 0.5, inplace=True, seed=4)
    assert y is x and x.data_ptr() == pointer
    assert_bit_equal(x.numpy(), expected)


def test_inplace_on_a_non_leaf_with_gradient():
    leaf = randn(50, dtype=torch.float64).requires_grad_()
    h = leaf * 3.0
    y = fdt.dropout(h, 0.5, inplace=True, seed=6)
    assert y is h
    y.sum().backward()
    expected = 3.0 * fastdrop.reference.dropout(np.ones(50), 0.5, seed=6)
    np.testing.assert_array_equal(leaf.grad.numpy(), expected)


def test_inplace_on_a_leaf_that_requires_grad_is_refused_as_torch_does():
    x = randn(10).requires_grad_()
    with pytest.raises(RuntimeError, match="leaf"):
        fdt.dropout(x, 0.5, inplace=True, seed=1)


@pytest.mark.parametrize("view", [
    lambda t: t.t(), lambda t: t[:, ::3], lambda t: t[1:, 2:].t(),
    lambda t: t[0].expand(5, t.shape[1])])
def test_non_contiguous_input_gives_the_contiguous_result(view):
    base = randn(6, 35, dtype=torch.float64)
    x = view(base)
    expected = fastdrop.reference.dropout(np.ascontiguousarray(x.numpy()), 0.5, seed=12)
    y = fdt.dropout(x, 0.5, seed=12)
    assert_bit_equal(y.contiguous().numpy(), expected)
    xg = x.detach().clone().requires_grad_()
    fdt.dropout(xg, 0.5, seed=12).backward(torch.ones_like(xg))
    assert_bit_equal(xg.grad.contiguous().numpy(),
                     fastdrop.reference.dropout(np.ones(x.shape), 0.5, seed=12))


@pytest.mark.parametrize("view", [lambda t: t.t(), lambda t: t[:, ::2]])
def test_inplace_on_a_non_contiguous_view(view):
    base = randn(6, 10)
    untouched = base.clone()
    x = view(base)
    expected = fastdrop.reference.dropout(np.ascontiguousarray(x.numpy()), 0.5, seed=3)
    fdt.dropout(x, 0.5, inplace=True, seed=3)
    assert_bit_equal(np.ascontiguousarray(x.numpy()), expected)
    if x.shape[1] != base.shape[0]:  # the slice: the other columns are left alone
        np.testing.assert_array_equal(base[:, 1::2].numpy(), untouched[:, 1::2].numpy())


def test_inplace_on_an_expanded_tensor_is_refused_as_torch_does():
    x = randn(1, 4).expand(3, 4)
    with pytest.raises(RuntimeError):
        fdt.dropout(x, 0.5, inplace=True, seed=1)


def test_seed_none_follows_torch_manual_seed():
    x = randn(1000)
    torch.manual_seed(123)
    first = fdt.dropout(x, 0.5)
    second = fdt.dropout(x, 0.5)
    torch.manual_seed(123)
    assert torch.equal(fdt.dropout(x, 0.5), first)
    assert torch.equal(fdt.dropout(x, 0.5), second)
    assert not torch.equal(first, second)


def test_torch_generator_as_seed():
    x = randn(1000)
    a = fdt.dropout(x, 0.5, seed=torch.Generator().manual_seed(5))
    b = fdt.dropout(x, 0.5, seed=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_fixed_seed_same_mask_until_the_stream_changes():
    x = torch.ones(2000)
    assert torch.equal(fdt.dropout(x, seed=9), fdt.dropout(x, seed=9))
    assert not torch.equal(fdt.dropout(x, seed=9, stream=0), fdt.dropout(x, seed=9, stream=1))


def bf16_bits(t):
    return t.contiguous().view(torch.int16).numpy()


@pytest.mark.parametrize("size", [0, 1, 3, 5, 17, 65, 129, 4099])
@pytest.mark.parametrize("function, kwargs", [
    (fdt.dropout, {}), (fdt.alpha_dropout, {}), (fdt.dropout1d, {"noise_shape": (1, 1)})])
def test_bfloat16_is_the_float32_result_rounded_once(size, function, kwargs):
    # bfloat16 is computed in float32 and rounded once, to nearest with ties to even:
    # torch's own float32 -> bfloat16 conversion of the float32 reference
    x = randn(1, size, dtype=torch.bfloat16, seed=size)
    x[0, : size // 9] = float("inf")
    y = function(x, 0.3, True, seed=21, stream=5)
    assert y.dtype == torch.bfloat16 and y.shape == x.shape
    x32 = x.to(torch.float32).numpy()
    reference = (fastdrop.reference.alpha_dropout if function is fdt.alpha_dropout
                 else fastdrop.reference.dropout)
    expected = torch.from_numpy(reference(x32, 0.3, seed=21, stream=5, **kwargs)).to(torch.bfloat16)
    np.testing.assert_array_equal(bf16_bits(y), bf16_bits(expected))


def test_bfloat16_gradient_is_the_mask_times_the_scale_rounded_once():
    x = randn(3, 700, dtype=torch.bfloat16).requires_grad_()
    grad = randn(3, 700, dtype=torch.bfloat16, seed=2)
    fdt.dropout(x, 0.4, seed=8, stream=1).backward(grad)
    expected = torch.from_numpy(fastdrop.reference.dropout(
        grad.to(torch.float32).numpy(), 0.4, seed=8, stream=1)).to(torch.bfloat16)
    np.testing.assert_array_equal(bf16_bits(x.grad), bf16_bits(expected))


def test_tensor_subclass_goes_to_torch():
    class Tagged(torch.Tensor):
        pass

    x = randn(100).as_subclass(Tagged)
    assert type(fdt.dropout(x, 0.5, seed=1)) is Tagged


def test_parameters_and_torch_function_modes_take_the_kernels():
    x = torch.nn.Parameter(randn(100))
    expected = fastdrop.reference.dropout(x.detach().numpy(), 0.5, seed=1)
    assert_bit_equal(fdt.dropout(x, 0.5, seed=1).detach().numpy(), expected)
    with torch.device("cpu"):  # a TorchFunctionMode
        assert_bit_equal(fdt.dropout(x, 0.5, seed=1).detach().numpy(), expected)


P_MESSAGE = "dropout probability has to be between 0 and 1, but got"


@pytest.mark.parametrize("p", [-0.1, 1.5, float("inf")])
@pytest.mark.parametrize("name", ["dropout", "dropout1d", "dropout2d", "dropout3d",
                                  "alpha_dropout", "feature_alpha_dropout"])
def test_p_outside_unit_interval_is_torchs_value_error(name, p):
    for x in (randn(2, 3, 4, 5), torch.ones(2, 3, 4, 5, dtype=torch.complex64)):  # kernels, torch
        with pytest.raises(ValueError, match=P_MESSAGE) as ours:
            getattr(fdt, name)(x, p, True)
        with pytest.raises(ValueError) as theirs:
            getattr(torch.nn.functional, name)(x, p, True)
        assert str(ours.value) == str(theirs.value)


def test_nan_p_is_refused():
    with pytest.raises(ValueError, match=P_MESSAGE):
        fdt.dropout(randn(3), float("nan"))


@pytest.mark.parametrize("p", ["0.5", None, True])
def test_p_of_the_wrong_type_is_a_type_error(p):
    with pytest.raises(TypeError, match="p "):
        fdt.dropout(randn(3), p)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_bad_seed_and_stream_on_every_path(dtype):
    x = randn(8, dtype=dtype)
    with pytest.raises(ValueError, match="seed"):
        fdt.dropout(x, 0.5, seed=-1)
    with pytest.raises(ValueError, match="stream"):
        fdt.dropout(x, 0.5, seed=1, stream=1 << 64)
    with pytest.raises(TypeError, match="stream"):
        fdt.dropout(x, 0.5, seed=1, stream=1.5)


def test_input_must_be_a_tensor_with_torchs_message():
    with pytest.raises(TypeError) as ours:
        fdt.dropout(np.ones(3), 0.5)
    with pytest.raises(TypeError) as theirs:
        torch.nn.functional.dropout(np.ones(3), 0.5)
    assert str(ours.value) == str(theirs.value)


def outcome(call):
    """(exception type and text or None, warning texts) of a call."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            call()
            error = None
        except Exception as exc:  # noqa: BLE001 - compared with torch's
            error = (type(exc), str(exc))
    return error, [str(w.message) for w in caught]


@pytest.mark.parametrize("name", ["dropout1d", "dropout2d", "dropout3d", "feature_alpha_dropout",
                                  "dropout", "alpha_dropout"])
@pytest.mark.parametrize("dim", [0, 1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("training", [True, False])
def test_dimension_errors_and_warnings_are_torchs(name, dim, training):
    x = torch.ones((2,) * dim)
    ours = outcome(lambda: getattr(fdt, name)(x, 0.5, training))
    theirs = outcome(lambda: getattr(torch.nn.functional, name)(x, 0.5, training))
    assert ours == theirs


@pytest.mark.parametrize("name", ["dropout2d", "dropout3d"])
def test_warnings_point_at_the_caller(name):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        getattr(fdt, name)(torch.ones(2, 2, 2, 2, 2, 2), 0.5, False)
    assert caught and all(w.filename == __file__ for w in caught)


@pytest.mark.parametrize("name", ["dropout", "dropout1d", "dropout2d", "dropout3d",
                                  "alpha_dropout", "feature_alpha_dropout"])
@pytest.mark.parametrize("dim", [0, 1, 2, 3, 4, 5])
def test_eval_mode_is_the_identity_for_any_shape(name, dim):
    x = randn(*(3,) * dim)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "dropout1d" and dim not in (2, 3):
            return  # torch refuses these shapes in eval mode too (checked above)
        y = getattr(fdt, name)(x, 0.5, False)
        theirs = getattr(torch.nn.functional, name)(x, 0.5, False)
    assert torch.equal(y, x) and torch.equal(theirs, x)


def test_dropout2d_of_3d_input_drops_whole_rows_as_torch():
    with pytest.warns(UserWarning, match="interpreted as shape"):
        y = fdt.dropout2d(torch.ones(2, 3, 7), 0.5, seed=1)
    assert ((y == 0).all(dim=2) | (y == 2).all(dim=2)).all()


LAYOUTS = {
    "contiguous": lambda t: t,
    "channels_last": lambda t: t.contiguous(memory_format=torch.channels_last),
    "permuted": lambda t: t.permute(3, 1, 0, 2).contiguous().permute(2, 1, 3, 0),
    "sliced": lambda t: t[:, :, ::2],
    "transposed": lambda t: t.transpose(1, 3),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("name, kept", [("dropout", None), ("dropout2d", 2),
                                        ("alpha_dropout", None)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_output_layout_follows_the_input_and_values_follow_the_contiguous_copy(layout, name, kept,
                                                                              dtype):
    x = LAYOUTS[layout](randn(2, 5, 4, 3, dtype=dtype))
    y = getattr(fdt, name)(x, 0.4, True, seed=31, stream=2)
    y_contiguous = getattr(fdt, name)(x.contiguous(), 0.4, True, seed=31, stream=2)
    assert y.stride() == torch.empty_like(x).stride()  # preserve_format, as torch's dropout
    assert y.stride() == torch.nn.functional.dropout(x, 0.4).stride()
    assert torch.equal(y.contiguous().view(torch.int16 if dtype != torch.float32 else torch.int32),
                       y_contiguous.view(torch.int16 if dtype != torch.float32 else torch.int32))


@pytest.mark.parametrize("kernel, function", [("dropout", fdt.dropout),
                                              ("alpha_dropout", fdt.alpha_dropout)])
def test_kernels_work_on_the_tensors_memory(monkeypatch, kernel, function):
    seen = []
    original = getattr(fastdrop, kernel)

    def spy(x, *args, out=None, **kwargs):
        seen.append((x, out))
        return original(x, *args, out=out, **kwargs)

    monkeypatch.setattr(fastdrop, kernel, spy)
    x = randn(3, 1000).requires_grad_()
    y = function(x, 0.5, True, seed=1)
    (x_array, out_array), = seen
    assert x_array.ctypes.data == x.data_ptr() and out_array.ctypes.data == y.data_ptr()
