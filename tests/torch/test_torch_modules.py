"""fastdrop.torch modules: torch's interface, a new stream per step, seed and step in state_dict."""
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
    model = torch.nn.Sequential(torch.nn.Identity(), cls(0.5))
    x = torch.randn(*shape)
    for _ in range(3):
        model(x)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    expected = [model(x) for _ in range(3)]

    restored = torch.nn.Sequential(torch.nn.Identity(), cls(0.5))
    assert restored[1].seed != model[1].seed
    buffer.seek(0)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert (restored[1].seed, restored[1].step) == (model[1].seed, 3)
    for y in expected:
        assert torch.equal(restored(x), y)


def test_state_dict_entry():
    module = fdt.Dropout(0.5, seed=(1 << 64) - 1)
    module(torch.ones(3))
    assert module.state_dict() == {"_extra_state": {"seed": (1 << 64) - 1, "step": 1}}


def test_checkpoint_of_torch_nn_dropout_loads():
    saved = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Dropout(0.2)).state_dict()
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), fdt.Dropout(0.2, seed=5))
    model[1](torch.ones(4))
    model.load_state_dict(saved)  # strict: the missing extra state keeps the module's own
    assert (model[1].seed, model[1].step) == (5, 1)
    assert torch.equal(model[0].weight, saved["0.weight"])


@pytest.mark.parametrize("state, match", [
    ({"seed": 1}, "'seed' and 'step'"), ({"seed": -1, "step": 0}, "'seed'"),
    ({"seed": 1, "step": 1.0}, "'step'"), ([1, 2], "'seed' and 'step'")])
def test_bad_extra_state(state, match):
    with pytest.raises(ValueError, match=match):
        fdt.Dropout().load_state_dict({"_extra_state": state})


def test_seed_none_follows_torch_manual_seed():
    x = torch.ones(500)

    def run():
        module = fdt.Dropout(0.5)
        return [module(x) for _ in range(2)]

    torch.manual_seed(0)
    first = run()
    torch.manual_seed(0)
    again = run()
    torch.manual_seed(1)
    other = run()
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], other[0])


def test_modules_built_in_a_row_get_different_keys():
    torch.manual_seed(0)
    assert fdt.Dropout().seed != fdt.Dropout().seed


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
    with pytest.raises(ValueError, match="probability p"):
        cls(p)


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


def test_bfloat16_module_falls_back_and_counts_the_step():
    module = fdt.Dropout2d(0.5, seed=1)
    y = module(torch.ones(4, 8, 2, 2, dtype=torch.bfloat16))
    assert y.dtype == torch.bfloat16 and module.step == 1
    per_channel = y.reshape(4, 8, 4)
    assert ((per_channel == 0).all(dim=2) | (per_channel == 2).all(dim=2)).all()


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
