"""Layers: gradients by finite differences (masks held fixed), mask streams, the fused
dropout + dense layer in both modes, eval rules, Sequential, scale_weights, errors."""
import numpy as np
import pytest

import fastdrop
from fastdrop.nn import (Dense, Dropout, DropoutDense, ReLU, Sequential, Sigmoid,
                         SoftmaxCrossEntropy, Tanh, build_mlp, layer_seeds, scale_weights)
from gradcheck import numerical_grad

F64 = np.float64


def rand(shape, seed=0, dtype=F64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def replay(layer):
    """Rewind a dropout layer so its next training forward reuses the same mask."""
    if hasattr(layer, "step"):
        layer.step = 0


def check_layer_grads(layer, x, *, rtol=1e-6, atol=1e-8):
    """Backward of `layer` (training mode, mask fixed) against finite differences."""
    replay(layer)
    y = layer.forward(x, training=True)
    G = rand(y.shape, seed=99)

    def objective():
        replay(layer)
        return float(np.sum(G * layer.forward(x, training=True)))

    replay(layer)
    layer.forward(x, training=True)
    gx = layer.backward(G.copy())
    np.testing.assert_allclose(gx, numerical_grad(objective, x), rtol=rtol, atol=atol)
    for p in layer.parameters():
        analytic = p.grad.copy()
        np.testing.assert_allclose(analytic, numerical_grad(objective, p.value), rtol=rtol, atol=atol)
    return y


# -- finite-difference gradients ---------------------------------------------------------

@pytest.mark.parametrize("store", ["bits", "seed"])
@pytest.mark.parametrize("inverted", [True, False])
def test_dropout_gradient(store, inverted):
    layer = Dropout(0.4, seed=3, inverted=inverted, store=store)
    y = check_layer_grads(layer, rand((5, 7), 1))
    assert 0 < np.count_nonzero(y) < y.size  # the mask actually dropped and kept something


def test_dense_gradient():
    check_layer_grads(Dense(6, 4, seed=1, dtype=F64), rand((5, 6), 2))


@pytest.mark.parametrize("mode", ["per_sample", "per_batch"])
def test_dropout_dense_gradient(mode):
    layer = DropoutDense(8, 5, rate=0.5, seed=4, mode=mode, dtype=F64)
    layer.b[:] = rand(5, 7)
    check_layer_grads(layer, rand((6, 8), 3))
    if mode == "per_batch":
        dropped = ~layer.last_mask.to_bool()
        assert dropped.any() and not dropped.all()
        assert np.all(layer.dW[dropped] == 0)


@pytest.mark.parametrize("cls", [ReLU, Tanh, Sigmoid])
def test_activation_gradient(cls):
    x = rand((4, 5), 5)
    x[np.abs(x) < 0.05] = 0.5  # keep ReLU away from its kink
    check_layer_grads(cls(), x)


def test_softmax_cross_entropy_gradient_and_stability():
    loss = SoftmaxCrossEntropy()
    logits = rand((6, 4), 8) * 3
    y = np.array([0, 3, 1, 2, 3, 0])
    loss.forward(logits, y)
    analytic = loss.backward()
    numeric = numerical_grad(lambda: loss.forward(logits, y), logits)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)
    # the value itself: -log softmax at the label
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert loss.forward(logits, y) == pytest.approx(-np.mean(np.log(p[np.arange(6), y])))
    big = np.array([[1000.0, 0.0, -1000.0]], dtype=np.float32)
    assert loss.forward(big, np.array([0])) == 0.0
    assert np.isfinite(loss.forward(big, np.array([2])))
    assert np.all(np.isfinite(loss.backward()))


def test_sequential_gradient_with_dropout():
    model = Sequential([DropoutDense(6, 7, rate=0.3, seed=1, dtype=F64), Tanh(),
                        Dropout(0.5, seed=2), Dense(7, 5, seed=3, dtype=F64), Sigmoid(),
                        DropoutDense(5, 3, rate=0.5, seed=4, mode="per_batch", dtype=F64)])
    x = rand((4, 6), 11)
    y = np.array([0, 2, 1, 2])
    loss = SoftmaxCrossEntropy()

    def objective():
        for layer in model.layers:
            replay(layer)
        return loss.forward(model.forward(x, training=True), y)

    objective()
    gx = model.backward(loss.backward())
    np.testing.assert_allclose(gx, numerical_grad(objective, x), rtol=1e-5, atol=1e-9)
    objective()
    model.backward(loss.backward())
    W = model.layers[3].W
    np.testing.assert_allclose(model.layers[3].dW.copy(), numerical_grad(objective, W), rtol=1e-5, atol=1e-9)


