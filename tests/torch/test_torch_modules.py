"""fastdrop.torch modules: torch's interface; without a seed, torch's generator; with one, a new
stream per step, key and step in the rng_state buffer (state_dict)."""
import copy
import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fastdrop  # noqa: E402
import fastdrop.torch as fdt  # noqa: E402
from conftest import assert_bit_equal, run_python  # noqa: E402

MODULES = [
    (fdt.Dropout, torch.nn.Dropout, (4, 6, 5), None),
    (fdt.Dropout1d, torch.nn.Dropout1d, (4, 6, 5), (4, 6, 1)),
    (fdt.Dropout2d, torch.nn.Dropout2d, (4, 6, 3, 5), (4, 6, 1, 1)),
    (fdt.Dropout3d, torch.nn.Dropout3d, (4, 6, 2, 3, 5), (4, 6, 1, 1, 1)),
    (fdt.AlphaDropout, torch.nn.AlphaDropout, (4, 6, 5), None),
    (fdt.FeatureAlphaDropout, torch.nn.FeatureAlphaDropout, (4, 6, 5), (4, 6, 1)),
]
IDS = [m[0].__name__ for m in MODULES]


def reference_output(module, x, stream, noise_shape):
    alpha = isinstance(module, (fdt.AlphaDropout, fdt.FeatureAlphaDropout))
    function = fastdrop.reference.alpha_dropout if alpha else fastdrop.reference.dropout
    return function(x.numpy(), module.p, seed=module.seed, stream=stream, noise_shape=noise_shape)


@pytest.mark.parametrize("cls, torch_cls, shape, noise_shape", MODULES, ids=IDS)
def test_module_is_the_torch_module_with_a_new_stream_per_step(cls, torch_cls, shape, noise_shape):
    module = cls(0.4, seed=2024)
    assert isinstance(module, torch_cls)
    x = torch.randn(*shape)
    outputs = []
    for step in range(3):
        assert module.step == step
        y = module(x)
        assert_bit_equal(y.numpy(), reference_output(module, x, step, noise_shape))
        outputs.append(y)
    assert not torch.equal(outputs[0], outputs[1]) and not torch.equal(outputs[1], outputs[2])


@pytest.mark.parametrize("cls, torch_cls, shape, noise_shape", MODULES, ids=IDS)
def test_eval_returns_the_input_and_keeps_the_step(cls, torch_cls, shape, noise_shape):
    module = cls(0.5, seed=1)
    module(torch.randn(*shape))
    module.eval()
    x = torch.randn(*shape)
    assert module(x) is x
    assert module.step == 1
    module.train()
    assert_bit_equal(module(x).numpy(), reference_output(module, x, 1, noise_shape))


@pytest.mark.parametrize("cls, torch_cls, shape, noise_shape", MODULES, ids=IDS)
def test_inplace_module(cls, torch_cls, shape, noise_shape):
    module = cls(0.3, inplace=True, seed=8)
    x = torch.randn(*shape)
    expected = reference_output(module, x, 0, noise_shape)
    assert module(x) is x
    assert_bit_equal(x.numpy(), expected)


@pytest.mark.parametrize("cls, torch_cls, shape, noise_shape", MODULES, ids=IDS)
def test_state_dict_resumes_the_mask_sequence(cls, torch_cls, shape, noise_shape):
    model = torch.nn.Sequential(torch.nn.Identity(), cls(0.5, seed=11))
    x = torch.randn(*shape)
    for _ in range(3):
        model(x)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    expected = [model(x) for _ in range(3)]

    restored = torch.nn.Sequential(torch.nn.Identity(), cls(0.5, seed=12))
    assert restored[1].seed != model[1].seed
    buffer.seek(0)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert (restored[1].seed, restored[1].step) == (model[1].seed, 3)
    for y in expected:
        assert torch.equal(restored(x), y)


def test_state_dict_entry():
    module = fdt.Dropout(0.5, seed=(1 << 64) - 1)
    module(torch.ones(3))
    state = module.state_dict()
    assert list(state) == ["rng_state"]
    assert state["rng_state"].dtype == torch.int64
    assert state["rng_state"].tolist() == [(1 << 32) - 1, (1 << 32) - 1, 1, 0]
    assert (module.seed, module.step) == ((1 << 64) - 1, 1)


def test_module_without_seed_has_no_state():
    module = fdt.Dropout(0.5)
    module(torch.ones(3))
    assert module.state_dict() == {} and module.seed is None and module.step is None


def test_checkpoint_of_fastdrop_0_2_extra_state_loads():
    model = fdt.Dropout(0.5, seed=1)
    model.load_state_dict({"_extra_state": {"seed": 77, "step": 5}})
    assert (model.seed, model.step) == (77, 5)


def test_checkpoint_of_torch_nn_dropout_loads():
    saved = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Dropout(0.2)).state_dict()
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), fdt.Dropout(0.2, seed=5))
    model[1](torch.ones(4))
    model.load_state_dict(saved)  # strict: the missing extra state keeps the module's own
    assert (model[1].seed, model[1].step) == (5, 1)
    assert torch.equal(model[0].weight, saved["0.weight"])


def test_bad_rng_state_is_torchs_size_mismatch():
    with pytest.raises(RuntimeError, match="size mismatch for rng_state"):
        fdt.Dropout(seed=1).load_state_dict({"rng_state": torch.zeros(3, dtype=torch.int64)})


