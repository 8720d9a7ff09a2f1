"""Run-time configuration of the kernels: the SIMD level and the number of threads.

FASTDROP_SIMD caps the level as if the CPU had nothing above it: the kernels run at that
level and nothing (tests, benchmarks) can select a higher one.  That is how a machine
without AVX-512 (or without AVX2) is reproduced on one that has it.  Each architecture has
its own levels (x86-64: scalar, avx2, avx512; AArch64: scalar, neon); naming another
architecture's level in FASTDROP_SIMD is an error, not a guess at an equivalent.
"""
import os
import platform
import warnings
from contextlib import contextmanager

from . import _kernels

SIMD_LEVELS = ("scalar", "avx2", "avx512", "neon")  # index = level number in src/fastdrop.h
_MACHINE = platform.machine().lower()


def _architecture_levels(cpu):
    """This architecture's levels, lowest first (the CPU may lack the top ones)."""
    if cpu == SIMD_LEVELS.index("neon") or _MACHINE in ("aarch64", "arm64"):
        return ("scalar", "neon")
    if cpu > 0 or _MACHINE in ("x86_64", "amd64", "x86", "i386", "i686"):
        return ("scalar", "avx2", "avx512")
    return ("scalar",)


_ARCH_LEVELS = _architecture_levels(_kernels.cpu_level())


def _level_cap():
    cpu = _kernels.cpu_level()
    forced = os.environ.get("FASTDROP_SIMD", "").strip().lower()
    if not forced:
        return cpu
    if forced not in _ARCH_LEVELS:
        raise ValueError(f"FASTDROP_SIMD must be one of {_ARCH_LEVELS} on this machine "
                         f"({_MACHINE}), got {forced!r}")
    if SIMD_LEVELS.index(forced) > cpu:
        warnings.warn(f"FASTDROP_SIMD={forced} is above what this CPU has; "
                      f"using {SIMD_LEVELS[cpu]}", RuntimeWarning, stacklevel=3)
        return cpu
    return SIMD_LEVELS.index(forced)


_MAX_LEVEL = _level_cap()


def available_simd_levels():
    """The SIMD levels the kernels can run here (CPU, build, FASTDROP_SIMD), lowest first."""
    return tuple(name for name in _ARCH_LEVELS if SIMD_LEVELS.index(name) <= _MAX_LEVEL)


def simd_level():
    """The SIMD level the kernels run: "avx512", "avx2", "neon" or "scalar"."""
    return SIMD_LEVELS[_kernels.get_level()]


def set_simd_level(name):
    """Run the kernels at `name` (no higher than available_simd_levels() allows)."""
    if name not in SIMD_LEVELS:
        raise ValueError(f"SIMD level must be one of {SIMD_LEVELS}, got {name!r}")
    if name not in available_simd_levels():
        raise ValueError(f"SIMD level {name!r} is not available here (the CPU, or "
                         f"FASTDROP_SIMD, allows up to {available_simd_levels()[-1]!r})")
    _kernels.set_level(SIMD_LEVELS.index(name))


set_simd_level(SIMD_LEVELS[_MAX_LEVEL])

get_num_threads = _kernels.get_num_threads
set_num_threads = _kernels.set_num_threads


@contextmanager
def threads(n):
    """Run the kernels on n threads inside the block, then restore the previous setting
    exactly, including "never set" (the default from OMP_NUM_THREADS or the CPU count)."""
    previous = _kernels.num_threads_setting()
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(previous)


@contextmanager
def simd(name):
    """Run the kernels at SIMD level `name` inside the block, then restore the previous one."""
    previous = simd_level()
    set_simd_level(name)
    try:
        yield
    finally:
        set_simd_level(previous)
