"""The NEON level's build and the level names: src/kernels_neon.c compiles to nothing but a
NULL table off AArch64, and with an AArch64 cross compiler (when installed) to code that
never fuses a multiply and an add; fastdrop.config names levels by architecture."""
import importlib
import platform
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

from fastdrop import _kernels, config

SRC = Path(__file__).resolve().parents[2] / "src"
FLAGS = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-Wall", "-Wno-unused-function", f"-I{SRC}"]
FUSED = ("fmla", "fmls", "fmadd", "fmsub", "fnmadd", "fnmsub")


@pytest.fixture(scope="module")
def neon_source():
    if not (SRC / "kernels_neon.c").exists():
        pytest.skip("the C sources are not present (an installed wheel ships no src/)")
    return SRC / "kernels_neon.c"


def assemble(compiler, source, tmp_path):
    out = tmp_path / "kernels_neon.s"
    subprocess.run([compiler, *FLAGS, "-S", str(source), "-o", str(out)], check=True,
                   capture_output=True, text=True)
    return out.read_text()


def instructions(asm):
    """The mnemonics of an assembly listing (labels and directives left out)."""
    return [line.split()[0] for line in asm.splitlines()
            if line.startswith("\t") and not line.strip().startswith(".")]


def test_neon_file_is_a_null_table_elsewhere(neon_source, tmp_path):
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None or platform.machine().lower() in ("aarch64", "arm64"):
        pytest.skip("needs a C compiler for a target other than AArch64")
    asm = assemble(compiler, neon_source, tmp_path)
    assert "fd_kernels_neon" in asm
    assert "forward_f32" not in asm and "philox" not in asm  # no kernel compiled in


def test_neon_file_never_fuses_multiply_add(neon_source, tmp_path):
    compiler = shutil.which("aarch64-linux-gnu-gcc")
    if compiler is None:
        pytest.skip("no AArch64 cross compiler (gcc-aarch64-linux-gnu)")
    ops = instructions(assemble(compiler, neon_source, tmp_path))
    assert "umull2" in ops and "fmul" in ops and "fcvtn" in ops  # the NEON body is there
    assert sorted(set(ops) & set(FUSED)) == []


def test_level_numbers_match_the_c_enum():
    header = (SRC / "fastdrop.h").read_text() if (SRC / "fastdrop.h").exists() else None
    if header is None:
        pytest.skip("the C sources are not present")
    for number, name in enumerate(config.SIMD_LEVELS):
        assert f"FD_{name.upper()} = {number}" in header


def test_available_levels_belong_to_this_architecture():
    levels = config.available_simd_levels()
    machine = platform.machine().lower()
    assert levels[0] == "scalar" and config.simd_level() == levels[-1]
    if machine in ("aarch64", "arm64"):
        assert set(levels) <= {"scalar", "neon"}
    elif machine in ("x86_64", "amd64"):
        assert set(levels) <= {"scalar", "avx2", "avx512"}
    assert config.SIMD_LEVELS.index(config.simd_level()) == _kernels.get_level()


def test_the_c_layer_refuses_level_numbers_it_does_not_have():
    try:
        for number, name in enumerate(config.SIMD_LEVELS):
            if name not in config._ARCH_LEVELS:  # e.g. AVX2 on AArch64, below NEON's number
                with pytest.raises(ValueError):
                    _kernels.set_level(number)
        for number in (-1, len(config.SIMD_LEVELS)):
            with pytest.raises(ValueError):
                _kernels.set_level(number)
    finally:
        config.set_simd_level(config.available_simd_levels()[-1])


def test_other_architectures_levels_are_refused():
    foreign = [name for name in config.SIMD_LEVELS if name not in config._ARCH_LEVELS]
    assert foreign  # x86 has no neon, AArch64 no avx2 or avx512
    for name in foreign:
        with pytest.raises(ValueError, match="not available"):
            config.set_simd_level(name)
    assert config.simd_level() == config.available_simd_levels()[-1]


@pytest.fixture
def reload_config(monkeypatch):
    """Re-import fastdrop.config under a FASTDROP_SIMD, then restore the caller's setting."""
    def reload(forced):
        monkeypatch.setenv("FASTDROP_SIMD", forced)
        importlib.reload(config)
    yield reload
    monkeypatch.undo()
    importlib.reload(config)


@pytest.mark.parametrize("forced", ["neon", "avx2", "avx512", "sse4"])
def test_fastdrop_simd_names_a_level_of_this_architecture(reload_config, forced):
    if forced not in config._ARCH_LEVELS:
        with pytest.raises(ValueError, match="FASTDROP_SIMD must be one of"):
            reload_config(forced)
        return
    cpu = _kernels.cpu_level()
    expected = forced if config.SIMD_LEVELS.index(forced) <= cpu else config.SIMD_LEVELS[cpu]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # above what this CPU has
        reload_config(forced)
    assert config.available_simd_levels()[-1] == expected == config.simd_level()
