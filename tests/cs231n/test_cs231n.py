"""fastdrop.cs231n: the course's dropout_forward / dropout_backward, p = keep probability."""
import numpy as np
import pytest

import fastdrop
from fastdrop.cs231n import dropout_backward, dropout_forward


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """The course's centred-difference gradient of sum(f(x) * df) with respect to x."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        pos = f(x).copy()
        x[ix] = old - h
        neg = f(x).copy()
        x[ix] = old
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
        it.iternext()
    return grad


def rel_error(x, y):
    return np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y)))


def test_numerical_gradient_check_with_a_fixed_seed():
    rng = np.random.default_rng(231)
    x = rng.standard_normal((10, 10)) + 10
    dout = rng.standard_normal(x.shape)
    dropout_param = {"mode": "train", "p": 0.2, "seed": 123}
    out, cache = dropout_forward(x, dropout_param)
    dx = dropout_backward(dout, cache)
    dx_num = eval_numerical_gradient_array(lambda xx: dropout_forward(xx, dropout_param)[0], x, dout)
    assert np.count_nonzero(dx) > 0
    assert rel_error(dx, dx_num) < 1e-10


@pytest.mark.parametrize("p", [0.25, 0.4, 0.7])
def test_p_is_the_keep_probability(p):
    x = np.random.default_rng(0).standard_normal((500, 500)) + 10
    out, cache = dropout_forward(x, {"mode": "train", "p": p, "seed": 5})
    kept = out != 0
    assert abs(kept.mean() - p) < 0.005  # over 5 standard deviations
    np.testing.assert_allclose(out[kept], x[kept] / p, rtol=1e-15)
    assert abs(out.mean() - x.mean()) < 0.2  # inverted: the mean is kept (5 sd at p = 0.25)
    assert isinstance(cache[1], fastdrop.Mask) and cache[1].nbytes == x.size // 8


def test_mask_matches_fastdrop_for_the_seed():
    x = np.random.default_rng(1).standard_normal((7, 9))
    out, (_, mask) = dropout_forward(x, {"mode": "train", "p": 0.6, "seed": 42})
    np.testing.assert_array_equal(out, fastdrop.reference.dropout(x, keep_prob=0.6, seed=42))
    assert mask == fastdrop.sample_mask(x.shape, keep_prob=0.6, seed=42)


def test_seed_fixes_the_mask_and_no_seed_draws_a_fresh_one():
    x = np.ones((100, 100))
    with_seed = {"mode": "train", "p": 0.5, "seed": 7}
    assert np.array_equal(dropout_forward(x, with_seed)[0], dropout_forward(x, with_seed)[0])
    fresh = {"mode": "train", "p": 0.5}
    assert not np.array_equal(dropout_forward(x, fresh)[0], dropout_forward(x, fresh)[0])


def test_a_seed_leaves_the_global_numpy_state_untouched():
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    dropout_forward(np.ones(10), {"mode": "train", "p": 0.5, "seed": 3})
    assert np.array_equal(np.random.get_state()[1], before)


def test_without_a_seed_np_random_seed_repeats_the_run():
    # as the assignment's notebooks do: np.random.seed(231) at the top, then calls without 'seed'
    x = np.ones((40, 50))
    fresh = {"mode": "train", "p": 0.5}

    def run():
        np.random.seed(231)
        return [dropout_forward(x, fresh)[0] for _ in range(3)]

    first, again = run(), run()
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], first[1])
    np.random.seed(232)
    assert not np.array_equal(dropout_forward(x, fresh)[0], first[0])


def test_without_a_seed_the_key_is_one_draw_from_numpys_global_generator():
    x = np.random.default_rng(5).standard_normal((6, 7))
    np.random.seed(231)
    out, (_, mask) = dropout_forward(x, {"mode": "train", "p": 0.7})
    np.random.seed(231)
    key = int(np.random.randint(0, 1 << 64, dtype=np.uint64))
    np.testing.assert_array_equal(out, fastdrop.reference.dropout(x, keep_prob=0.7, seed=key))
    assert mask.seed == key


def test_test_mode_returns_x_and_passes_the_gradient():
    x = np.random.default_rng(2).standard_normal((5, 6))
    out, cache = dropout_forward(x, {"mode": "test", "p": 0.3})
    assert out is x
    dout = np.ones_like(x)
    assert dropout_backward(dout, cache) is dout


def test_backward_uses_the_stored_mask():
    x = np.random.default_rng(3).standard_normal((30, 40)).astype(np.float32)
    out, cache = dropout_forward(x, {"mode": "train", "p": 0.75})
    dout = np.random.default_rng(4).standard_normal(x.shape).astype(np.float32)
    dx = dropout_backward(dout, cache)
    assert dx.dtype == np.float32
    np.testing.assert_array_equal(dx, np.where(out != 0, dout * np.float32(1 / 0.75), 0))


@pytest.mark.parametrize("mode", ["Train", "eval", None, ""])
def test_bad_mode_is_a_value_error_naming_mode(mode):
    with pytest.raises(ValueError, match="mode"):
        dropout_forward(np.ones(3), {"mode": mode, "p": 0.5})


@pytest.mark.parametrize("p", [-0.1, 1.1, float("nan")])
def test_bad_p_is_a_value_error_naming_p(p):
    with pytest.raises(ValueError, match=r"\['p'\]"):
        dropout_forward(np.ones(3), {"mode": "train", "p": p})


def test_missing_keys_and_wrong_types():
    with pytest.raises(ValueError, match="'mode'"):
        dropout_forward(np.ones(3), {"p": 0.5})
    with pytest.raises(ValueError, match="'p'"):
        dropout_forward(np.ones(3), {"mode": "train"})
    with pytest.raises(TypeError, match="dropout_param"):
        dropout_forward(np.ones(3), 0.5)
    with pytest.raises(TypeError, match=r"\['p'\]"):
        dropout_forward(np.ones(3), {"mode": "train", "p": "0.5"})
