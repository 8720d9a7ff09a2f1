"""Build the fastdrop extension: Cython bindings in fastdrop/, C kernels in src/.

One set of flags builds every SIMD level: the AVX2 and AVX-512 sources wrap their code
in compiler target regions (GCC, Clang) or are plain intrinsics (MSVC, which needs no
target flags for them), and are chosen at run time, so the build never targets the build
machine's own CPU and the wheel runs on any x86-64 (or any other) CPU.  Large arrays are
shared out to a small thread pool (src/threads.c): POSIX threads, or Win32 threads on
Windows.
"""
import glob
import os
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

if sys.platform == "win32":
    # MSVC: C11 for the hexadecimal float constants and `restrict`; no /arch flag, so nothing
    # but the level files' own intrinsics goes past SSE2 and nothing is contracted into FMA
    # (a kept element is exactly x * s).  The thread pool needs no flag: Win32 threads.
    base_flags, threads = ["/O2", "/std:c11", "/fp:precise"], []
else:
    # -ffp-contract=off: a kept element is exactly x * s, never fused into something else.
    base_flags = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-Wall", "-Wno-unused-function"]
    threads = ["-pthread"]
# A wheel needs no symbol table (FASTDROP_KEEP_SYMBOLS=1 keeps it, for debuggers and sanitizers).
strip = ["-s"] if sys.platform.startswith("linux") and not os.environ.get("FASTDROP_KEEP_SYMBOLS") else []

extension = Extension(
    "fastdrop._kernels",
    sources=["fastdrop/_kernels.pyx"] + sorted(glob.glob("src/*.c")),
    include_dirs=["src", np.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=base_flags + threads,
    extra_link_args=threads + strip,
    depends=sorted(glob.glob("src/*.h")),
)

setup(
    ext_modules=cythonize(
        [extension],
        compiler_directives={"language_level": 3, "boundscheck": False,
                             "wraparound": False, "cdivision": True},
    ),
)
