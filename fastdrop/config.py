"""Run-time configuration of the kernels: the SIMD level and the number of threads.

FASTDROP_SIMD caps the level as if the CPU had nothing above it: the kernels run at that
level and nothing (tests, benchmarks) can select a higher one.  That is how a machine
without AVX-512 (or without AVX2) is reproduced on one that has it.  Each architecture has
its own levels (x86-64: scalar, avx2, avx512; AArch64: scalar, neon); naming another
architecture's level in FASTDROP_SIMD is an error, not a guess at an equivalent.

Threads.  The kernels share an array of at least 2**18 elements out to a thread pool of
their own, in chunks of 2**16 elements; smaller arrays run on the calling thread.  The
pool uses get_num_threads() threads: set_num_threads(n), else the first entry of
OMP_NUM_THREADS (read once, at import), else the CPUs this process may use.  An
OMP_NUM_THREADS fastdrop cannot read a count from is a RuntimeWarning, at import.  Where
threadpoolctl is installed, the pool is registered with it (user_api "fastdrop"), so
threadpoolctl.threadpool_info() lists it and threadpoolctl.threadpool_limits(n) limits it,
and restores it on exit.
"""
from __future__ import annotations

import os
import platform
import re
import warnings
from contextlib import contextmanager
from typing import Iterator, Literal, Optional

from . import _kernels

try:  # optional: with it, threadpoolctl.threadpool_limits() also limits the kernels' pool
    import threadpoolctl  # type: ignore[import-untyped, unused-ignore]
except ImportError:
    threadpoolctl = None

SimdLevel = Literal["scalar", "avx2", "avx512", "neon"]
#: index = level number in src/fastdrop.h
SIMD_LEVELS: tuple[SimdLevel, ...] = ("scalar", "avx2", "avx512", "neon")
_MACHINE = platform.machine().lower()


def _architecture_levels(cpu: int) -> tuple[SimdLevel, ...]:
    """This architecture's levels, lowest first (the CPU may lack the top ones)."""
    if cpu == SIMD_LEVELS.index("neon") or _MACHINE in ("aarch64", "arm64"):
        return ("scalar", "neon")
    if cpu > 0 or _MACHINE in ("x86_64", "amd64", "x86", "i386", "i686"):
        return ("scalar", "avx2", "avx512")
    return ("scalar",)


_ARCH_LEVELS = _architecture_levels(_kernels.cpu_level())


def _level_cap() -> int:
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


def available_simd_levels() -> tuple[SimdLevel, ...]:
    """The SIMD levels the kernels can run here (CPU, build, FASTDROP_SIMD), lowest first."""
    return tuple(name for name in _ARCH_LEVELS if SIMD_LEVELS.index(name) <= _MAX_LEVEL)


def simd_level() -> SimdLevel:
    """The SIMD level the kernels run: "avx512", "avx2", "neon" or "scalar"."""
    return SIMD_LEVELS[_kernels.get_level()]


def set_simd_level(name: SimdLevel) -> None:
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


def _check_omp_num_threads() -> None:
    """Warn, naming the value, where OMP_NUM_THREADS is set to something that is not a
    positive integer or a list of them (as OpenMP reads it, the first entry counts).

    The C library reads it once, here at import, as the first number of the list, and
    falls back to the CPU count where that is not positive; the warning says what the
    kernels use.
    """
    used = _kernels.default_threads()
    value = os.environ.get("OMP_NUM_THREADS", "")
    if not value.strip():
        return
    first = value.split(",", 1)[0].strip()
    if re.fullmatch(r"\+?[0-9]+", first) and int(first) > 0:
        return
    warnings.warn(f"OMP_NUM_THREADS={value!r} is not a positive integer (or a comma-separated "
                  f"list of them); fastdrop's kernels use {used} thread{'s' * (used != 1)}",
                  RuntimeWarning, stacklevel=2)


_check_omp_num_threads()


def _register_with_threadpoolctl(version: str) -> None:
    """Register the kernels' thread pool with threadpoolctl, where it is installed (3.0 or
    later, which has the controller API).

    threadpoolctl finds the pools it controls among the loaded shared libraries: the
    controller below matches the extension module (file name ``_kernels...``, exporting
    the pool's ``fd_parallel_for``) and gets and sets the pool's size through the same
    calls as get_num_threads / set_num_threads.
    """
    if not hasattr(threadpoolctl, "register"):
        return
    # What each change through threadpoolctl replaced, innermost last.  On exit
    # threadpool_limits sets every pool back to the count it found, limited or not:
    # setting the count the pool has changes nothing, and setting back the count a change
    # replaced restores the setting it replaced, "never set" (the OMP_NUM_THREADS / CPU
    # default) included.  Either way the pool then has exactly that many threads.
    replaced: list[tuple[int, Optional[int]]] = []

    class FastdropController(threadpoolctl.LibController):  # type: ignore[misc, unused-ignore]
        user_api = "fastdrop"
        internal_api = "fastdrop"
        filename_prefixes = ("_kernels",)
        check_symbols = ("fd_parallel_for",)

        def set_additional_attributes(self) -> None:
            self.simd_level = simd_level()

        def get_num_threads(self) -> int:
            return _kernels.get_num_threads()

        def set_num_threads(self, num_threads: int) -> None:
            count = _kernels.get_num_threads()
            if num_threads == count:
                return
            if replaced and num_threads == replaced[-1][0]:
                _kernels.set_num_threads(replaced.pop()[1])
                return
            setting = _kernels.num_threads_setting()
            _kernels.set_num_threads(num_threads)
            replaced.append((count, setting))

        def get_version(self) -> str:
            return version

    threadpoolctl.register(FastdropController)


@contextmanager
def threads(n: Optional[int]) -> Iterator[None]:
    """Run the kernels on n threads inside the block, then restore the previous setting
    exactly, including "never set" (the default from OMP_NUM_THREADS or the CPU count)."""
    previous = _kernels.num_threads_setting()
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(previous)


@contextmanager
def simd(name: SimdLevel) -> Iterator[None]:
    """Run the kernels at SIMD level `name` inside the block, then restore the previous one."""
    previous = simd_level()
    set_simd_level(name)
    try:
        yield
    finally:
        set_simd_level(previous)
