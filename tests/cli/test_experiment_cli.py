"""`fastdrop experiment NAME` through `fastdrop.cli.main`, on a tiny configuration."""
import pytest

from fastdrop import cli
from fastdrop.cli import experiment as experiment_command
from fastdrop.theory import experiments


@pytest.fixture
def tiny_nwgm(monkeypatch):
    """Make `--quick` nwgm tiny, so the CLI path runs in a fraction of a second."""
    function, plot, _, full = experiments.EXPERIMENTS["nwgm"]
    tiny = dict(units=4, depths=(0, 1), activations=("linear", "relu"), inputs=5, scales=(1.0,), width=4)
    monkeypatch.setitem(experiments.EXPERIMENTS, "nwgm", (function, plot, tiny, full))


def test_experiment_cli(tiny_nwgm, capsys):
    assert cli.main(["experiment", "nwgm", "--quick", "--quiet", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "experiment nwgm (quick configuration, seed 4)" in out
    assert "max |det - NWGM| where exact" in out


def test_experiment_cli_without_matplotlib(tiny_nwgm, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(experiments, "matplotlib_available", lambda: False)
    path = tmp_path / "out.png"
    assert cli.main(["experiment", "nwgm", "--quick", "--quiet", "--plot", str(path)]) == 1
    captured = capsys.readouterr()
    assert "headline:" in captured.out  # the numbers still come
    assert "pip install 'fastdrop[plot]'" in captured.err
    assert not path.exists()


def test_experiment_cli_rejects_unknown_names(capsys):
    with pytest.raises(SystemExit):
        cli.main(["experiment", "dropconnect"])
    assert "invalid choice" in capsys.readouterr().err


def test_every_experiment_has_a_description():
    assert set(experiment_command.DESCRIPTIONS) == set(experiments.EXPERIMENTS)
