"""fastdrop.theory on real `Sequential` models: every thinned network, compare, MC dropout."""
import numpy as np
import pytest

import fastdrop
from fastdrop.nn import (AlphaDropout, Dense, Dropout, DropoutDense, GaussianDropout, ReLU,
                         Sequential, Sigmoid, Tanh, build_mlp)
from fastdrop.theory import (Comparison, MCResult, arithmetic_mean, compare,
                             deterministic_predictions, dropout_layer_indices, enumerate_masks,
                             mc_predict, nwgm, subnetwork_predictions)

F64 = np.float64


def dense(n_in, n_out, seed, scale=1.0):
    layer = Dense(n_in, n_out, seed=seed, dtype=F64)
    layer.W *= scale
    layer.b[:] = np.random.default_rng(seed + 100).standard_normal(n_out) * 0.5
    return layer


def inputs(batch, features, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, features))


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# -- subnetwork_predictions ---------------------------------------------------------------

@pytest.mark.parametrize("n", [3, 8, 13, 16])
@pytest.mark.parametrize("kind", ["inverted", "classical", "fused"])
def test_weight_scaled_model_equals_nwgm_of_its_thinned_nets(n, kind):
    # Dropout on a hidden layer that feeds one affine map and softmax: the exact case.
    head = [dense(7, n, seed=n), Tanh()]
    if kind == "fused":
        drop = DropoutDense(n, 5, keep_prob=0.7, seed=3, dtype=F64)
        drop.W *= 2.0
        layers = head + [drop]
    else:
        drop = Dropout(keep_prob=0.7, inverted=(kind == "inverted"), seed=3)
        layers = head + [drop, dense(n, 5, seed=2 * n, scale=2.0)]
    model = Sequential(layers).eval()
    X = inputs(4, 7)
    P, probs = subnetwork_predictions(model, X, drop)
    assert P.shape == (2**n, 4, 5) and probs.shape == (2**n,)
    np.testing.assert_allclose(P.sum(axis=-1), 1.0, rtol=1e-13)
    deterministic = model.predict_proba(X)
    np.testing.assert_allclose(nwgm(P, probs), deterministic, rtol=0, atol=1e-12)
    assert np.max(np.abs(arithmetic_mean(P, probs) - deterministic)) > 1e-5


@pytest.mark.parametrize("inverted", [True, False])
def test_each_member_is_the_thinned_network(inverted):
    n = 5
    first, second = dense(4, n, seed=1), dense(n, 3, seed=2)
    drop = Dropout(keep_prob=0.6, inverted=inverted, seed=0)
    model = Sequential([first, ReLU(), drop, second, Sigmoid(), dense(3, 2, seed=3)])
    X = inputs(6, 4)
    P, probs = subnetwork_predictions(model, X, 2)
    masks, expected_probs = enumerate_masks(n, 0.6)
    np.testing.assert_array_equal(probs, expected_probs)
    hidden = np.maximum(X @ first.W + first.b, 0)
    scale = 1 / 0.6 if inverted else 1.0
    for k in (0, 1, 6, 2**n - 1):  # compute these thinned nets one by one, by hand
        z = model.layers[4].forward((hidden * masks[k] * scale) @ second.W + second.b, training=False)
        expected = softmax(model.layers[5].forward(z, training=False))
        np.testing.assert_allclose(P[k], expected, rtol=1e-13)


def test_masks_are_batched_in_chunks_without_changing_results():
    model = Sequential([dense(5, 10, seed=1), ReLU(), Dropout(0.5, seed=0), dense(10, 3, seed=2)])
    X = inputs(3, 5)
    whole, _ = subnetwork_predictions(model, X, 2)
    chunked, _ = subnetwork_predictions(model, X, 2, chunk_bytes=1000)  # a few masks per chunk
    np.testing.assert_array_equal(whole, chunked)


