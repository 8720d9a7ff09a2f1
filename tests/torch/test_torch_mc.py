"""fastdrop.torch.mc_predict: masks by (row, pass), bits independent of chunk and row batching,
the model left as it was."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fastdrop  # noqa: E402
import fastdrop.torch as fdt  # noqa: E402
from conftest import assert_bit_equal  # noqa: E402


def make_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(12, 40), torch.nn.BatchNorm1d(40), torch.nn.ReLU(),
        fdt.Dropout(0.5, seed=3), torch.nn.Linear(40, 24), torch.nn.ReLU(),
        torch.nn.Dropout(0.3), torch.nn.Linear(24, 5))


X = torch.randn(37, 12, generator=torch.Generator().manual_seed(1))
T = 7


@pytest.fixture(scope="module")
def whole():
    return fdt.mc_predict(make_model(), X, T, seed=11)


@pytest.mark.parametrize("chunk", [1, 5, 128, 129, 10_000])
def test_any_chunk_gives_the_same_bits(whole, chunk):
    result = fdt.mc_predict(make_model(), X, T, seed=11, chunk=chunk)
    assert torch.equal(result.samples, whole.samples)
    assert torch.equal(result.mean, whole.mean)
    assert torch.equal(result.mutual_information, whole.mutual_information)


@pytest.mark.parametrize("cuts", [(1,), (10,), (5, 17, 36)])
def test_rows_predicted_in_blocks_get_the_bits_of_one_call(whole, cuts):
    bounds = (0,) + cuts + (len(X),)
    parts = [fdt.mc_predict(make_model(), X[a:b], T, seed=11, row_offset=a)
             for a, b in zip(bounds, bounds[1:])]
    assert torch.equal(torch.cat([p.samples for p in parts], dim=1), whole.samples)
    for name in ("mean", "predictive_entropy", "expected_entropy", "mutual_information"):
        assert torch.equal(torch.cat([getattr(p, name) for p in parts]), getattr(whole, name))


def test_passes_differ_and_the_seed_fixes_them(whole):
    assert whole.samples.shape == (T, len(X), 5) and whole.seed == 11
    assert not torch.equal(whole.samples[0], whole.samples[1])
    other = fdt.mc_predict(make_model(), X, T, seed=12)
    assert not torch.equal(other.samples, whole.samples)


@pytest.mark.parametrize("p", [0.25, 0.5])
def test_sample_masks_are_fastdrops_by_row_and_pass(p):
    rows, units = 9, 13
    model = torch.nn.Sequential(torch.nn.Identity(), fdt.Dropout(p), torch.nn.Dropout(p))
    result = fdt.mc_predict(model, torch.ones(rows, units, dtype=torch.float64), T, seed=4,
                            tile=16)
    for r in range(rows):
        for t in range(T):
            g = r * T + t
            first = fastdrop.reference.dropout(np.ones(units), p, seed=4, stream=0,
                                               offset=g * units)
            expected = fastdrop.reference.dropout(first, p, seed=4, stream=1, offset=g * units)
            assert_bit_equal(result.samples[t, r].numpy(), expected)


def test_summaries_are_fastdrop_theorys_formulas(whole):
    p = torch.softmax(whole.samples.double(), dim=-1).numpy()
    mean = p.mean(axis=0)
    predictive = -(mean * np.log(mean)).sum(axis=-1)
    expected = -(p * np.log(p)).sum(axis=-1).mean(axis=0)
    np.testing.assert_allclose(whole.mean.numpy(), mean, rtol=1e-12)
    np.testing.assert_allclose(whole.predictive_entropy.numpy(), predictive, rtol=1e-12)
    np.testing.assert_allclose(whole.expected_entropy.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(whole.mutual_information.numpy(),
                               np.maximum(predictive - expected, 0), atol=1e-12)
    assert (whole.mutual_information >= 0).all()


def test_model_flags_state_threads_and_generator_are_left_as_they_were():
    model = make_model()
    model.train()
    model[1].eval()  # a mixed set of flags
    model[3](torch.ones(2, 40))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [m.training for m in model.modules()]
    threads = torch.get_num_threads()
    generator = torch.get_rng_state()
    fdt.mc_predict(model, X, 3, seed=1, threads=1)
    assert [m.training for m in model.modules()] == flags
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.get_rng_state(), generator)
    assert "forward" not in model[3].__dict__ and "forward" not in model[6].__dict__


def test_without_a_seed_the_key_comes_from_torchs_generator():
    torch.manual_seed(8)
    a = fdt.mc_predict(make_model(), X, 2)
    torch.manual_seed(8)
    b = fdt.mc_predict(make_model(), X, 2)
    assert a.seed == b.seed and torch.equal(a.samples, b.samples)


def test_bad_arguments():
    with pytest.raises(ValueError, match="T must be at least 1"):
        fdt.mc_predict(make_model(), X, 0)
    with pytest.raises(ValueError, match="no dropout module"):
        fdt.mc_predict(torch.nn.Linear(12, 2), X, 2)
    with pytest.raises(TypeError, match="CPU tensors of float16"):
        fdt.mc_predict(torch.nn.Sequential(fdt.Dropout()), torch.ones(3, 2, dtype=torch.int64), 2)
    with pytest.raises(ValueError, match="row_offset"):
        fdt.mc_predict(make_model(), X, 2, row_offset=-1)
