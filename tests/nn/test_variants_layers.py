"""Variant layers: each equals its functional form at stream = step,
is the identity (or the mean weights) in eval mode, backpropagates through the same noise
(finite differences with the noise fixed), and its mc_forward does not depend on how the
passes are stacked."""
import numpy as np
import pytest

import fastdrop
from fastdrop import nn
from fastdrop.nn import variants
from conftest import assert_bit_equal, assert_mask_equal
from gradcheck import numerical_grad


def rand(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# (layer factory, input shape, the functional call of training step k)
NOISE_LAYERS = {
    "Dropout2d": (lambda: nn.Dropout2d(0.3, seed=5), (4, 3, 5, 6),
                  lambda x, k: fastdrop.dropout(x, 0.3, seed=5, stream=k, noise_shape=(4, 3, 1, 1))),
    "Dropout1d": (lambda: nn.Dropout1d(0.3, seed=5), (4, 3, 5),
                  lambda x, k: fastdrop.dropout(x, 0.3, seed=5, stream=k, noise_shape=(4, 3, 1))),
    "Dropout3d": (lambda: nn.Dropout3d(0.3, seed=5), (2, 3, 2, 5, 6),
                  lambda x, k: fastdrop.dropout(x, 0.3, seed=5, stream=k, noise_shape=(2, 3, 1, 1, 1))),
    "SpatialDropout2D": (lambda: nn.SpatialDropout2D(0.3, seed=5), (4, 5, 6, 3),
                         lambda x, k: fastdrop.dropout(x, 0.3, seed=5, stream=k, noise_shape=(4, 1, 1, 3))),
    "SpatialDropout1D": (lambda: nn.SpatialDropout1D(0.3, seed=5), (4, 7, 3),
                         lambda x, k: fastdrop.dropout(x, 0.3, seed=5, stream=k, noise_shape=(4, 1, 3))),
    "SpatialDropout3D-first": (lambda: nn.SpatialDropout3D(0.3, seed=5, data_format="channels_first"),
                               (2, 3, 2, 4, 4),
                               lambda x, k: fastdrop.dropout(x, 0.3, seed=5, stream=k,
                                                             noise_shape=(2, 3, 1, 1, 1))),
    "TimeLocked": (lambda: nn.TimeLockedDropout(0.4, seed=6), (5, 9, 4),
                   lambda x, k: fastdrop.dropout(x, 0.4, seed=6, stream=k, noise_shape=(5, 1, 4))),
    "TimeLocked-time-major": (lambda: nn.VariationalDropout(0.4, seed=6, time_axis=0), (9, 5, 4),
                              lambda x, k: fastdrop.dropout(x, 0.4, seed=6, stream=k,
                                                            noise_shape=(1, 5, 4))),
    "Gaussian": (lambda: nn.GaussianDropout(0.2, seed=7), (6, 10),
                 lambda x, k: fastdrop.gaussian_dropout(x, 0.2, seed=7, stream=k)),
    "Alpha": (lambda: nn.AlphaDropout(0.1, seed=8), (6, 10),
              lambda x, k: fastdrop.alpha_dropout(x, 0.1, seed=8, stream=k)),
    "FeatureAlpha": (lambda: nn.FeatureAlphaDropout(0.1, seed=8), (6, 4, 5),
                     lambda x, k: fastdrop.alpha_dropout(x, 0.1, seed=8, stream=k, noise_shape=(6, 4, 1))),
}


@pytest.mark.parametrize("name", sorted(NOISE_LAYERS))
def test_layer_forward_is_the_functional_form_at_stream_step(name):
    make, shape, functional = NOISE_LAYERS[name]
    layer = make()
    assert layer.inverted is True and 0 < layer.keep_prob < 1
    x = rand(shape)
    for k in range(3):
        assert layer.step == k
        assert_bit_equal(layer.forward(x), functional(x, k))
    layer.step = 1
    assert_bit_equal(layer.forward(x), functional(x, 1))
    assert layer.forward(x, training=False) is x
    assert layer.step == 2


@pytest.mark.parametrize("name", sorted(NOISE_LAYERS))
def test_layer_backward_is_the_derivative_with_the_noise_fixed(name):
    """y is linear in x for a fixed mask (alpha: affine), so y(x + t d) - y(x) = t * J d
    and backward(g) . d = g . J d for any d, g."""
    make, shape, _ = NOISE_LAYERS[name]
    layer = make()
    x, d, g = rand(shape, 1), rand(shape, 2), rand(shape, 3)
    y0 = layer.forward(x)
    gx = layer.backward(g)
    layer.step = 0
    y1 = layer.forward(x + 1e-3 * d)
    np.testing.assert_allclose(np.sum(g * (y1 - y0)) / 1e-3, np.sum(gx * d), rtol=1e-9)
    layer.forward(x, training=False)
    np.testing.assert_array_equal(layer.backward(g), g)


def test_channel_dropout_zeroes_whole_channels_and_stores_a_small_mask():
    layer = nn.Dropout2d(0.5, seed=1)
    y = layer.forward(np.ones((8, 16, 5, 5), np.float32))
    per_channel = y.reshape(8, 16, 25)
    assert np.all(per_channel == per_channel[:, :, :1])
    mask = layer.last_mask
    assert mask.shape == (8, 16, 1, 1) and mask.nbytes == 16
    np.testing.assert_array_equal(per_channel[:, :, 0] == 2.0, mask.to_bool()[:, :, 0, 0])
    channels_last = nn.SpatialDropout2D(0.5, seed=1).forward(np.ones((8, 5, 5, 16), np.float32))
    np.testing.assert_array_equal(channels_last[:, 0, 0, :], per_channel[:, :, 0])


def test_time_locked_mask_is_shared_by_every_time_step():
    layer = nn.TimeLockedDropout(0.5, seed=2)
    y = layer.forward(np.ones((4, 30, 8)))
    assert np.all(y == y[:, :1, :])
    assert 0 < np.count_nonzero(y[:, 0, :]) < 32


def test_layer_input_errors():
    with pytest.raises(ValueError, match=r"Dropout2d: x must be 4-D \(N, C, H, W\)"):
        nn.Dropout2d(0.5, seed=0).forward(np.ones((3, 4, 5)))
    with pytest.raises(ValueError, match=r"SpatialDropout1D: x must be 3-D \(N, W, C\)"):
        nn.SpatialDropout1D(0.5, seed=0).forward(np.ones((3, 4)))
    with pytest.raises(ValueError, match="TimeLockedDropout: x must be 3-D"):
        nn.TimeLockedDropout(0.5, seed=0).forward(np.ones((3, 4)))
    with pytest.raises(TypeError, match="GaussianDropout: x must be float"):
        nn.GaussianDropout(0.5, seed=0).forward(np.ones(3, int))
    with pytest.raises(ValueError, match="data_format"):
        nn.ChannelDropout(0.5, data_format="NCHW")
    with pytest.raises(ValueError, match="time_axis"):
        nn.TimeLockedDropout(0.5, time_axis=2)
    with pytest.raises(ValueError, match="rate < 1"):
        nn.GaussianDropout(1.0)
    with pytest.raises(RuntimeError, match="before forward"):
        nn.AlphaDropout(0.5).backward(np.ones(3))
    layer = nn.AlphaDropout(0.5, seed=0)
    layer.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match="grad must have the forward output's shape"):
        layer.backward(np.ones((3, 2)))
    with pytest.raises(TypeError, match="training"):
        layer.forward(np.ones(3), training="no")