def test_subnetwork_arguments_are_checked():
    model = Sequential([dense(5, 30, seed=1), ReLU(), Dropout(0.5, seed=0), dense(30, 3, seed=2)])
    X = inputs(2, 5)
    with pytest.raises(ValueError, match="not a dropout layer.*dropout layers are at \\[2\\]"):
        subnetwork_predictions(model, X, 1)
    with pytest.raises(ValueError, match="out of range"):
        subnetwork_predictions(model, X, 9)
    with pytest.raises(ValueError, match="not one of model.layers"):
        subnetwork_predictions(model, X, Dropout(0.5))
    with pytest.raises(ValueError, match="n <= 24.*mc_predict"):  # 30 units: 2**30 nets
        subnetwork_predictions(model, X, 2)
    with pytest.raises(TypeError, match="Sequential"):
        subnetwork_predictions([Dropout(0.5)], X, 0)
    with pytest.raises(ValueError, match="X must have shape"):
        subnetwork_predictions(model, X[0], 2)


# -- compare ------------------------------------------------------------------------------

def deep_model(n=10, seed=0):
    """Dropout followed by a tanh layer: the NWGM identity no longer holds."""
    return Sequential([dense(6, n, seed=seed), Tanh(), Dropout(0.5, seed=seed),
                       dense(n, 8, seed=seed + 1, scale=3.0), Tanh(), dense(8, 4, seed=seed + 2, scale=3.0)])


def test_compare_reports_the_gap_after_a_nonlinearity():
    model, X = deep_model(), inputs(20, 6)
    result = compare(model, X, 2, T=200, seed=1)
    assert isinstance(result, Comparison)
    assert result["deterministic", "nwgm"].max_abs_diff > 1e-2
    assert result["deterministic", "nwgm"].mean_kl > 1e-5
    np.testing.assert_allclose(result.deterministic, model.predict_proba(X), rtol=1e-13)
    np.testing.assert_allclose(result.deterministic, deterministic_predictions(model, X), rtol=1e-13)
    P, probs = subnetwork_predictions(model, X, 2)
    np.testing.assert_allclose(result.nwgm, nwgm(P, probs), rtol=1e-12)
    np.testing.assert_allclose(result.arithmetic, arithmetic_mean(P, probs), rtol=1e-12)
    text = str(result)
    assert "weight scaling vs NWGM" in text and "MC (T=200) vs arith. mean" in text
    assert "1,024 thinned networks" in text


def test_compare_finds_the_identity_in_the_exact_case():
    model = Sequential([dense(6, 12, seed=4), ReLU(), Dropout(0.5, seed=0), dense(12, 4, seed=5, scale=2.0)])
    result = compare(model, inputs(20, 6), 2, T=50)
    exact = result["deterministic", "nwgm"]
    assert exact.max_abs_diff < 1e-12 and exact.argmax_agreement == 1.0
    assert result["deterministic", "arithmetic"].max_abs_diff > 1e-4


def test_a_class_backed_by_few_nets_wins_the_vote_but_not_the_geometric_mean():
    # Two dropped units (classical, keep 0.5) -> four equally likely thinned nets.  The
    # ReLU features below are a one-hot code of the mask, and the last layer's rows are
    # the log-probabilities each thinned net should output: net "both kept" is nearly
    # sure of class 0; the other three give class 0 little and class 1 a steady 0.3.
    confident = np.r_[0.95, 0.02, np.full(8, 0.03 / 8)]
    steady = np.r_[0.05, 0.30, np.full(8, 0.65 / 8)]
    code = Dense(2, 4, dtype=F64)
    code.W[:] = [[1, -1, 1, -1], [1, -1, -1, 1]]   # features: m1+m2-1, 1-m1-m2, m1-m2, m2-m1
    code.b[:] = [-1, 1, 0, 0]
    readout = Dense(4, 10, dtype=F64)
    readout.W[:] = np.log(np.stack([confident, steady, steady, steady]))
    readout.b[:] = 0
    drop = Dropout(keep_prob=0.5, inverted=False, seed=0)
    model = Sequential([drop, code, ReLU(), readout])
    X = np.ones((1, 2))
    P, _ = subnetwork_predictions(model, X, drop)
    np.testing.assert_allclose(np.sort(P[:, 0, 0]), [0.05, 0.05, 0.05, 0.95], rtol=1e-12)
    result = compare(model, X, drop, T=20_000, seed=3)
    assert result.arithmetic[0].argmax() == 0
    assert result.nwgm[0].argmax() == 1
    assert result["nwgm", "arithmetic"].argmax_agreement == 0.0
    assert result.mc[0].argmax() == 0  # sampling estimates the arithmetic mean


