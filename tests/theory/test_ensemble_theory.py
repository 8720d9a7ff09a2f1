"""The seed's theory checked on explicit ensembles (no trained model needed).

Masks and their probabilities, NWGM vs arithmetic mean, Baldi & Sadowski's sigmoid
example, expectation matching through an affine map, and the marginalised dropout
objective of linear regression (Srivastava et al. 2014, section 9.1).
"""
import math

import numpy as np
import pytest

import fastdrop
from fastdrop.theory import (MAX_ENUMERATED_UNITS, arithmetic_mean, enumerate_masks,
                             geometric_mean, marginalized_linear_loss, nwgm)


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(s):
    return 1.0 / (1.0 + np.exp(-s))


# -- enumerate_masks ---------------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 3, 7])
def test_masks_are_all_distinct_patterns_in_bit_order(n):
    masks, probs = enumerate_masks(n, 0.5)
    assert masks.shape == (2**n, n) and masks.dtype == bool
    assert len({row.tobytes() for row in masks}) == 2**n
    for k in range(2**n):  # row k keeps unit i iff bit i of k is set
        assert [bool((k >> i) & 1) for i in range(n)] == masks[k].tolist()
    np.testing.assert_array_equal(probs, np.full(2**n, 0.5**n))


def test_probabilities_per_unit_match_the_product_formula():
    keep = np.array([0.9, 0.2, 0.5, 0.65, 1.0, 0.0])
    masks, probs = enumerate_masks(keep.size, keep)
    expected = np.array([np.prod(np.where(m, keep, 1 - keep)) for m in masks])
    np.testing.assert_allclose(probs, expected, rtol=1e-15, atol=0)
    assert math.isclose(probs.sum(), 1.0, rel_tol=1e-14)
    # keep 1 and keep 0 units make every mask that violates them impossible
    assert np.all(probs[~masks[:, 4] | masks[:, 5]] == 0)


def test_mask_probabilities_match_sampled_frequencies():
    keep = np.array([0.8, 0.3, 0.5])
    masks, probs = enumerate_masks(3, keep)
    draws = 200_000
    sampled = np.stack([fastdrop.sample_mask((draws,), keep_prob=p, seed=11, stream=i).to_bool()
                        for i, p in enumerate(keep)], axis=1)
    index = sampled.astype(np.int64) @ (1 << np.arange(3))
    freq = np.bincount(index, minlength=8) / draws
    sigma = np.sqrt(probs * (1 - probs) / draws)
    assert np.all(np.abs(freq - probs) < 5 * sigma + 1e-12)


def test_too_many_units_is_a_clear_error():
    enumerate_masks(MAX_ENUMERATED_UNITS - 10, 0.5)
    with pytest.raises(ValueError, match=r"n <= 24.*mc_predict"):
        enumerate_masks(25, 0.5)


@pytest.mark.parametrize("n, keep, error, match", [
    (2.0, 0.5, TypeError, "n must be an int"),
    (True, 0.5, TypeError, "n must be an int"),
    (-1, 0.5, ValueError, "n must be at least 0"),
    (3, 1.5, ValueError, r"keep_prob must lie in \[0, 1\]"),
    (3, float("nan"), ValueError, r"keep_prob must lie in \[0, 1\]"),
    (3, [0.5, 0.5], ValueError, "one value per unit"),
    (3, "half", TypeError, "keep_prob must be a number"),
])
def test_bad_arguments(n, keep, error, match):
    with pytest.raises(error, match=match):
        enumerate_masks(n, keep)


# -- nwgm and arithmetic_mean ------------------------------------------------------------

def test_means_on_hand_computed_members():
    P = np.array([[[0.5, 0.5]], [[0.9, 0.1]], [[0.2, 0.8]]])
    w = np.array([0.5, 0.25, 0.25])
    np.testing.assert_allclose(arithmetic_mean(P, w), [[0.525, 0.475]], rtol=1e-15)
    g = np.array([0.5**0.5 * 0.9**0.25 * 0.2**0.25, 0.5**0.5 * 0.1**0.25 * 0.8**0.25])
    np.testing.assert_allclose(geometric_mean(P, w), [g], rtol=1e-14)
    np.testing.assert_allclose(nwgm(P, w), [g / g.sum()], rtol=1e-14)
    # weights are normalised, so scaling them changes nothing
    np.testing.assert_allclose(nwgm(P, 8 * w), nwgm(P, w), rtol=1e-15)


def test_nwgm_does_not_underflow_on_tiny_probabilities():
    # 3000 members each giving 1e-200 to class 0: the product underflows, the log mean does not
    P = np.tile(np.array([[[1e-200, 1 - 1e-200]]]), (3000, 1, 1))
    out = nwgm(P, np.ones(3000))
    np.testing.assert_allclose(out, [[1e-200, 1.0]], rtol=1e-9)


