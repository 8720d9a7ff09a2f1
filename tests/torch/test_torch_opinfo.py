"""What PyTorch's own dropout tests check, against fastdrop.torch.

Two sources: the OpInfos of torch.testing._internal (the sample inputs and the gradient
checks that PyTorch's test_ops / test_ops_gradients / test_ops_fwd_gradients run for the
dropout functions, with the same seeding wrapper), and the properties, cases and
tolerances of PyTorch's test/nn/test_dropout.py.
"""
import itertools

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")  # torch.testing._internal needs it

from torch.testing._internal.common_methods_invocations import op_db  # noqa: E402
from torch.testing._internal.common_methods_invocations import wrapper_set_seed  # noqa: E402
from torch.testing._internal.common_utils import freeze_rng_state  # noqa: E402
from torch.testing._internal.common_utils import gradcheck, gradgradcheck  # noqa: E402

import fastdrop.torch as fdt  # noqa: E402

FUNCTIONS = {"nn.functional.dropout": fdt.dropout, "nn.functional.dropout2d": fdt.dropout2d,
             "nn.functional.dropout3d": fdt.dropout3d,
             "nn.functional.alpha_dropout": fdt.alpha_dropout,
             "nn.functional.feature_alpha_dropout": fdt.feature_alpha_dropout}
OPINFOS = [op for op in op_db if op.name in FUNCTIONS]
OPINFO_IDS = [f"{op.name}.{op.variant_test_name}".rstrip(".") for op in OPINFOS]


def ours(opinfo):
    """fastdrop's function in the OpInfo's own seeding wrapper (as its op is)."""
    function = FUNCTIONS[opinfo.name]
    return lambda input, *args, **kwargs: wrapper_set_seed(function, input, *args, **kwargs)


def samples(opinfo, dtype, requires_grad):
    return list(opinfo.sample_inputs("cpu", dtype, requires_grad=requires_grad))


def bytes_of(t):
    return t.contiguous().reshape(-1).view(torch.uint8)


def test_every_dropout_opinfo_is_covered():
    assert {op.name for op in OPINFOS} == set(FUNCTIONS)


@pytest.mark.parametrize("opinfo", OPINFOS, ids=OPINFO_IDS)
def test_gradients_as_test_ops_gradients(opinfo):
    function = ours(opinfo)
    # PyTorch's test_ops_fwd_gradients skips forward-mode AD of this variant for torch's own
    # function; its batched forward gradient re-runs the call inside the legacy vmap, which
    # refuses the random draw of the key (torch.randint)
    batched_forward = opinfo.check_batched_forward_grad and opinfo.variant_test_name != "with_train"
    for sample in samples(opinfo, torch.float64, True):
        def run(t, sample=sample):
            return function(t, *sample.args, **sample.kwargs)
        assert gradcheck(run, (sample.input,), check_batched_grad=opinfo.check_batched_grad,
                         check_forward_ad=opinfo.supports_forward_ad,
                         check_batched_forward_grad=batched_forward)
        assert gradgradcheck(run, (sample.input,),
                             check_batched_grad=opinfo.check_batched_gradgrad,
                             check_fwd_over_rev=opinfo.supports_fwgrad_bwgrad)

        def run_inplace(t, sample=sample):  # test_inplace_grad: the in-place variant on a copy
            return function(t.clone(), *sample.args, inplace=True, **sample.kwargs)
        assert gradcheck(run_inplace, (sample.input,), check_forward_ad=opinfo.supports_forward_ad,
                         check_batched_grad=opinfo.check_batched_grad,
                         check_batched_forward_grad=batched_forward)
        assert gradgradcheck(run_inplace, (sample.input,),
                             check_batched_grad=opinfo.check_batched_gradgrad)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("opinfo", OPINFOS, ids=OPINFO_IDS)
