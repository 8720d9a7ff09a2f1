"""`fastdrop bench` (fastdrop/benchmark.py) in tiny configurations: options, the report's
structure and arithmetic, JSON and plot output.  Nothing here asserts a speed."""
import argparse
import io
import json
import math
import statistics
import sys

import numpy as np
import pytest

import fastdrop
from fastdrop import config
from fastdrop.cli import bench as benchmark

TINY = ["--sizes", "6,8", "--rounds", "2", "--no-peers", "--no-progress"]


def bench_parser():
    parser = argparse.ArgumentParser(prog="fastdrop bench")
    benchmark.add_arguments(parser)
    return parser


@pytest.fixture
def fast_rounds(monkeypatch):
    """A round of a tiny array repeats its call for ~0.5 ms instead of ~20 ms."""
    monkeypatch.setattr(benchmark, "ROUND_BUDGET_SECONDS", 0.0005)


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    """One tiny run through `fastdrop.cli`, shared by the structure tests."""
    from fastdrop import cli

    saved_budget = benchmark.ROUND_BUDGET_SECONDS
    benchmark.ROUND_BUDGET_SECONDS = 0.0005
    folder = tmp_path_factory.mktemp("bench")
    stdout = io.StringIO()
    real_stdout, sys.stdout = sys.stdout, stdout
    try:
        code = cli.main(["bench", *TINY, "--threads", "1,2", "--json", str(folder / "out.json"),
                         "--markdown", str(folder / "out.md")])
    finally:
        sys.stdout = real_stdout
        benchmark.ROUND_BUDGET_SECONDS = saved_budget
    assert code == 0
    with open(folder / "out.json", encoding="utf-8") as handle:
        report = json.load(handle)
    return report, stdout.getvalue(), (folder / "out.md").read_text(encoding="utf-8")


def results_by_id(report):
    return {r["id"]: r for r in report["results"]}


# -- the report -------------------------------------------------------------------------------

def test_json_has_meta_results_ratios_growth(tiny_report):
    report, _, _ = tiny_report
    assert set(report) == {"meta", "results", "ratios", "growth"}
    meta = report["meta"]
    assert meta["sizes"] == [64, 256]
    assert meta["dtypes"] == ["float32", "float64"]
    assert meta["threads"] == [1, 2] and meta["headline_threads"] == 2
    assert meta["rounds"] == 2
    assert meta["target_size"] == 256  # 2^24 not measured: the largest size stands in
    assert meta["peers"] == {}
    assert meta["cpu_simd_levels"] == list(config.available_simd_levels())
    assert meta["command"].startswith("fastdrop bench --sizes 6,8 ")


def test_every_expected_case_is_measured(tiny_report):
    report, _, _ = tiny_report
    ids = set(results_by_id(report))
    default = report["meta"]["simd_level"]
    levels = report["meta"]["cpu_simd_levels"]
    expected = set()
    for dtype in ("float32", "float64"):
        for size in (64, 256):
            expected |= {f"{dtype}/{size}/{impl}"
                         for impl in ("np.multiply", "np.copyto", "reference")}
            for t in (1, 2):
                impls = ["dropout", "dropout+bits", "apply_mask", "backward_regen"]
                if dtype == "float32":
                    impls.append("sample_mask")
                expected |= {f"{dtype}/{size}/{impl}/{default}/t{t}" for impl in impls}
                expected |= {f"{dtype}/{size}/dropout+bits/{level}/t{t}" for level in levels}
    for size in (1000, 1024):  # the growth curve's start and the small-call target
        expected.add(f"float32/{size}/np.multiply")
        for t in (1, 2):
            expected |= {f"float32/{size}/dropout/{default}/t{t}",
                         f"float32/{size}/dropout+bits/{default}/t{t}"}
    assert ids == expected


def test_timings_and_throughputs_are_consistent(tiny_report):
    report, _, _ = tiny_report
    for r in report["results"]:
        rounds = r["seconds_rounds"]
        assert len(rounds) == 2 and r["rounds"] == 2
        assert all(math.isfinite(s) and s > 0 for s in rounds)
        assert r["seconds"] == pytest.approx(statistics.median(rounds), rel=1e-12)
        assert r["seconds_min"] == min(rounds)
        assert r["inner_repeats"] >= 1
        assert r["gelem_per_s"] == pytest.approx(r["size"] / r["seconds"] / 1e9, rel=1e-12)
        assert r["gb_per_s"] == pytest.approx(r["bytes_per_call"] / r["seconds"] / 1e9,
                                              rel=1e-12)
        itemsize = np.dtype(r["dtype"]).itemsize
        mask_bytes = (r["size"] + 7) // 8
        if r["impl"] == "sample_mask":
            assert r["bytes_per_call"] == mask_bytes
        elif r["impl"] in ("dropout+bits", "apply_mask"):
            assert r["bytes_per_call"] == 2 * r["size"] * itemsize + mask_bytes
        else:
            assert r["bytes_per_call"] == 2 * r["size"] * itemsize