# -- DropConnect ----------------------------------------------------------------------------

def test_dropconnect_per_batch_forward_and_eval():
    layer = nn.DropConnectDense(7, 5, 0.3, seed=11, dtype=np.float64)
    layer.b[:] = rand(5, 9)
    x = rand((4, 7), 1)
    for k in range(2):
        z = layer.forward(x)
        mask = fastdrop.sample_mask((7, 5), 0.3, seed=11, stream=k)
        assert_mask_equal(layer.last_mask, mask)
        W_masked = np.where(mask.to_bool(), layer.W / 0.7, 0.0)
        np.testing.assert_allclose(z, x @ W_masked + layer.b, rtol=1e-13)
    np.testing.assert_allclose(layer.forward(x, training=False), x @ layer.W + layer.b, rtol=1e-13)
    assert layer.step == 2


def test_dropconnect_per_sample_masks_follow_the_rows(monkeypatch):
    layer = nn.DropConnectDense(6, 4, 0.5, seed=3, mode="per_sample", dtype=np.float64)
    x = rand((5, 6), 2)
    z = layer.forward(x)
    masks = fastdrop.sample_mask((5, 6, 4), 0.5, seed=3, stream=0).to_bool()
    for n in range(5):
        W_n = np.where(masks[n], layer.W * 2.0, 0.0)
        np.testing.assert_allclose(z[n], x[n] @ W_n + layer.b, rtol=1e-13)
    monkeypatch.setattr(variants, "_PER_SAMPLE_CHUNK_BYTES", 1)  # one row per chunk
    layer.step = 0
    np.testing.assert_allclose(layer.forward(x), z, rtol=1e-14)


@pytest.mark.parametrize("mode", ["per_batch", "per_sample"])
def test_dropconnect_gradients_by_finite_differences(mode):
    """Loss L = sum(G * z); with the step rewound each time, every forward uses one mask."""
    layer = nn.DropConnectDense(5, 3, 0.4, seed=21, mode=mode, dtype=np.float64)
    layer.b[:] = rand(3, 4)
    x, G = rand((4, 5), 5), rand((4, 3), 6)

    def loss():
        layer.step = 0
        return float(np.sum(G * layer.forward(x)))

    loss()
    gx = layer.backward(G)
    dW, db = layer.dW.copy(), layer.db.copy()
    for array, grad in [(layer.W, dW), (layer.b, db), (x, gx)]:
        np.testing.assert_allclose(grad, numerical_grad(loss, array), rtol=1e-6, atol=1e-8)
    # masked weights get no gradient in per-batch mode
    if mode == "per_batch":
        assert np.all(dW[~layer.last_mask.to_bool()] == 0)