def test_outputs_as_test_ops(opinfo, dtype):
    """Shape, dtype and layout as torch's; the in-place variant writes the functional result;
    a non-contiguous sample gives the result of its contiguous copy; eval is the identity."""
    function = ours(opinfo)
    for sample in samples(opinfo, dtype, False):
        x = sample.input
        out = function(x, *sample.args, **sample.kwargs)
        theirs = opinfo.op(x, *sample.args, **sample.kwargs)
        assert out.shape == theirs.shape and out.dtype == theirs.dtype
        assert out.stride() == theirs.stride()
        if not sample.kwargs.get("training", True) or sample.kwargs.get("p") == 0.0:
            assert torch.equal(out, x)
        in_place = x.clone()
        result = function(in_place, *sample.args, inplace=True, **sample.kwargs)
        assert result is in_place and torch.equal(bytes_of(in_place), bytes_of(out))
        strided = torch.empty(x.shape + (2,), dtype=dtype)[..., 0]
        strided.copy_(x)
        assert torch.equal(bytes_of(function(strided, *sample.args, **sample.kwargs)),
                           bytes_of(out))


# -- test/nn/test_dropout.py's properties ----------------------------------------------------

def mean_and_grad_check(cls, x, memory_format=torch.contiguous_format):
    """_test_dropout: input filled with 1 - p, p = 0.2; mean within 0.05, layout kept."""
    p = 0.2
    x = x.fill_(1 - p)
    for inplace in (False, True):
        leaf = x.clone(memory_format=memory_format).requires_grad_()
        output = cls(p, inplace)(leaf + 0 if inplace else leaf)
        assert output.is_contiguous(memory_format=memory_format)
        assert abs(output.detach().mean() - (1 - p)) < 0.05
        output.backward(x)
        assert leaf.grad.is_contiguous(memory_format=memory_format)
        assert abs(leaf.grad.mean() - (1 - p)) < 0.05
    for inplace in (True, False):
        assert torch.equal(cls(p, inplace).eval()(x), x)
    repr(cls(p))


def discontiguous_check(cls, memory_format=torch.contiguous_format):
    """_test_dropout_discontiguous: p 0 and 1e-10 keep the values; p > 0 gives the format."""
    for p in (0, 1e-10):
        inp = torch.ones(2, 3, 3, 3)
        discontiguous = torch.empty(2, 3, 3, 6, memory_format=memory_format)[..., ::2]
        discontiguous.copy_(inp)
        out = cls(p=p)(discontiguous)
        if p != 0:
            assert out.is_contiguous(memory_format=memory_format)
        assert torch.equal(out, discontiguous)


def invert(perm):
    return tuple(perm.index(i) for i in range(4))


@pytest.mark.parametrize("cls", [fdt.Dropout, fdt.Dropout2d, fdt.Dropout3d])
def test_mean_gradient_layout_and_eval(cls):
    torch.manual_seed(0)
    shapes = {fdt.Dropout: (1000,), fdt.Dropout2d: (1000, 3, 2, 4),
              fdt.Dropout3d: (1000, 2, 2, 3, 2)}
    mean_and_grad_check(cls, torch.empty(shapes[cls]))
    if cls is fdt.Dropout:
        mean_and_grad_check(cls, torch.empty(1000).bfloat16())
    if cls is fdt.Dropout2d:
        mean_and_grad_check(cls, torch.empty(shapes[cls]), torch.channels_last)
    discontiguous_check(cls)
    discontiguous_check(cls, torch.channels_last)


