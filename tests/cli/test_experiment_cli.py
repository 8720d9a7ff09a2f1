"""`fastdrop experiment NAME` through `fastdrop.cli.main`, on tiny configurations."""
import dataclasses
import json

import pytest

from fastdrop import cli
from fastdrop.theory import experiments


@pytest.fixture
def tiny_nwgm(monkeypatch):
    """Make `--quick` nwgm tiny, so the CLI path runs in a fraction of a second."""
    tiny = dict(units=4, depths=(0, 1), activations=("linear", "relu"), inputs=5, scales=(1.0, 2.0),
                width=4)
    monkeypatch.setitem(experiments.EXPERIMENTS, "nwgm",
                        dataclasses.replace(experiments.EXPERIMENTS["nwgm"], quick=tiny))


def test_experiment_cli(tiny_nwgm, capsys):
    assert cli.main(["experiment", "nwgm", "--quick", "--no-progress", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "experiment nwgm (quick configuration, seed 4)" in out
    assert "max |det - NWGM| where exact" in out
    assert "conclusions:" in out and "weight scaling = NWGM exactly" in out


def test_experiment_cli_seeds_and_json(tiny_nwgm, capsys, tmp_path):
    path = tmp_path / "out.json"
    assert cli.main(["experiment", "nwgm", "--quick", "--no-progress", "--seeds", "2",
                     "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "seeds 0..1" in out and "mean ± sd over seeds [0, 1]" in out and " ± " in out
    data = json.loads(path.read_text())
    assert data["name"] == "nwgm" and data["mode"] == "quick" and data["seeds"] == [0, 1]
    assert data["config"]["units"] == 4
    assert data["tables"] and data["headline"] and data["series"] and data["conclusions"]
    assert set(data["series_sd"]["gaps"]) == {"linear", "relu"}


@pytest.mark.parametrize("args, message", [(["--seed", "-1"], "--seed must be >= 0"),
                                           (["--seeds", "0"], "--seeds must be >= 1")])
def test_experiment_cli_rejects_bad_seeds(args, message, capsys):
    assert cli.main(["experiment", "nwgm", "--quick", *args]) == 2
    assert message in capsys.readouterr().err


def test_experiment_cli_without_matplotlib(tiny_nwgm, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(experiments, "matplotlib_available", lambda: False)
    path = tmp_path / "out.png"
    assert cli.main(["experiment", "nwgm", "--quick", "--no-progress", "--plot", str(path)]) == 1
    captured = capsys.readouterr()
    assert "headline:" in captured.out  # the numbers still come
    assert "pip install 'fastdrop[plot]'" in captured.err
    assert not path.exists()


def test_experiment_cli_rejects_unknown_names(capsys):
    with pytest.raises(SystemExit):
        cli.main(["experiment", "dropconnect"])
    assert "invalid choice" in capsys.readouterr().err


def test_every_experiment_is_described_in_the_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["experiment", "--help"])
    out = capsys.readouterr().out
    for name, experiment in experiments.EXPERIMENTS.items():
        assert name in out and experiment.description[:30] in out.replace("\n", " ")
    assert "--no-progress" in out and "--quiet" not in out