def test_ratios_follow_from_the_medians(tiny_report):
    report, _, _ = tiny_report
    by_id = results_by_id(report)
    keys = [spec["key"] for spec in benchmark.TARGETS]
    assert sorted((e["key"], e["threads"]) for e in report["ratios"]) == sorted(
        (key, t) for key in keys for t in (1, 2))
    for entry in report["ratios"]:
        assert entry["size"] == (1024 if entry["key"] == "small_call" else 256)
        if entry["key"] in ("vs_torch", "vs_jax"):
            assert entry["value"] is None and entry["status"] == "n/a"
            assert entry["note"] == "peers skipped"
            continue
        if entry["key"] in ("avx2_vs_avx512", "scalar_vs_avx512") and \
                "avx512" not in report["meta"]["cpu_simd_levels"]:
            assert entry["status"] == "n/a"
            continue
        numerator = by_id[entry["numerator_id"]]
        denominator = by_id[entry["denominator_id"]]
        assert entry["value"] == pytest.approx(numerator["seconds"] / denominator["seconds"],
                                               rel=1e-12)
        assert math.isfinite(entry["value"]) and entry["value"] > 0
        fastdrop_side = numerator if numerator["threads"] is not None else denominator
        assert fastdrop_side["threads"] == entry["threads"]
        if entry["op"] is None:
            assert entry["status"] == "info"
        else:
            ok = (entry["value"] <= entry["target"] if entry["op"] == "<="
                  else entry["value"] >= entry["target"])
            assert entry["status"] == ("pass" if ok else "miss")


def test_speedups_put_the_peer_on_top(tiny_report):
    report, _, _ = tiny_report
    entry = next(e for e in report["ratios"] if e["key"] == "vs_reference")
    assert entry["numerator_id"].endswith("/reference")
    assert "/dropout/" in entry["denominator_id"]


def test_growth_curve_is_time_per_element(tiny_report):
    report, _, _ = tiny_report
    by_id = results_by_id(report)
    default = report["meta"]["simd_level"]
    assert [g["threads"] for g in report["growth"]] == [1, 2]
    for growth in report["growth"]:
        assert [p["size"] for p in growth["curve"]] == [64, 256, 1000, 1024]
        for point in growth["curve"]:
            ours = by_id[f"float32/{point['size']}/dropout+bits/{default}/t{growth['threads']}"]
            base = by_id[f"float32/{point['size']}/np.multiply"]
            assert point["ns_per_element"] == pytest.approx(
                ours["seconds"] / point["size"] * 1e9, rel=1e-12)
            assert point["multiply_ns_per_element"] == pytest.approx(
                base["seconds"] / point["size"] * 1e9, rel=1e-12)
        assert growth["value"] is None and growth["status"] == "n/a"  # nothing >= 2^16


def test_printed_table_shows_throughput_and_every_target(tiny_report):
    report, text, _ = tiny_report
    assert "Gelem/s" in text and "GB/s" in text
    assert "float64, n = 2^8" in text
    for spec in benchmark.TARGETS:
        assert spec["what"] in text
    assert "growth" in text
    assert report["meta"]["command"] in text
    label = report["results"][0]["label"]
    assert label in text


def test_markdown_has_the_target_growth_and_throughput_tables(tiny_report):
    report, _, markdown = tiny_report
    assert f"Command: `{report['meta']['command']}`" in markdown
    lines = markdown.splitlines()
    target_rows = [line for line in lines if line.startswith("| ")
                   and ("| <= " in line or "| >= " in line or "| (report) |" in line)]
    assert len(target_rows) == len(benchmark.TARGETS) + 1  # and the growth row
    for spec in benchmark.TARGETS:
        row = next(line for line in target_rows if line.startswith(f"| {spec['what']} |"))
        assert row.count("|") == 6  # what, n, target, 1 thread, 2 threads
    forward = next(e for e in report["ratios"]
                   if e["key"] == "forward_f32_bits" and e["threads"] == 2)
    assert f"**{forward['value']:.2f} {forward['status']}**" in markdown
    assert "### Growth: ns per element" in markdown
    assert "### Throughput, float32" in markdown and "### Throughput, float64" in markdown
    assert "| 1,000 |" in markdown