# -- mask streams and seeds --------------------------------------------------------------

def test_dropout_step_k_uses_stream_k():
    layer = Dropout(0.3, seed=17)
    x = np.ones((16, 33), dtype=np.float32)
    for k in range(3):
        layer.forward(x, training=True)
        assert layer.last_mask == fastdrop.sample_mask(x.shape, keep_prob=0.7, seed=17, stream=k)
    assert layer.step == 3
    layer.forward(x, training=False)
    assert layer.step == 3  # eval draws nothing


def test_dropout_seed_none_is_drawn_once():
    layer = Dropout(0.5)
    assert isinstance(layer.seed, int)
    x = np.ones((8, 40), dtype=np.float32)
    first = layer.forward(x)
    second = layer.forward(x)
    np.testing.assert_array_equal(first, fastdrop.dropout(x, 0.5, seed=layer.seed, stream=0))
    np.testing.assert_array_equal(second, fastdrop.dropout(x, 0.5, seed=layer.seed, stream=1))
    assert Dropout(0.5).seed != layer.seed


def test_store_seed_equals_store_bits():
    x = rand((9, 13), 4, np.float32)
    g = rand((9, 13), 5, np.float32)
    results = []
    for store in ("bits", "seed"):
        layer = Dropout(0.25, seed=5, store=store, inverted=False)
        layer.forward(x)
        y = layer.forward(x)  # step 1
        results.append((y, layer.backward(g)))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
    np.testing.assert_array_equal(results[0][1] != 0, results[0][0] != 0)


def test_dropout_dense_per_batch_mask_is_stream_k():
    layer = DropoutDense(20, 3, rate=0.5, seed=8, mode="per_batch")
    x = np.ones((4, 20), dtype=np.float32)
    for k in range(2):
        layer.forward(x)
        assert layer.last_mask == fastdrop.sample_mask((20,), keep_prob=0.5, seed=8, stream=k)


# -- the fused layer ---------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_dense_equals_dropout_then_dense(dtype):
    fused = DropoutDense(30, 12, rate=0.4, seed=21, dtype=dtype)
    drop, dense = Dropout(0.4, seed=21), Dense(30, 12, seed=21, dtype=dtype)
    np.testing.assert_array_equal(fused.W, dense.W)
    for step in range(2):
        x = rand((7, 30), step, dtype)
        g = rand((7, 12), 10 + step, dtype)
        z = fused.forward(x)
        np.testing.assert_array_equal(z, dense.forward(drop.forward(x)))
        dx = fused.backward(g.copy())
        np.testing.assert_array_equal(dx, drop.backward(dense.backward(g.copy())))
        np.testing.assert_array_equal(fused.dW, dense.dW)
        np.testing.assert_array_equal(fused.db, dense.db)


def test_per_batch_equals_explicit_thinned_network():
    layer = DropoutDense(50, 9, keep_prob=0.5, seed=2, mode="per_batch", dtype=F64)
    layer.b[:] = rand(9, 1)
    for step in range(3):
        x = rand((6, 50), 20 + step)
        g = rand((6, 9), 30 + step)
        z = layer.forward(x)
        mask = fastdrop.sample_mask((50,), keep_prob=0.5, seed=2, stream=step).to_bool()
        kept = np.flatnonzero(mask)
        assert 0 < kept.size < 50
        W_thin, x_thin = layer.W[kept], x[:, kept] * 2.0
        np.testing.assert_allclose(z, x_thin @ W_thin + layer.b, rtol=1e-13)
        dx = layer.backward(g)
        expected_dW = np.zeros_like(layer.W)
        expected_dW[kept] = x_thin.T @ g
        expected_dx = np.zeros_like(x)
        expected_dx[:, kept] = (g @ W_thin.T) * 2.0
        np.testing.assert_allclose(layer.dW, expected_dW, rtol=1e-13)
        np.testing.assert_allclose(layer.db, g.sum(0), rtol=1e-13)
        np.testing.assert_allclose(dx, expected_dx, rtol=1e-13)
        assert np.all(dx[:, ~mask] == 0)