def test_dropout1d_mean_and_dimension_errors():
    torch.manual_seed(0)
    # torch's case has 100-225 channels: its 0.05 bound is then 1.3-1.9 standard deviations,
    # and torch's own dropout misses it on some seeds; 30 times the rows keep the bound and
    # make a miss a tail event (about 7 standard deviations)
    mean_and_grad_check(fdt.Dropout1d, torch.empty(12 * 30, 13, 14, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="Expected 2D or 3D input, but received a 4D input"):
        fdt.Dropout1d(p=0.5)(torch.rand(1, 2, 2, 2))
    with pytest.raises(RuntimeError, match="Expected 2D or 3D input, but received a 1D input"):
        fdt.Dropout1d(p=0.5)(torch.rand(2))


def test_stride_and_mean_over_all_96_layouts():
    """_test_dropout_stride_mean_preserve: every permutation and shift keeps its stride order;
    p = 1e-10 keeps the values, p > 0 changes them, the mean within 0.5 (rtol 0.5)."""
    torch.manual_seed(0)
    inp = torch.ones(2, 3, 4, 5)
    means = []
    for perm in itertools.permutations(range(4)):
        for shift in ((0, 0), (1, 0), (0, 1), (1, 1)):
            x = inp.permute(perm).contiguous().permute(invert(perm))[shift[0]:, shift[1]:]
            for p in (1e-10, 0.3, 0.5, 0.7):
                out = fdt.Dropout(p=p)(x)
                assert out.permute(perm).is_contiguous()
                if p == 1e-10:
                    assert torch.equal(out, x)
                else:
                    assert not torch.equal(out, x)
                    means.append(out.mean())
    # each mean within torch's tolerance; on 40-120 elements a single one may miss it by
    # chance (torch's own dropout misses it for some seeds), their average may not
    means = torch.stack(means)
    assert (torch.abs(means - 1) <= 0.5 + 0.5 * means).float().mean() > 0.98
    assert abs(means.mean() - 1) < 0.05


@pytest.mark.parametrize("cls, shape", [(fdt.Dropout1d, (50, 2)), (fdt.Dropout3d, (50, 2, 2, 2))])
@pytest.mark.parametrize("inplace", [False, True])
def test_no_batch_dim_equals_a_batch_of_one(cls, shape, inplace):
    """_test_dropoutNd_no_batch: under freeze_rng_state, (C, ...) equals (1, C, ...)."""
    x = torch.rand(shape)
    module = cls(p=0.5, inplace=inplace)
    with freeze_rng_state():
        unbatched = module(x.clone())
    with freeze_rng_state():
        batched = module(x.clone().unsqueeze(0)).squeeze(0)
    assert torch.equal(unbatched, batched)


@pytest.mark.parametrize("cls, shape", [(fdt.Dropout1d, (10, 4, 2)), (fdt.Dropout2d, (10, 4, 2, 2)),
                                        (fdt.Dropout3d, (10, 4, 2, 2, 2))])
@pytest.mark.parametrize("inplace", [False, True])
def test_whole_channels_dropped(cls, shape, inplace):
    result = cls(p=0.5, inplace=inplace)(torch.ones(shape))
    per_channel = result.reshape(shape[0], shape[1], -1).count_nonzero(dim=2)
    assert ((per_channel == 0) | (per_channel == result[0, 0].numel())).all()


def test_dimension_warnings():
    with pytest.warns(UserWarning, match="Received a 5-D input to dropout2d"):
        fdt.Dropout2d(p=0.5)(torch.rand(1, 2, 2, 2, 2))
    with pytest.warns(UserWarning, match="Received a 2-D input to dropout2d"):
        fdt.Dropout2d(p=0.5)(torch.rand(1, 2))
    with pytest.warns(UserWarning, match="assuming that channel-wise 1D dropout behavior"):
        fdt.Dropout2d(p=0.5)(torch.rand(1, 2, 2))
    with pytest.warns(UserWarning, match="Received a 6-D input to dropout3d"):
        fdt.Dropout3d(p=0.5)(torch.rand(1, 2, 2, 2, 2, 2))
    with pytest.warns(UserWarning, match="Received a 3-D input to dropout3d"):
        fdt.Dropout3d(p=0.5)(torch.rand(1, 2, 2))


@pytest.mark.parametrize("cls, shapes", [
    (fdt.AlphaDropout, [(5000,)]),
    (fdt.FeatureAlphaDropout, [(1000, 3, 2, 4, 5), (50, 20, 64, 64)])])
def test_alpha_dropout_keeps_mean_and_std(cls, shapes):
    """_test_alpha_dropout: mean and std within 0.1 for p 0.2, 0.5, 0.8; backward runs."""
    torch.manual_seed(0)
    for shape in shapes:
        x = torch.randn(shape)
        for p in (0.2, 0.5, 0.8):
            leaf = x.clone().requires_grad_()
            output = cls(p)(leaf)
            assert abs(output.detach().mean() - x.mean()) < 0.1
            assert abs(output.detach().std() - x.std()) < 0.1
            output.backward(x)


def test_invalid_p_and_empty_input():
    for cls in (fdt.Dropout, fdt.Dropout1d, fdt.Dropout2d, fdt.Dropout3d):
        for p in (-0.1, 1.1):
            with pytest.raises(ValueError):
                cls(p)
    for p in (-0.1, 1.1):
        with pytest.raises(ValueError):
            fdt.dropout(torch.ones(1), p)
    x = torch.tensor([])
    assert fdt.dropout(x).size() == x.size()