# -- mc_predict ----------------------------------------------------------------------------

def test_mc_mean_approaches_the_arithmetic_mean_within_clt_bounds():
    model, X = deep_model(n=8, seed=3), inputs(5, 6)
    P, probs = subnetwork_predictions(model, X, 2)
    exact_mean = arithmetic_mean(P, probs)
    exact_sd = np.sqrt(np.tensordot(probs, (P - exact_mean) ** 2, axes=(0, 0)))
    errors = []
    for T in (100, 1600, 25600):
        result = mc_predict(model, X, T, seed=T)
        z = np.abs(result.mean - exact_mean) / (exact_sd / np.sqrt(T) + 1e-300)
        assert np.max(z) < 5.0, (T, np.max(z))
        np.testing.assert_allclose(result.std, exact_sd, rtol=20 / np.sqrt(T), atol=1e-12)
        errors.append(np.max(np.abs(result.mean - exact_mean)))
    assert errors[2] < errors[0] / 4  # shrinks like 1/sqrt(T): 16x less at 256x the passes


def test_mc_statistics_are_those_of_the_samples():
    model, X = deep_model(), inputs(7, 6)
    result = mc_predict(model, X, 50, seed=5, return_samples=True)
    assert isinstance(result, MCResult) and result.T == 50 and result.seed == 5
    S = result.samples
    assert S.shape == (50, 7, 4)
    np.testing.assert_allclose(result.mean, S.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(result.std, S.std(axis=0), rtol=1e-6, atol=1e-12)
    entropy = lambda p: -np.sum(p * np.log(p), axis=-1)
    np.testing.assert_allclose(result.predictive_entropy, entropy(S.mean(axis=0)), rtol=1e-12)
    np.testing.assert_allclose(result.expected_entropy, entropy(S).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(result.mutual_information,
                               entropy(S.mean(axis=0)) - entropy(S).mean(axis=0), rtol=1e-9, atol=1e-15)
    assert np.all(result.mutual_information > 0)
    assert mc_predict(model, X, 50, seed=5).samples is None


def test_mc_masks_follow_the_documented_streams():
    # Dropout layer i uses stream i; pass t takes elements [t*B*n, (t+1)*B*n) of it.
    first, last = dense(4, 6, seed=1), dense(6, 3, seed=2)
    model = Sequential([Dropout(0.3, seed=0), first, ReLU(), Dropout(0.5, seed=0), last])
    X = inputs(5, 4)
    T = 6
    result = mc_predict(model, X, T, seed=77, return_samples=True, chunk_bytes=1)  # one pass a chunk
    m0 = fastdrop.sample_mask((T, 5, 4), rate=0.3, seed=77, stream=0).to_bool()
    m3 = fastdrop.sample_mask((T, 5, 6), rate=0.5, seed=77, stream=3).to_bool()
    for t in range(T):
        h = np.maximum((X * m0[t] / 0.7) @ first.W + first.b, 0)
        expected = softmax((h * m3[t] * 2.0) @ last.W + last.b)
        np.testing.assert_allclose(result.samples[t], expected, rtol=1e-12)
    stacked = mc_predict(model, X, T, seed=77, return_samples=True)  # all passes in one chunk
    np.testing.assert_array_equal(stacked.samples, result.samples)


def test_mc_predict_is_reproducible_and_leaves_the_model_alone():
    model, X = deep_model(), inputs(4, 6)
    drop = model.layers[2]
    step = drop.step
    a = mc_predict(model, X, 30, seed=9, return_samples=True)
    b = mc_predict(model, X, 30, seed=np.uint64(9), return_samples=True)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert drop.step == step
    c = mc_predict(model, X, 30, seed=10, return_samples=True)
    assert not np.array_equal(a.samples, c.samples)
    d = mc_predict(model, X, 30, seed=None)
    assert 0 <= d.seed < 2**64
    np.testing.assert_array_equal(mc_predict(model, X, 30, seed=d.seed).mean, d.mean)


def test_mc_with_fused_layers_and_float32():
    model = build_mlp([12, 16, 16, 3], input_rate=0.2, hidden_rate=0.5, seed=1)
    assert dropout_layer_indices(model) == [0, 2, 4]
    X = inputs(9, 12).astype(np.float32)
    result = mc_predict(model, X, 40, seed=2, return_samples=True)
    assert result.mean.shape == (9, 3)
    np.testing.assert_allclose(result.mean.sum(axis=-1), 1.0, rtol=1e-6)
    assert np.all(result.std > 0)
    # only the last layer's masks: it feeds one affine map + softmax, so with all masks
    # enumerated the weight-scaled model is their NWGM (float32: to rounding)
    P, probs = subnetwork_predictions(model, X, 4)
    np.testing.assert_allclose(nwgm(P, probs), model.predict_proba(X), atol=2e-6)


def test_keep_prob_one_means_no_uncertainty():
    model = Sequential([dense(5, 6, seed=1), ReLU(), Dropout(0.0, seed=0), dense(6, 3, seed=2)])
    X = inputs(4, 5)
    result = mc_predict(model, X, 10, seed=0)
    np.testing.assert_allclose(result.mean, model.predict_proba(X), rtol=1e-13)
    assert np.all(result.std < 1e-15) and np.all(result.mutual_information < 1e-15)


def test_mc_arguments_are_checked():
    model, X = deep_model(), inputs(2, 6)
    with pytest.raises(ValueError, match="T must be at least 1"):
        mc_predict(model, X, 0)
    with pytest.raises(TypeError, match="T must be an int"):
        mc_predict(model, X, 10.0)
    with pytest.raises(TypeError, match="seed must be"):
        mc_predict(model, X, 10, seed=1.5)
    with pytest.raises(ValueError, match="not a dropout layer"):
        mc_predict(model, X, 10, layers=[0])
    with pytest.raises(TypeError, match="layers must be a list"):
        mc_predict(model, X, 10, layers=2)
    with pytest.raises(ValueError, match="no dropout layer"):
        mc_predict(Sequential([dense(6, 3, seed=0)]), X, 10)
    with pytest.raises(TypeError, match="X must be a float array"):
        mc_predict(model, np.ones((2, 6), dtype=int), 10)
    with pytest.raises(ValueError, match="at least one input"):
        mc_predict(model, np.ones((0, 6)), 10)


def test_mc_predict_samples_variant_noise_layers_through_mc_forward():

    rng = np.random.default_rng(3)
    for noise in (GaussianDropout(0.3, seed=1), AlphaDropout(0.2, seed=1)):
        dense1, dense2 = Dense(6, 8, seed=1), Dense(8, 3, seed=2)
        model = Sequential([dense1, Tanh(), noise, dense2])
        X = rng.standard_normal((5, 6))
        whole = mc_predict(model, X, 40, seed=9, return_samples=True)
        chunked = mc_predict(model, X, 40, seed=9, return_samples=True, chunk_bytes=1)
        np.testing.assert_array_equal(whole.samples, chunked.samples)
        # every pass is a real draw: the passes differ, and each is pass t of the layer's
        # own mc_forward on the stacked batch
        assert np.ptp(whole.samples, axis=0).max() > 1e-3
        h = np.tanh(X @ dense1.W + dense1.b)
        stacked = noise.mc_forward(np.tile(h, (40, 1)), 40, seed=9, stream=2)
        logits = (stacked @ dense2.W + dense2.b).reshape(40, 5, 3)
        expected = np.exp(logits - logits.max(-1, keepdims=True))
        expected /= expected.sum(-1, keepdims=True)
        np.testing.assert_allclose(whole.samples, expected, rtol=1e-12, atol=1e-15)
