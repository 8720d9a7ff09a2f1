"""`fastdrop bench` as a user sees it: the printed report, the --json / --markdown / --plot
files, exit codes and option errors; and the bench/ suites stay runnable.  Tiny sizes and
one round; nothing here asserts a speed."""
import contextlib
import importlib.util
import io
import json
import math
import os
import pathlib
import subprocess
import sys
import tempfile

import pytest

import fastdrop
from fastdrop import config
from fastdrop.cli import main
from fastdrop.cli.bench import SMALL_CALLS, Arrays, kernel_calls, parse_sizes

TINY = ["--sizes", "6,8", "--level-sizes", "7", "--stream-sizes", "9", "--rounds", "1",
        "--no-peers", "--no-progress"]
ROOT = pathlib.Path(__file__).resolve().parents[2]
LEVELS = list(config.available_simd_levels())
SMALL_CALL_TEXTS = [kernel_calls(Arrays("float32", 8))[impl][0] for impl in SMALL_CALLS]


def run_bench(*argv):
    """(exit code, stdout, stderr) of `fastdrop bench ARGV`."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["bench", *argv])
        except SystemExit as exc:  # argparse's way out
            code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    files = {"json": folder / "out.json", "markdown": folder / "out.md"}
    if importlib.util.find_spec("matplotlib") is not None:
        files["plot"] = folder / "out.png"
    argv = [*TINY, "--threads", "1,2"]
    for option, path in files.items():
        argv += [f"--{option}", str(path)]
    code, text, _ = run_bench(*argv)
    return code, text, files


# -- what a run prints and writes ------------------------------------------------------------

def test_run_prints_every_part_of_the_report(tiny_run):
    code, text, _ = tiny_run
    assert code == 0
    assert text.startswith(f"fastdrop bench: fastdrop {fastdrop.__version__}, numpy ")
    assert "median of 1 interleaved rounds" in text
    for title in ("float32, n = 2^6", "float32, n = 2^8", "float64, n = 2^6",
                  "float64, n = 2^8", "float32, n = 2^7"):  # 2^7: the level table's size
        assert f"\n{title}\n" in text
    lines = text.splitlines()
    header = lines[lines.index("float32, n = 2^8") + 1].split()
    assert header == ["implementation", "time/call", "Gelem/s", "GB/s", "x", "mul", "x", "floor"]
    level = fastdrop.simd_level()
    for impl in ("np.multiply", "np.copyto", "reference", f"dropout+bits [{level}, 2t]",
                 f"apply_mask [{level}, 1t]", f"sample_mask [{level}, 1t]", "floor [1t]",
                 "floor [2t]"):
        assert any(line.strip().startswith(impl + " ") for line in lines), impl
    ratios = lines.index(next(line for line in lines if line.startswith("Ratios of medians")))
    assert lines[ratios + 1].split()[-8:] == ["1", "thread(s)", "2", "thread(s)",
                                             "floor", "1t", "floor", "2t"]
    assert any(line.strip().startswith("x faster than fastdrop.reference") for line in lines)
    assert not any("torch" in line for line in lines)  # --no-peers
    assert "Small calls: 1024 float32 elements" in text
    for call in ["np.multiply(x, 2.0, out=y)", *SMALL_CALL_TEXTS]:
        assert any(line.strip().startswith(call + " ") for line in lines), call
    simd = lines.index(next(line for line in lines if line.startswith("SIMD levels:")))
    assert lines[simd + 1].split() == ["n", *LEVELS]
    assert lines[simd + 2].split()[0] == "2^7"
    stream = lines.index(next(line for line in lines if line.startswith("Mask stream:")))
    assert lines[stream + 1].split() == ["n", "threads", "level", "forward", "0.2", "forward",
                                         "0.5", "backward_regen", "0.2", "backward_regen",
                                         "0.5", "sample_mask", "0.5"]
    assert [line.split()[:3] for line in lines[stream + 2:stream + 2 + 2 * len(LEVELS)]] == [
        ["2^9", str(t), level] for t in (1, 2) for level in LEVELS]
    assert "command: fastdrop bench --sizes 6,8 --dtype both --threads 1,2 --level-sizes 7 " \
           "--stream-sizes 9 --rounds 1 --no-peers" in text


def test_json_holds_every_timing_and_ratio(tiny_run):
    _, text, files = tiny_run
    assert f"wrote {files['json']}" in text
    report = json.loads(files["json"].read_text(encoding="utf-8"))
    assert set(report) == {"meta", "groups", "ratios", "simd_levels", "mask_stream"}
    meta = report["meta"]
    assert meta["sizes"] == [64, 256] and meta["level_sizes"] == [128]
    assert meta["stream_sizes"] == [512]
    assert meta["threads"] == [1, 2] and meta["rounds"] == 1 and meta["peers"] == {}
    assert meta["cpu_simd_levels"] == LEVELS and meta["simd_level"] == fastdrop.simd_level()
    assert meta["command"] in text
    names = [g["name"] for g in report["groups"]]
    assert names == ["float32, n = 2^6", "float32, n = 2^7", "float32, n = 2^8",
                     "float64, n = 2^6", "float64, n = 2^8", "small calls, float32, n = 2^10"]
    for group in report["groups"]:
        assert group["results"][0]["impl"] == "np.multiply"
        assert group["results"][0]["x_multiply"] == 1.0
        floors = {r["threads"]: r for r in group["results"] if r["impl"] == "floor"}
        if group["kind"] == "throughput":
            assert set(floors) <= {1, 2} and 2 in floors
            assert all(r["x_floor"] == 1.0 for r in floors.values())
        for r in group["results"]:
            assert len(r["seconds_rounds"]) == 1
            assert math.isfinite(r["seconds"]) and r["seconds"] > 0
            assert r["gb_per_s"] > 0 and r["gelem_per_s"] > 0 and r["x_multiply"] > 0
    small = report["groups"][-1]
    assert [r["impl"] for r in small["results"]] == ["np.multiply", *SMALL_CALLS]
    assert [r["call"] for r in small["results"][1:]] == SMALL_CALL_TEXTS
    keys = {(e["key"], e["threads"]) for e in report["ratios"]}
    assert keys == {(key, t) for t in (1, 2) for key in (
        "forward_f32_bits", "forward_f64_bits", "apply_mask", "backward_regen",
        "vs_reference")}
    assert all(e["size"] == 256 and e["value"] > 0 for e in report["ratios"])
    assert all(e["x_floor"] > 0 for e in report["ratios"] if not e["key"].startswith("vs_"))
    assert all(row["x_floor"] > 0 for row in report["simd_levels"])
    assert [(row["size"], row["level"], row["threads"]) for row in report["simd_levels"]] == [
        (128, level, 2) for level in LEVELS]
    # the mask stream: every level at 1 and 2 threads, forward and backward at both rates,
    # sample_mask at 0.5, each over the floor of its own group
    cells = {(c["threads"], c["level"], c["op"], c["rate"]): c for c in report["mask_stream"]}
    assert set(cells) == {(t, level, op, rate) for t in (1, 2) for level in LEVELS
                          for op, rate in [("forward", 0.2), ("forward", 0.5),
                                           ("backward_regen", 0.2), ("backward_regen", 0.5),
                                           ("sample_mask", 0.5)]}
    for cell in cells.values():
        assert cell["size"] == 512 and cell["seconds"] > 0
        assert cell["x_floor"] == cell["seconds"] / cell["floor_seconds"]


def test_markdown_has_the_report_tables(tiny_run):
    _, text, files = tiny_run
    assert f"wrote {files['markdown']}" in text
    markdown = files["markdown"].read_text(encoding="utf-8")
    assert markdown.startswith("Command: `fastdrop bench --sizes 6,8 ")
    for heading in ("### float32, n = 2^8", "### Ratios of medians", "### Small calls",
                    "### SIMD levels"):
        assert f"\n{heading}" in markdown
    assert "| call | time/call | x mul |\n|---|---|---|\n| np.multiply(x, 2.0, out=y) |" \
        in markdown
    assert f"| n | {' | '.join(LEVELS)} |" in markdown
    assert "| dropout forward f32, bits written / np.multiply | 2^8 |" in markdown


def test_plot_is_a_png(tiny_run):
    _, text, files = tiny_run
    if "plot" not in files:
        pytest.skip("matplotlib is not installed")
    assert f"wrote {files['plot']}" in text
    assert files["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("user_threads", [None, 3])
def test_run_restores_threads_and_simd_level(user_threads):
    fastdrop.set_num_threads(user_threads)
    try:
        threads_before = fastdrop.get_num_threads()
        others = ",".join(str(t) for t in (1, threads_before + 1, threads_before + 2))
        with config.simd(LEVELS[0]):  # the lowest, so the run's other levels would show
            code, text, _ = run_bench("--sizes", "6", "--level-sizes", "6", "--dtype",
                                      "float64", "--rounds", "1", "--threads", others,
                                      "--no-peers", "--no-progress")
            assert code == 0 and f"{threads_before + 2} thread(s)" in text
            assert fastdrop.simd_level() == LEVELS[0]
        assert fastdrop.get_num_threads() == threads_before
    finally:
        fastdrop.set_num_threads(None)


def test_torch_is_a_peer_when_installed():
    torch = pytest.importorskip("torch")
    code, text, _ = run_bench("--sizes", "6", "--level-sizes", "6", "--dtype", "float32",
                              "--rounds", "1", "--threads", "1", "--no-progress")
    assert code == 0
    assert f"peers: torch {torch.__version__}" in text
    assert any(line.strip().startswith("torch ") for line in text.splitlines())
    assert "x faster than torch.nn.functional.dropout" in text


# -- options ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, sizes", [
    ("10,16", [1 << 10, 1 << 16]),
    ("2^20,2**4", [16, 1 << 20]),
    ("1e3,1000,10^3", [1000]),
    ("65536, 10", [1024, 65536]),
    ("0", [1]),
])
def test_sizes_accept_exponents_powers_and_counts(text, sizes):
    assert parse_sizes(text) == sizes


@pytest.mark.parametrize("argv, message", [
    (["--sizes", "abc"], "argument --sizes: 'abc' is not an exponent"),
    (["--sizes", "29"], "argument --sizes: '29' is larger than 2^28 elements"),
    (["--sizes", "10,,12"], "argument --sizes: '' is not an exponent"),
    (["--level-sizes", "x"], "argument --level-sizes: 'x' is not an exponent"),
    (["--threads", "0"], "argument --threads: thread counts must be at least 1, got 0"),
    (["--threads", "two"], "argument --threads: 'two' is not an integer"),
    (["--rounds", "0"], "argument --rounds: must be at least 1, got 0"),
    (["--dtype", "float16"], "argument --dtype: invalid choice: 'float16'"),
])
def test_bad_options_exit_2_with_a_clear_message(argv, message):
    code, out, err = run_bench(*argv)
    assert code == 2 and out == ""
    assert message in err


@pytest.mark.parametrize("option", ["--json", "--markdown", "--plot"])
def test_output_into_a_missing_folder_stops_before_timing(option, tmp_path):
    code, out, err = run_bench(*TINY, option, str(tmp_path / "missing" / "out"))
    assert code == 2 and out == ""
    assert f"fastdrop bench: error: {option}: folder" in err and "does not exist" in err


def test_plot_without_matplotlib_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    code, out, err = run_bench(*TINY, "--plot", str(tmp_path / "out.png"))
    assert code == 2 and out == ""
    assert "--plot needs matplotlib" in err
    assert not (tmp_path / "out.png").exists()


def test_help_documents_the_options():
    code, out, _ = run_bench("--help")
    assert code == 0
    for option in ("--sizes", "--dtype", "--threads", "--level-sizes", "--rounds", "--quick",
                   "--no-peers", "--json", "--markdown", "--plot"):
        assert option in out


# -- the suites in bench/ stay runnable ----------------------------------------------------------

def run_in_bench_env(args, **env):
    """Run `python ARGS` outside the tree, importing the fastdrop this test imported."""
    where = os.path.dirname(os.path.dirname(os.path.abspath(fastdrop.__file__)))
    with tempfile.TemporaryDirectory() as elsewhere:
        return subprocess.run([sys.executable, *args], cwd=elsewhere, capture_output=True,
                              text=True, timeout=300,
                              env=dict(os.environ, PYTHONPATH=where, **env))


def run_bench_suite(*args, **env):
    """pytest on bench/bench_kernels.py with pytest-benchmark as its only plugin (loading
    every installed plugin costs seconds)."""
    pytest.importorskip("pytest_benchmark")
    return run_in_bench_env(["-m", "pytest", "-p", "pytest_benchmark.plugin",
                             str(ROOT / "bench" / "bench_kernels.py"), "--benchmark-disable",
                             "-q", "-p", "no:cacheprovider", *args],
                            PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", **env)


def test_bench_kernels_suite_runs_at_a_tiny_size():
    done = run_bench_suite("-k", "not torch and not jax", FASTDROP_BENCH_SIZES="6")
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout and "failed" not in done.stdout


def test_bench_suite_rejects_bad_sizes():
    done = run_bench_suite(FASTDROP_BENCH_SIZES="6,huge")
    assert done.returncode != 0
    assert "FASTDROP_BENCH_SIZES: 'huge' is not an exponent" in done.stdout + done.stderr


def test_targets_judge_a_saved_report(tiny_run):
    _, _, files = tiny_run
    done = run_in_bench_env([str(ROOT / "bench" / "targets.py"), "--from", str(files["json"])])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Targets:"
    judged = [line for line in lines[1:-1] if line.split()[0] in ("pass", "miss")]
    # every headline ratio at both thread counts, over np.multiply (5) and over the floor
    # (forward f32 with bits, apply_mask), and every small call
    assert len(judged) == 2 * 5 + 2 * 2 + len(SMALL_CALLS)
    assert lines[-1] == "every measured target passes" or lines[-1].endswith(" target(s) missed")