def test_growth_factor_flags_superlinear_cost():
    config = benchmark.Config([1 << 16, 1 << 20, 1 << 24], ("float32",), [1], 7)

    def results(seconds_per_element):
        out = []
        for size, ours in seconds_per_element.items():
            out.append({"id": f"float32/{size}/np.multiply", "size": size,
                        "dtype": "float32", "impl": "np.multiply", "seconds": size * 1e-9})
            out.append({"id": f"float32/{size}/dropout+bits/avx512/t1", "size": size,
                        "dtype": "float32", "impl": "dropout+bits", "seconds": size * ours})
        return out

    linear = benchmark.compute_growth(
        results({1 << 16: 3e-9, 1 << 20: 1.1e-9, 1 << 24: 1e-9}), config, "avx512")[0]
    assert linear["value"] == pytest.approx(1.0) and linear["status"] == "pass"
    superlinear = benchmark.compute_growth(
        results({1 << 16: 3e-9, 1 << 20: 1e-9, 1 << 24: 2e-9}), config, "avx512")[0]
    assert superlinear["value"] == pytest.approx(2.0) and superlinear["status"] == "miss"
    assert [p["ns_per_element"] for p in superlinear["curve"]] == pytest.approx([3, 1, 2])


def test_ratio_marks_pass_and_miss():
    config = benchmark.Config([1 << 24], ("float32",), [2], 7)
    size = 1 << 24

    def result(impl, seconds, threads=None, simd=None):
        rid = f"float32/{size}/{impl}" + (f"/{simd}/t{threads}" if threads else "")
        return {"id": rid, "impl": impl, "dtype": "float32", "size": size,
                "threads": threads, "simd": simd, "seconds": seconds}

    results = [result("np.multiply", 4.0), result("reference", 30.0),
               result("dropout+bits", 5.0, 2, "avx512"), result("dropout", 3.0, 2, "avx512"),
               result("apply_mask", 3.6, 2, "avx512"), result("dropout+bits", 10.0, 2, "avx2")]
    ratios = {e["key"]: e for e in benchmark.compute_ratios(results, config, "avx512")}
    assert ratios["forward_f32_bits"]["value"] == pytest.approx(1.25)
    assert ratios["forward_f32_bits"]["status"] == "miss"
    assert ratios["apply_mask"]["value"] == pytest.approx(0.9)
    assert ratios["apply_mask"]["status"] == "pass"  # the bound itself passes
    assert ratios["vs_reference"]["value"] == pytest.approx(10.0)
    assert ratios["vs_reference"]["status"] == "pass"
    assert ratios["avx2_vs_avx512"]["value"] == pytest.approx(0.5)
    assert ratios["avx2_vs_avx512"]["status"] == "miss"
    assert ratios["backward_regen"]["status"] == "n/a"
    assert ratios["forward_f64"]["note"] == "float64 not measured"
    assert ratios["vs_torch"]["note"] in ("torch not installed", "peers skipped")


# -- running it ----------------------------------------------------------------------------

def test_run_restores_threads_and_simd_level(fast_rounds, capsys):
    level_before = fastdrop.simd_level()
    fastdrop.set_num_threads(None)
    threads_before = fastdrop._kernels.num_threads_setting()
    args = bench_parser().parse_args(["--sizes", "6", "--dtype", "float64", "--rounds", "1",
                                      "--threads", "1,3", "--no-peers", "--no-progress"])
    assert benchmark.run(args) == 0
    assert fastdrop.simd_level() == level_before
    assert fastdrop._kernels.num_threads_setting() == threads_before is None
    out = capsys.readouterr().out
    assert "3 threads" in out and "NOTE: fewer than 7 rounds" in out


def test_progress_line_without_tqdm(monkeypatch):
    real_find_spec = benchmark.importlib.util.find_spec
    monkeypatch.setattr(benchmark.importlib.util, "find_spec",
                        lambda name: None if name == "tqdm" else real_find_spec(name))
    stream = io.StringIO()
    progress = benchmark.Progress(3, True, stream)
    for step in range(3):
        progress.advance(f"step {step}")
    progress.close()
    text = stream.getvalue()
    assert text.startswith("\rfastdrop bench [")
    assert "3/3 step 2" in text
    assert text.endswith("\r")


def test_progress_bar_with_tqdm():
    pytest.importorskip("tqdm")
    stream = io.StringIO()
    progress = benchmark.Progress(2, True, stream)
    progress.advance("a")
    progress.advance("b")
    assert progress.done == 2
    progress.close()
    assert "fastdrop bench" in stream.getvalue()  # tqdm drew its bar on the stream


def test_plot_without_matplotlib_is_a_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    args = bench_parser().parse_args([*TINY, "--plot", str(tmp_path / "out.png")])
    assert benchmark.run(args) == 2
    captured = capsys.readouterr()
    assert "--plot needs matplotlib" in captured.err
    assert captured.out == ""  # it stops before timing anything
    assert not (tmp_path / "out.png").exists()