def test_seed_none_follows_torch_manual_seed():
    x = torch.ones(500)
    module = fdt.Dropout(0.5)

    def run():
        return [module(x) for _ in range(2)]

    torch.manual_seed(0)
    first = run()
    torch.manual_seed(0)
    again = run()
    torch.manual_seed(1)
    other = run()
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], other[0])


def test_generator_seed_draws_the_key_once():
    a = fdt.Dropout(seed=torch.Generator().manual_seed(3))
    b = fdt.Dropout(seed=torch.Generator().manual_seed(3))
    assert a.seed == b.seed is not None
    x = torch.ones(300)
    assert torch.equal(a(x), b(x))


@pytest.mark.parametrize("seed", [-1, 1 << 64])
def test_bad_seed(seed):
    with pytest.raises(ValueError, match="seed"):
        fdt.Dropout(0.5, seed=seed)


def test_numpy_generator_seed_is_taken_as_fastdrop_takes_it():
    a = fdt.Dropout(seed=np.random.default_rng(3))
    b = fdt.Dropout(seed=np.random.default_rng(3))
    assert a.seed == b.seed


@pytest.mark.parametrize("p", [-0.01, 1.01])
@pytest.mark.parametrize("cls", [m[0] for m in MODULES], ids=IDS)
def test_p_checked_at_construction(cls, p):
    with pytest.raises(ValueError) as ours:
        cls(p)
    with pytest.raises(ValueError) as theirs:
        cls.__mro__[2](p)  # the torch module
    assert str(ours.value) == str(theirs.value)


def test_gradient_through_the_module():
    module = fdt.Dropout(0.25, seed=31)
    x = torch.randn(40, 30, dtype=torch.float64, requires_grad=True)
    module(x).backward(torch.ones_like(x))
    expected = fastdrop.reference.dropout(np.ones((40, 30)), 0.25, seed=31, stream=0)
    assert_bit_equal(x.grad.numpy(), expected)


def test_channel_modules_drop_whole_channels():
    y = fdt.Dropout2d(0.5, seed=4)(torch.ones(8, 16, 3, 3))
    per_channel = y.reshape(8, 16, 9)
    assert ((per_channel == 0).all(dim=2) | (per_channel == 2).all(dim=2)).all()
    assert 0 < (per_channel[:, :, 0] == 0).sum() < 8 * 16


def test_alpha_dropout_keeps_mean_and_variance():
    y = fdt.AlphaDropout(0.2, seed=6)(torch.randn(400000, generator=torch.Generator().manual_seed(1)))
    assert abs(y.mean().item()) < 0.01
    assert abs(y.std().item() - 1.0) < 0.01


class Tagged(torch.Tensor):
    """A tensor subclass: torch's own dropout takes it."""


def test_module_on_a_tensor_torch_keeps_counts_the_step():
    module = fdt.Dropout2d(0.5, seed=1)
    y = module(torch.ones(4, 8, 2, 2).as_subclass(Tagged))
    assert type(y) is Tagged and module.step == 1
    per_channel = y.reshape(4, 8, 4)
    assert ((per_channel == 0).all(dim=2) | (per_channel == 2).all(dim=2)).all()


@pytest.mark.parametrize("cls, torch_cls, shape, noise_shape", MODULES, ids=IDS)
def test_rng_functions_repeat_masks_as_with_torch(cls, torch_cls, shape, noise_shape):
    # without a seed the masks follow torch's generator state, as torch's modules' do
    module = cls(0.5)
    x = torch.randn(*shape)
    with torch.random.fork_rng():
        torch.manual_seed(5)
        first = module(x)
    with torch.random.fork_rng():
        torch.manual_seed(5)
        assert torch.equal(module(x), first)
    state = torch.get_rng_state()
    a = module(x)
    torch.set_rng_state(state)
    assert torch.equal(module(x), a)
    from torch.testing._internal.common_utils import freeze_rng_state
    with freeze_rng_state():
        b = module(x)
    with freeze_rng_state():
        assert torch.equal(module(x), b)


def test_checkpoint_recomputation_repeats_the_mask():
    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 16)
    drop = fdt.Dropout(0.5)
    x = torch.randn(8, 16, requires_grad=True)

    def block(t):
        return drop(layer(t)).sin()

    torch.manual_seed(3)
    block(x).sum().backward()
    plain = x.grad.clone()
    x.grad = None
    torch.manual_seed(3)
    torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False).sum().backward()
    assert torch.equal(x.grad, plain)  # the recomputed forward drew the same mask


def test_repr_and_deepcopy():
    module = fdt.Dropout(0.1, seed=3)
    module(torch.ones(2))
    assert repr(module) == "Dropout(p=0.1, inplace=False, seed=3, step=1)"
    clone = copy.deepcopy(module)
    x = torch.ones(100)
    assert torch.equal(clone(x), module(x))


def test_import_without_torch_says_how_to_install():
    code = ("import sys; sys.modules['torch'] = None\n"
            "try:\n    import fastdrop.torch\n"
            "except ImportError as exc:\n    print(exc)\n")
    result = run_python(code, check=True)
    assert 'pip install "fastdrop[torch]"' in result.stdout
