"""`fastdrop demo` end to end, on a narrow network so it takes a moment."""

import argparse

import fastdrop
from fastdrop.cli import demo


def run_demo(argv):
    parser = argparse.ArgumentParser(prog="fastdrop demo")
    demo.add_arguments(parser)
    threads = fastdrop.get_num_threads()
    try:
        return demo.run(parser.parse_args(argv))
    finally:
        assert fastdrop.get_num_threads() == threads  # the demo puts the thread count back
        fastdrop.set_num_threads(None)


def test_demo_prints_the_table(monkeypatch, capsys):
    monkeypatch.setattr(demo, "SIZES", (784, 32, 32, 10))
    assert run_demo(["--epochs", "2", "--mode", "per_batch", "--no-progress", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("method"))
    rows = lines[header + 2:header + 6]
    assert [row[:38].strip() for row in rows] == [
        "no regularization", "L2 (weight decay 0.001)", "dropout 0.2/0.5 + max-norm 3",
        "same, one mask per batch"]
    for row in rows:
        errors = [float(field[:-1]) for field in row.split() if field.endswith("%") and field[:-1]]
        assert len(errors) >= 2 and all(0 <= e <= 100 for e in errors[:2])
    assert rows[0].rstrip().endswith("-")          # no dropout, no dropout share
    share = float(rows[2].split()[-2])
    assert 0 < share < 100
    assert "2 epochs, seed 3" in out and "test error by" in out


def test_demo_rejects_bad_epochs(capsys):
    assert run_demo(["--epochs", "0", "--no-progress"]) == 2
    assert "--epochs" in capsys.readouterr().err