@pytest.mark.parametrize("mode", ["per_sample", "per_batch"])
def test_thinned_model_equals_unthinned(mode):
    """Sequential computes only the units a per-batch layer keeps; nothing else changes."""
    def build(thin):
        return build_mlp([12, 20, 16, 4], input_rate=0.3, hidden_rate=0.5, mode=mode, seed=5,
                         dtype=F64, thin_per_batch=thin)

    thin, full = build(True), build(False)
    for step in range(3):
        x, g = rand((7, 12), step), rand((7, 4), 10 + step)
        np.testing.assert_allclose(thin.forward(x), full.forward(x), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(thin.backward(g), full.backward(g), rtol=1e-12, atol=1e-12)
        for a, b in zip(thin.grads(), full.grads()):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    if mode == "per_batch":
        # the hidden layers really were thinned: dropped units of layer 0's output were not computed
        cache = thin.layers[0]._cache
        assert cache.cols is not None and 0 < cache.cols.size < 20
        assert np.all(thin.layers[1]._cache[:, np.setdiff1d(np.arange(20), cache.cols)] == 0)
    else:
        assert thin._thinning_plan() is None


def test_active_outputs_gradient_and_zero_columns():
    cols = np.array([0, 2, 3])
    for layer in (Dense(5, 4, seed=1, dtype=F64),
                  DropoutDense(5, 4, rate=0.4, seed=2, mode="per_batch", dtype=F64),
                  DropoutDense(5, 4, rate=0.4, seed=3, dtype=F64)):
        layer.b[:] = rand(4, 4)
        x = rand((3, 5), 5)
        z = layer.forward(x, active_outputs=cols)
        assert np.all(z[:, 1] == 0)
        G = rand(z.shape, 6)
        G[:, 1] = 0  # the next layer drops unit 1: no gradient flows into it

        def objective():
            replay(layer)
            return float(np.sum(G * layer.forward(x, active_outputs=cols)))

        objective()
        gx = layer.backward(G.copy())
        np.testing.assert_allclose(gx, numerical_grad(objective, x), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(layer.dW.copy(), numerical_grad(objective, layer.W), rtol=1e-6, atol=1e-9)
        assert np.all(layer.dW[:, 1] == 0) and layer.db[1] == 0
    with pytest.raises(ValueError, match="active_outputs"):
        Dense(5, 4).forward(np.ones((2, 5), np.float32), active_outputs=np.array([4]))


def test_per_batch_extreme_keep_probs():
    x = rand((3, 10), 1)
    none_kept = DropoutDense(10, 4, keep_prob=0.0, seed=1, mode="per_batch", dtype=F64)
    none_kept.b[:] = 1.5
    np.testing.assert_array_equal(none_kept.forward(x), np.full((3, 4), 1.5))
    assert np.all(none_kept.backward(np.ones((3, 4))) == 0) and np.all(none_kept.dW == 0)
    all_kept = DropoutDense(10, 4, keep_prob=1.0, seed=1, mode="per_batch", dtype=F64)
    np.testing.assert_allclose(all_kept.forward(x), x @ all_kept.W, rtol=1e-13)


def test_dropout_dense_eval_is_plain_affine():
    layer = DropoutDense(10, 4, rate=0.5, seed=1, dtype=F64)
    x = rand((3, 10), 2)
    np.testing.assert_array_equal(layer.forward(x, training=False), x @ layer.W + layer.b)
    assert layer.step == 0


# -- eval rules --------------------------------------------------------------------------

def test_inverted_and_classical_eval_rules():
    x = rand((200, 30), 3, np.float32)
    inverted = Dropout(keep_prob=0.8, seed=1)
    classical = Dropout(keep_prob=0.8, seed=1, inverted=False)
    assert inverted.forward(x, training=False) is x
    np.testing.assert_array_equal(classical.forward(x, training=False), x * np.float32(0.8))
    np.testing.assert_array_equal(classical.backward(np.ones_like(x)), np.full_like(x, 0.8))
    # both rules match the training-time expectation: average many masks of a row
    row = np.abs(rand((1, 30), 4)) + 0.5
    tiled = np.repeat(row, 4000, axis=0)
    for layer, expected in ((inverted, row), (classical, row * 0.8)):
        mean = layer.forward(tiled, training=True).mean(axis=0)
        sigma = row[0] * np.sqrt(0.8 * 0.2 / 4000) / (0.8 if layer.inverted else 1.0)
        assert np.all(np.abs(mean - expected[0]) < 5 * sigma)
        np.testing.assert_allclose(layer.forward(row, training=False), expected, rtol=1e-12)


def test_scale_weights_matches_classical_eval():
    model = Sequential([Dropout(keep_prob=0.8, seed=1, inverted=False), Dense(6, 8, seed=2, dtype=F64),
                        ReLU(), Dropout(keep_prob=0.5, seed=3, inverted=False), ReLU(),
                        Dense(8, 3, seed=4, dtype=F64), DropoutDense(3, 2, rate=0.5, seed=5, dtype=F64)])
    for layer in model.layers:
        if hasattr(layer, "b"):
            layer.b[:] = rand(layer.b.shape, 6)
    scaled = scale_weights(model)
    assert not any(isinstance(layer, (Dropout, DropoutDense)) for layer in scaled.layers)
    assert [type(layer).__name__ for layer in scaled.layers] == ["Dense", "ReLU", "ReLU", "Dense", "Dense"]
    np.testing.assert_allclose(scaled.layers[0].W, model.layers[1].W * 0.8)
    np.testing.assert_allclose(scaled.layers[3].W, model.layers[5].W * 0.5)
    X = rand((10, 6), 7)
    np.testing.assert_allclose(scaled.forward(X, training=False), model.forward(X, training=False),
                               rtol=1e-12)
    W_before = model.layers[1].W.copy()
    scaled.layers[0].W += 1
    np.testing.assert_array_equal(model.layers[1].W, W_before)  # a copy, not shared


def test_scale_weights_rejects_unfoldable_dropout():
    bad = Sequential([Dense(4, 4, seed=0), Dropout(0.5, inverted=False), Tanh(), Dense(4, 2, seed=1)])
    with pytest.raises(ValueError, match="Tanh"):
        scale_weights(bad)
    with pytest.raises(ValueError, match="feeds no affine layer"):
        scale_weights(Sequential([Dense(4, 4, seed=0), Dropout(0.5, inverted=False)]))
    with pytest.raises(TypeError, match="Sequential"):
        scale_weights([Dense(4, 4)])


# -- Sequential --------------------------------------------------------------------------

def test_sequential_modes_params_and_predict():
    model = build_mlp([12, 16, 5], input_rate=0.2, hidden_rate=0.5, seed=3, dtype=F64)
    assert [type(layer).__name__ for layer in model.layers] == ["DropoutDense", "ReLU", "DropoutDense"]
    x = rand((8, 12), 1)
    a, b = model.forward(x), model.forward(x)
    assert not np.array_equal(a, b)  # training mode by default: a fresh mask per call
    model.eval()
    c = model.forward(x)
    np.testing.assert_array_equal(c, model.forward(x))
    np.testing.assert_array_equal(c, model.forward(x, training=False))
    assert not np.array_equal(c, model.forward(x, training=True))
    model.train()
    assert model.training
    groups = model.param_groups()
    assert [p.kind for p in groups] == ["weight", "bias", "weight", "bias"]
    assert all(p is q for p, q in zip(model.params(), [model.layers[0].W, model.layers[0].b,
                                                        model.layers[2].W, model.layers[2].b]))
    assert [g.shape for g in model.grads()] == [p.shape for p in model.params()]
    proba = model.predict_proba(x)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(model.predict(x), proba.argmax(1))
    assert model.training  # predicting does not change the mode


def test_build_mlp_fused_and_unfused_agree():
    fused = build_mlp([10, 8, 3], input_rate=0.2, hidden_rate=0.5, seed=7, dtype=F64)
    split = build_mlp([10, 8, 3], input_rate=0.2, hidden_rate=0.5, seed=7, fused=False, dtype=F64)
    assert [type(layer).__name__ for layer in split.layers] == ["Dropout", "Dense", "ReLU", "Dropout", "Dense"]
    x = rand((5, 10), 1)
    np.testing.assert_array_equal(fused.forward(x), split.forward(x))
    g = rand((5, 3), 2)
    np.testing.assert_array_equal(fused.backward(g), split.backward(g))
    np.testing.assert_array_equal(fused.layers[0].dW, split.layers[1].dW)
    assert len(set(layer_seeds(7, 4))) == 4


def test_backward_does_not_touch_callers_grad():
    model = build_mlp([6, 5, 3], hidden_rate=0.5, seed=1, fused=False, dtype=F64)
    x, g = rand((4, 6), 1), rand((4, 3), 2)
    model.forward(x)
    g_copy = g.copy()
    model.backward(g)
    np.testing.assert_array_equal(g, g_copy)
    drop = Dropout(0.5, seed=0)
    drop.forward(x)
    h = x.copy()
    drop.backward(h)
    np.testing.assert_array_equal(h, x)


# -- errors ------------------------------------------------------------------------------

def test_backward_before_forward_is_an_error():
    for layer in (Dropout(0.5), Dense(3, 2), DropoutDense(3, 2), ReLU(), Tanh(), Sigmoid()):
        with pytest.raises(RuntimeError, match="before forward"):
            layer.backward(np.ones((2, 2), dtype=np.float32))
    with pytest.raises(RuntimeError, match="before forward"):
        SoftmaxCrossEntropy().backward()


def test_wrong_shapes_and_dtypes():
    dense = Dense(4, 3, seed=0)
    with pytest.raises(ValueError, match="4 features"):
        dense.forward(np.ones((2, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="2-D"):
        dense.forward(np.ones(4, dtype=np.float32))
    with pytest.raises(TypeError, match="dtype"):
        dense.forward(np.ones((2, 4)))  # float64 into a float32 layer
    with pytest.raises(TypeError, match="float32 or float64"):
        Dropout(0.5).forward(np.ones((2, 4), dtype=np.int32))
    dense.forward(np.ones((2, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="grad must have"):
        dense.backward(np.ones((2, 4), dtype=np.float32))
    fused = DropoutDense(4, 3, mode="per_batch")
    fused.forward(np.ones((2, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="grad must have"):
        fused.backward(np.ones((3, 3), dtype=np.float32))
    drop = Dropout(0.5)
    drop.forward(np.ones((2, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="grad must have"):
        drop.backward(np.ones((4, 2), dtype=np.float32))
    with pytest.raises(TypeError, match="training"):
        drop.forward(np.ones((2, 4), dtype=np.float32), training="yes")


def test_bad_constructor_arguments():
    with pytest.raises(TypeError, match="rate or keep_prob"):
        Dropout(0.3, keep_prob=0.7)
    with pytest.raises(ValueError, match="rate"):
        Dropout(1.5)
    with pytest.raises(ValueError, match="store"):
        Dropout(0.5, store="mask")
    with pytest.raises(ValueError, match="mode must be one of"):
        DropoutDense(3, 2, mode="per_row")
    with pytest.raises(TypeError, match="mask"):
        DropoutDense(3, 2, mask="per_batch")  # the old spelling: mask= is only ever a mask
    with pytest.raises(ValueError, match="in_features"):
        Dense(0, 2)
    with pytest.raises(TypeError, match="out_features"):
        Dense(3, 2.5)
    with pytest.raises(ValueError, match="init"):
        Dense(3, 2, init="lecun")
    with pytest.raises(TypeError, match="dtype"):
        Dense(3, 2, dtype=np.int64)
    with pytest.raises(TypeError, match="layers\\[1\\]"):
        Sequential([Dense(3, 2), "relu"])


def test_loss_bad_labels():
    loss = SoftmaxCrossEntropy()
    logits = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"labels in \[0, 4\)"):
        loss.forward(logits, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"labels in \[0, 4\)"):
        loss.forward(logits, np.array([0, -1, 1]))
    with pytest.raises(TypeError, match="integer"):
        loss.forward(logits, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="shape"):
        loss.forward(logits, np.array([0, 1]))
    with pytest.raises(ValueError, match="2-D"):
        loss.forward(np.zeros(4), np.array([0]))
