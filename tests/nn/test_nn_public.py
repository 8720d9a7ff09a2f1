"""What `from fastdrop import nn` offers, and the eval forward every layer owns."""
import numpy as np
import pytest

from fastdrop import nn

NAMES = ["Sequential", "Dense", "DropoutDense", "Dropout", "ReLU", "Tanh", "Sigmoid", "SGD",
         "Adam", "SoftmaxCrossEntropy", "fit", "History", "evaluate", "build_mlp",
         "scale_weights", "Layer", "Parameter", "NoiseSource"]
VARIANTS = ["ChannelDropout", "Dropout1d", "Dropout2d", "Dropout3d", "SpatialDropout1D",
            "SpatialDropout2D", "SpatialDropout3D", "TimeLockedDropout", "VariationalDropout",
            "GaussianDropout", "AlphaDropout", "FeatureAlphaDropout", "DropConnectDense"]


@pytest.mark.parametrize("name", NAMES + VARIANTS)
def test_name_is_at_the_top_of_fastdrop_nn(name):
    assert name in nn.__all__
    assert name in vars(nn)  # a plain attribute, not computed on access


def test_no_module_attribute_hook_and_no_old_paths():
    import importlib

    assert "__getattr__" not in vars(nn)
    for old in ("layers", "variant_layers", "model", "optim", "train", "losses", "inference",
                "ensemble", "experiments", "ensemble_demo", "demo", "data"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(f"fastdrop.{old}")


def test_every_exported_name_exists_and_every_layer_is_a_layer():
    for name in nn.__all__:
        assert hasattr(nn, name), name
    for name in VARIANTS + ["Dense", "DropoutDense", "Dropout", "ReLU", "Tanh", "Sigmoid"]:
        assert issubclass(getattr(nn, name), nn.Layer), name


def test_the_per_sample_or_per_batch_choice_is_mode():
    assert nn.DropoutDense(4, 2, mode="per_batch").mode == "per_batch"
    assert nn.DropConnectDense(4, 2, mode="per_sample").mode == "per_sample"
    assert nn.build_mlp([4, 3, 2], hidden_rate=0.5, mode="per_batch").layers[2].mode == "per_batch"
    for layer in (nn.DropoutDense, nn.DropConnectDense):
        with pytest.raises(TypeError, match="mask"):
            layer(4, 2, mask="per_batch")
        with pytest.raises(ValueError, match="mode must be one of"):
            layer(4, 2, mode="per_example")


LAYERS = {
    "Dense": lambda: nn.Dense(6, 4, seed=1, dtype=np.float64),
    "DropoutDense": lambda: nn.DropoutDense(6, 4, 0.3, seed=1, dtype=np.float64),
    "DropConnectDense": lambda: nn.DropConnectDense(6, 4, 0.3, seed=1, dtype=np.float64),
    "Dropout": lambda: nn.Dropout(0.3, seed=1),
    "Dropout classical": lambda: nn.Dropout(0.3, seed=1, inverted=False),
    "ReLU": nn.ReLU,
    "Tanh": nn.Tanh,
    "Sigmoid": nn.Sigmoid,
    "GaussianDropout": lambda: nn.GaussianDropout(0.3, seed=1),
    "AlphaDropout": lambda: nn.AlphaDropout(0.3, seed=1),
}


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("name", list(LAYERS))
def test_forward_eval_is_the_eval_forward_and_leaves_the_layer_alone(name, overwrite):
    layer = LAYERS[name]()
    x = np.random.default_rng(2).standard_normal((5, 6))
    expected = layer.forward(x.copy(), training=False)
    fresh = LAYERS[name]()
    before = dict(vars(fresh))
    got = fresh.forward_eval(x.copy(), overwrite_input=overwrite)
    np.testing.assert_array_equal(got, expected)
    assert vars(fresh).keys() == before.keys()
    for key, value in before.items():
        assert vars(fresh)[key] is value, key  # nothing cached, nothing replaced


def test_forward_eval_may_write_in_place_or_into_scratch():
    x = np.random.default_rng(3).standard_normal((4, 6))
    relu_in = x.copy()
    assert nn.ReLU().forward_eval(relu_in, overwrite_input=True) is relu_in
    kept = x.copy()
    nn.ReLU().forward_eval(kept)
    np.testing.assert_array_equal(kept, x)  # not owned: untouched
    buffer = np.full((4, 3), np.nan)
    dense = nn.Dense(6, 3, seed=0, dtype=np.float64)
    out = dense.forward_eval(x, scratch=lambda shape, dtype: buffer[:shape[0], :shape[1]])
    assert np.shares_memory(out, buffer)
    np.testing.assert_allclose(buffer, x @ dense.W + dense.b)
