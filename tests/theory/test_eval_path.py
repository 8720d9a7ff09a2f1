"""The theory code runs every layer's own eval forward: subclasses take their base's path."""
import numpy as np
import pytest

from fastdrop import nn, theory


class NoForwardDense(nn.Dense):
    def forward(self, x, training=True, **kwargs):
        raise AssertionError("the ensemble code must call forward_eval, not forward")


class NoForwardReLU(nn.ReLU):
    def forward(self, x, training=True):
        raise AssertionError("the ensemble code must call forward_eval, not forward")


class NoForwardDropout(nn.Dropout):
    def forward(self, x, training=True):
        raise AssertionError("the ensemble code must call forward_eval, not forward")


class DoubledDense(nn.Dense):
    """A layer that owns a different eval forward: the theory code must honour it."""

    def forward_eval(self, x, *, overwrite_input=False, scratch=None):
        return 2 * super().forward_eval(x, overwrite_input=overwrite_input, scratch=scratch)


def _model(dense, relu, dropout, seed=0):
    rng = np.random.default_rng(seed)
    first, second = dense(5, 6, seed=1, dtype=np.float64), dense(6, 3, seed=2, dtype=np.float64)
    first.W[:] = rng.standard_normal(first.W.shape)
    second.W[:] = rng.standard_normal(second.W.shape)
    return nn.Sequential([first, relu(), dropout(0.4, seed=3), second])


@pytest.fixture
def X():
    return np.random.default_rng(7).standard_normal((4, 5))


def test_subclasses_take_the_same_path_as_their_bases(X):
    plain = _model(nn.Dense, nn.ReLU, nn.Dropout)
    sub = _model(NoForwardDense, NoForwardReLU, NoForwardDropout)
    P_plain, probs = theory.subnetwork_predictions(plain, X, 2)
    P_sub, _ = theory.subnetwork_predictions(sub, X, 2)
    np.testing.assert_array_equal(P_sub, P_plain)
    np.testing.assert_array_equal(theory.deterministic_predictions(sub, X),
                                  theory.deterministic_predictions(plain, X))
    mc_plain = theory.mc_predict(plain, X, 50, seed=5).mean
    mc_sub = theory.mc_predict(sub, X, 50, seed=5).mean
    np.testing.assert_array_equal(mc_sub, mc_plain)
    assert theory.dropout_layer_indices(sub) == [2]
    assert all(getattr(layer, "_cache", None) is None for layer in sub.layers)  # nothing cached


def test_a_layer_that_owns_its_eval_forward_is_honoured(X):
    plain = _model(nn.Dense, nn.ReLU, nn.Dropout)
    doubled = _model(DoubledDense, nn.ReLU, nn.Dropout)
    logits = plain.forward(X, training=False)
    first = plain.layers[0].forward(X, training=False)
    expected_logits = 2 * (np.maximum(2 * first, 0) @ plain.layers[3].W + plain.layers[3].b)
    expected = np.exp(expected_logits - expected_logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(theory.deterministic_predictions(doubled, X), expected, rtol=1e-12)
    assert not np.allclose(expected_logits, logits)