def test_zero_probability_and_zero_weight_members():
    P = np.array([[[0.0, 1.0]], [[0.5, 0.5]]])
    assert nwgm(P, [0.5, 0.5])[0, 0] == 0.0  # one member that rules a class out vetoes it
    np.testing.assert_allclose(nwgm(P, [0.0, 1.0]), [[0.5, 0.5]])  # a weight-0 member takes no part


@pytest.mark.parametrize("P, w, error, match", [
    (np.ones((2, 3)), [0.5, 0.5], ValueError, r"P must have shape \(members, batch, classes\)"),
    (np.full((2, 1, 2), 0.5), [1.0], ValueError, r"weights must have shape \(2,\)"),
    (np.full((2, 1, 2), 0.5), [1.0, -1.0], ValueError, "weights must be finite and >= 0"),
    (np.full((2, 1, 2), 0.5), [0.0, 0.0], ValueError, "must not all be 0"),
    (np.full((2, 1, 2), 1.5), [0.5, 0.5], ValueError, r"probabilities in \[0, 1\]"),
    (np.full((2, 1, 2), 0.5 + 0j), [0.5, 0.5], TypeError, "real probabilities"),
])
def test_mean_arguments_are_checked(P, w, error, match):
    for mean in (nwgm, arithmetic_mean):
        with pytest.raises(error, match=match):
            mean(P, w)


# -- the exact identity: dropout -> affine -> softmax ------------------------------------

def thinned_softmax(h, W, b, masks, scale):
    """All thinned nets' softmax(W (m*s ⊙ h) + b) by brute force: (M, B, K)."""
    return softmax(np.einsum("bn,mn,nk->mbk", h, masks * scale, W) + b)


@pytest.mark.parametrize("n", [1, 4, 9, 12, 16])
@pytest.mark.parametrize("inverted", [True, False])
def test_weight_scaling_is_exactly_the_nwgm(n, inverted):
    rng = np.random.default_rng(n)
    batch, classes = 3, 5
    h = rng.standard_normal((batch, n))
    W = rng.standard_normal((n, classes)) * 1.5
    b = rng.standard_normal(classes)
    keep = rng.uniform(0.1, 0.95, n)  # a different keep probability for every unit
    masks, probs = enumerate_masks(n, keep)
    scale = 1.0 / keep if inverted else np.ones(n)
    P = thinned_softmax(h, W, b, masks, scale)
    deterministic = softmax((h * (keep * scale)) @ W + b)  # inverted: identity; classical: x p
    np.testing.assert_allclose(nwgm(P, probs), deterministic, rtol=0, atol=1e-12)
    # ... and it is not the arithmetic mean (which is what "averaging the nets" would be)
    assert np.max(np.abs(arithmetic_mean(P, probs) - deterministic)) > 1e-4


def test_identity_fails_after_a_nonlinearity():
    rng = np.random.default_rng(4)
    n, batch, classes = 10, 4, 3
    h = rng.standard_normal((batch, n))
    W1, W2 = rng.standard_normal((n, 8)) * 2, rng.standard_normal((8, classes)) * 2
    keep = np.full(n, 0.5)
    masks, probs = enumerate_masks(n, keep)
    P = softmax(np.tanh(np.einsum("bn,mn,nk->mbk", h, masks / keep, W1)) @ W2)
    deterministic = softmax(np.tanh(h @ W1) @ W2)
    assert np.max(np.abs(nwgm(P, probs) - deterministic)) > 1e-3


def test_geometric_mean_prefers_the_consistently_supported_class():
    # 4 equally likely thinned nets (2 units, keep 0.5): one is nearly sure of class A,
    # the other three give A little but B a steady 0.3; the rest is spread over 8 classes.
    _, probs = enumerate_masks(2, 0.5)
    confident = np.r_[0.95, 0.02, np.full(8, 0.03 / 8)]
    steady = np.r_[0.05, 0.30, np.full(8, 0.65 / 8)]
    P = np.stack([confident, steady, steady, steady])[:, None, :]
    assert arithmetic_mean(P, probs)[0].argmax() == 0   # A wins the vote of probabilities
    assert nwgm(P, probs)[0].argmax() == 1              # B wins the geometric mean


# -- expectation matching -------------------------------------------------------------------

