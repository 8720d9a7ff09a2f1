"""`fastdrop ensemble` through `fastdrop.cli.main`, on a tiny model."""
import pytest

from fastdrop import cli, theory
from fastdrop.cli.ensemble import build_model


def test_ensemble_demo(capsys):
    assert cli.main(["ensemble", "--units", "4", "--epochs", "1", "--inputs", "40", "--T", "20",
                     "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.count("16 thinned networks") == 2
    assert "weight scaling IS the NWGM" in out and "MC dropout, every dropout layer" in out
    exact_table = out.split("weight scaling IS the NWGM")[1]
    gap = float(exact_table.split("weight scaling vs NWGM")[1].split()[0])
    assert gap < 1e-5  # float32 model: the identity up to rounding


def test_ensemble_demo_model_is_enumerable_where_it_says():
    model = build_model(5)
    assert theory.dropout_layer_indices(model) == [0, 3, 6, 9]
    assert model.layers[7].W.shape == (5, 5) and model.layers[10].W.shape == (5, 10)


@pytest.mark.parametrize("argv, message", [
    (["--units", "20"], "--units must be between 1 and 16"),
    (["--T", "0"], "--T must be at least 1"),
    (["--seed", "-1"], "--seed must be >= 0"),
])
def test_ensemble_demo_bad_arguments(argv, message, capsys):
    assert cli.main(["ensemble", *argv]) == 2
    assert message in capsys.readouterr().err