def test_plot_writes_a_png(fast_rounds, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "out.png"
    args = bench_parser().parse_args(["--sizes", "6,8", "--dtype", "float32", "--rounds", "1",
                                      "--threads", "1", "--no-peers", "--no-progress",
                                      "--plot", str(path)])
    assert benchmark.run(args) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_torch_is_measured_when_installed(fast_rounds, capsys):
    torch = pytest.importorskip("torch")
    config = benchmark.Config([64], ("float32",), [1], 1, progress=False)
    report = benchmark.benchmark(config)
    assert report["meta"]["peers"]["torch"] == torch.__version__
    entry = next(e for e in report["ratios"] if e["key"] == "vs_torch")
    assert entry["value"] > 0 and entry["numerator_id"] == "float32/64/torch"


def test_jax_is_measured_when_installed(fast_rounds, capsys):
    jax = pytest.importorskip("jax")
    config = benchmark.Config([64], ("float64",), [1], 1, progress=False)
    report = benchmark.benchmark(config)
    assert report["meta"]["peers"]["jax"] == jax.__version__
    result = next(r for r in report["results"] if r["impl"] == "jax")
    assert result["dtype"] == "float64" and result["seconds"] > 0


# -- options ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, sizes", [
    ("10,16", [1 << 10, 1 << 16]),
    ("2^20,2**4", [16, 1 << 20]),
    ("1e3,1000,10^3", [1000]),
    ("65536, 10", [1024, 65536]),
    ("0", [1]),
])
def test_parse_sizes(text, sizes):
    assert benchmark.parse_sizes(text) == sizes


@pytest.mark.parametrize("argv, message", [
    (["--sizes", "abc"], "--sizes"),
    (["--sizes", "29"], "--sizes"),
    (["--sizes", "10,,12"], "--sizes"),
    (["--threads", "0"], "--threads"),
    (["--threads", "two"], "--threads"),
    (["--rounds", "0"], "--rounds"),
    (["--dtype", "float16"], "--dtype"),
])
def test_bad_options_are_rejected_by_the_parser(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("field, value, message", [
    ("sizes", "1e9", "--sizes"),
    ("threads", [0], "--threads"),
    ("rounds", -1, "--rounds"),
    ("dtype", "int32", "--dtype"),
    ("json", "/no/such/folder/out.json", "--json"),
])
def test_bad_values_in_hand_built_args(field, value, message, capsys):
    args = bench_parser().parse_args(TINY)
    setattr(args, field, value)
    with pytest.raises(ValueError, match=message):
        benchmark.config_from_args(args)
    assert benchmark.run(args) == 2
    assert message in capsys.readouterr().err


def test_quick_uses_the_short_size_list():
    args = bench_parser().parse_args(["--quick"])
    config = benchmark.config_from_args(args)
    assert config.sizes == benchmark.parse_sizes(benchmark.QUICK_SIZES)
    assert config.rounds >= benchmark.MIN_VALID_ROUNDS
    default = benchmark.config_from_args(bench_parser().parse_args([]))
    assert default.sizes == benchmark.parse_sizes(benchmark.DEFAULT_SIZES)
    assert default.threads == sorted({1, fastdrop.get_num_threads()})


# -- the pytest-benchmark suite in bench/ stays runnable -----------------------------------------

def run_bench_suite(sizes, *extra):
    import os
    import pathlib
    import subprocess
    import tempfile

    root = pathlib.Path(__file__).resolve().parents[2]
    # The suite must import the fastdrop this test imported (the installed one in CI,
    # where the source tree has no compiled extension), so it runs outside the tree.
    where = os.path.dirname(os.path.dirname(os.path.abspath(fastdrop.__file__)))
    env = dict(os.environ, FASTDROP_BENCH_SIZES=sizes, PYTHONPATH=where)
    with tempfile.TemporaryDirectory() as elsewhere:
        return subprocess.run(
            [sys.executable, "-m", "pytest", str(root / "bench" / "bench_kernels.py"),
             "--benchmark-disable", "-q", "-p", "no:cacheprovider", *extra],
            cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)


def test_bench_suite_runs_once_per_case_at_a_tiny_size():
    pytest.importorskip("pytest_benchmark")
    done = run_bench_suite("6", "-k", "not torch and not jax")
    assert done.returncode == 0, done.stdout + done.stderr
    levels, threads = len(config.available_simd_levels()), len({1, fastdrop.get_num_threads()})
    # per dtype: multiply, copyto, reference; forward x2 bits, apply, regenerate per level
    # and thread count; backward from mask per thread count; plus sample_mask once
    expected = 2 * (3 + 4 * levels * threads + threads) + levels * threads
    assert f"{expected} passed" in done.stdout


def test_bench_suite_rejects_bad_sizes():
    pytest.importorskip("pytest_benchmark")
    done = run_bench_suite("6,huge")
    assert done.returncode != 0
    assert "FASTDROP_BENCH_SIZES" in done.stdout + done.stderr