@pytest.mark.parametrize("inverted", [True, False])
def test_expected_next_preactivation_equals_the_scaled_deterministic_one_exactly(inverted):
    # Small integers and dyadic keep probabilities: every product and sum below is exact
    # in float64, so the two sides must agree bit for bit.
    rng = np.random.default_rng(2)
    n = 10
    h = rng.integers(-8, 9, (3, n)).astype(np.float64)
    W = rng.integers(-8, 9, (n, 4)).astype(np.float64)
    b = rng.integers(-8, 9, 4).astype(np.float64)
    keep = rng.choice([0.25, 0.5, 0.75, 1.0], n)
    masks, probs = enumerate_masks(n, keep)
    scale = 1.0 / keep if inverted else np.ones(n)
    pre = np.einsum("bn,mn,nk->mbk", h, masks * scale, W) + b
    expected = np.tensordot(probs, pre, axes=(0, 0))
    deterministic = (h * (keep * scale)) @ W + b
    np.testing.assert_array_equal(expected, deterministic)
    # the same does not survive a nonlinearity: E[relu(z)] != relu(E[z])
    assert not np.allclose(np.tensordot(probs, np.maximum(pre, 0), axes=(0, 0)),
                           np.maximum(deterministic, 0))


# -- Baldi & Sadowski's logistic unit ---------------------------------------------------------

def test_baldi_sadowski_sigmoid_example():
    O = sigmoid(np.array([0.5, 1.0]))
    np.testing.assert_allclose(O, [0.622459, 0.731059], atol=5e-7)
    P = np.stack([1 - O, O], axis=1)[:, None, :]  # two members: P(class 0), P(class 1)
    w = np.array([0.5, 0.5])
    E = arithmetic_mean(P, w)[0, 1]
    G_prime, G = geometric_mean(P, w)[0]
    N = nwgm(P, w)[0, 1]
    assert round(E, 6) == 0.676759
    assert round(G, 6) == 0.674577
    assert round(G_prime, 6) == 0.318648
    assert round(N, 6) == 0.679179
    assert math.isclose(N, G / (G + G_prime), rel_tol=1e-14)
    assert math.isclose(N, sigmoid(0.75), rel_tol=1e-14)  # sigma(E[S])


def test_nwgm_of_a_logistic_unit_is_the_sigmoid_of_the_mean_input():
    rng = np.random.default_rng(5)
    S = rng.standard_normal(40) * 3
    w = rng.uniform(0, 1, 40)
    w /= w.sum()
    O = sigmoid(S)
    P = np.stack([1 - O, O], axis=1)[:, None, :]
    assert math.isclose(nwgm(P, w)[0, 1], sigmoid(w @ S), rel_tol=1e-13)
    assert not math.isclose(arithmetic_mean(P, w)[0, 1], sigmoid(w @ S), rel_tol=1e-3)


# -- linear regression: marginalising the dropout noise ----------------------------------------

def dropout_squared_error(X, y, w, R):
    """||y - (R * X) w||^2 for a stack of masks R of shape (M, N, D)."""
    residual = y - np.einsum("mnd,nd,d->mn", R, X, w)
    return np.einsum("mn,mn->m", residual, residual)


@pytest.mark.parametrize("p", [0.5, 0.8, 0.3])
def test_linear_regression_marginalisation_by_enumeration(p):
    rng = np.random.default_rng(7)
    N, D = 4, 3  # 12 input entries, 4096 masks R
    X, y, w = rng.standard_normal((N, D)), rng.standard_normal(N), rng.standard_normal(D)
    masks, probs = enumerate_masks(N * D, p)
    exact = probs @ dropout_squared_error(X, y, w, masks.reshape(-1, N, D).astype(float))
    gamma = np.sqrt(np.diag(X.T @ X))
    closed_form = np.sum((y - p * X @ w) ** 2) + p * (1 - p) * np.sum((gamma * w) ** 2)
    assert math.isclose(exact, closed_form, rel_tol=1e-12)
    assert math.isclose(marginalized_linear_loss(X, y, w, p), exact, rel_tol=1e-12)


def test_linear_regression_marginalisation_by_monte_carlo():
    rng = np.random.default_rng(8)
    N, D, p, T = 300, 20, 0.6, 4000
    X, y, w = rng.standard_normal((N, D)), rng.standard_normal(N), rng.standard_normal(D) * 0.5
    R = fastdrop.sample_mask((T, N, D), keep_prob=p, seed=99).to_bool().astype(float)
    losses = dropout_squared_error(X, y, w, R)
    estimate, stderr = losses.mean(), losses.std(ddof=1) / np.sqrt(T)
    closed_form = marginalized_linear_loss(X, y, w, p)
    assert abs(estimate - closed_form) < 4 * stderr
    # the noise matters: the loss of the mean network alone is clearly smaller
    assert np.sum((y - p * X @ w) ** 2) < closed_form - 10 * stderr


def test_marginalized_linear_loss_checks_shapes():
    with pytest.raises(ValueError, match=r"y must have shape \(3,\)"):
        marginalized_linear_loss(np.ones((3, 2)), np.ones(2), np.ones(2), 0.5)
    with pytest.raises(ValueError, match="keep_prob must be a scalar"):
        marginalized_linear_loss(np.ones((3, 2)), np.ones(3), np.ones(2), [0.5, 0.5])