def test_dropconnect_errors_and_parameters():
    layer = nn.DropConnectDense(4, 2, 0.5, seed=0)
    assert [p.kind for p in layer.parameters()] == ["weight", "bias"]
    assert layer.parameters()[0].value is layer.W
    with pytest.raises(ValueError, match=r"DropConnectDense: x must be 2-D \(batch, 4\)"):
        layer.forward(np.ones((3, 5), np.float32))
    with pytest.raises(TypeError, match="layer's parameters are float32"):
        layer.forward(np.ones((3, 4)))
    with pytest.raises(ValueError, match="mode must be one of"):
        nn.DropConnectDense(4, 2, mode="per_weight")
    with pytest.raises(ValueError, match="in_features must be at least 1"):
        nn.DropConnectDense(0, 2)
    with pytest.raises(TypeError, match="dtype"):
        nn.DropConnectDense(4, 2, dtype=np.int32)


# -- MC prediction hook ---------------------------------------------------------------------

MC_LAYERS = {
    "Dropout2d": (lambda: nn.Dropout2d(0.3, seed=5), (3, 2, 4, 4)),
    "SpatialDropout1D": (lambda: nn.SpatialDropout1D(0.3, seed=5), (3, 6, 2)),
    "TimeLocked": (lambda: nn.TimeLockedDropout(0.3, seed=5), (3, 6, 2)),
    "Gaussian": (lambda: nn.GaussianDropout(0.3, seed=5), (3, 5)),
    "FeatureAlpha": (lambda: nn.FeatureAlphaDropout(0.3, seed=5), (3, 2, 5)),
    "DropConnect": (lambda: nn.DropConnectDense(5, 4, 0.3, seed=5, dtype=np.float64), (3, 5)),
    "DropConnect-per-sample": (lambda: nn.DropConnectDense(5, 4, 0.3, seed=5, mode="per_sample",
                                                            dtype=np.float64), (3, 5)),
}


@pytest.mark.parametrize("name", sorted(MC_LAYERS))
def test_mc_forward_does_not_depend_on_stacking(name):
    make, shape = MC_LAYERS[name]
    layer = make()
    x = rand(shape)
    stacked = np.concatenate([x] * 5)
    all_at_once = layer.mc_forward(stacked, 5, seed=99, stream=2)
    one_by_one = np.concatenate([layer.mc_forward(x, 1, seed=99, stream=2, first_pass=t)
                                 for t in range(5)])
    two_then_three = np.concatenate([layer.mc_forward(stacked[:2 * shape[0]], 2, seed=99, stream=2),
                                     layer.mc_forward(stacked[2 * shape[0]:], 3, seed=99, stream=2,
                                                      first_pass=2)])
    np.testing.assert_allclose(all_at_once, one_by_one, rtol=1e-13)
    np.testing.assert_allclose(all_at_once, two_then_three, rtol=1e-13)
    passes = all_at_once.reshape((5, -1))
    assert not np.allclose(passes[0], passes[1])  # every pass draws fresh noise
    assert layer.step == 0
    with pytest.raises(ValueError, match="passes"):
        layer.mc_forward(stacked[:-1], 5, seed=1, stream=0)


# -- in a model -------------------------------------------------------------------------------

def test_variant_layers_train_in_a_sequential_model():
    from fastdrop.nn import SGD, Dense, ReLU, Sequential

    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    model = Sequential([nn.DropConnectDense(6, 16, 0.2, seed=1), ReLU(), nn.GaussianDropout(0.2, seed=2),
                        nn.AlphaDropout(0.05, seed=3), Dense(16, 2, seed=4)])
    assert len(model.param_groups()) == 4
    optimizer = SGD(lr=0.1)

    def loss_and_grad():
        z = model.forward(X)
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        loss = -np.mean(np.log(p[np.arange(64), y]))
        p[np.arange(64), y] -= 1
        return loss, p / 64

    first, _ = loss_and_grad()
    for _ in range(60):
        _, grad = loss_and_grad()
        model.backward(grad.astype(np.float32))
        optimizer.step(model)
    model.eval()
    z = model.forward(X)
    assert np.mean(np.argmax(z, axis=1) == y) > 0.9
    assert all(layer.step == 61 for layer in model.layers if hasattr(layer, "step"))


@pytest.mark.parametrize("name", ["Dropout2d", "Gaussian", "FeatureAlpha", "TimeLocked"])
def test_layers_take_float16(name):
    make, shape, functional = NOISE_LAYERS[name]
    layer = make()
    x = rand(shape, 4, np.float16)
    y = layer.forward(x)
    assert y.dtype == np.float16
    assert_bit_equal(y, functional(x, 0))
    assert layer.backward(np.ones_like(x)).dtype == np.float16
