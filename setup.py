"""Build the fastdrop extension: Cython bindings in fastdrop/, C kernels in src/.

One set of flags builds every SIMD level: the AVX2 and AVX-512 sources wrap their code
in compiler target regions and are chosen at run time, so the build never uses
-march=native and the wheel runs on any x86-64 (or any other) CPU.  OpenMP is used where
the compiler accepts -fopenmp; otherwise the kernels build serial.
"""
import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

OPENMP_PROBE = r"""
#include <omp.h>
int main(void) { int n = 0;
#pragma omp parallel reduction(+:n)
n += 1;
return n > 0 ? 0 : 1; }
"""


def openmp_flags():
    """Return (compile_args, link_args) for OpenMP, or empty lists if unsupported."""
    if os.environ.get("FASTDROP_NO_OPENMP"):
        return [], []
    if sys.platform == "win32":
        return ["/openmp"], []
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    cc = cc.split()
    if shutil.which(cc[0]) is None:
        return [], []
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(OPENMP_PROBE)
        exe = os.path.join(tmp, "probe")
        result = subprocess.run(cc + ["-fopenmp", src, "-o", exe],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if result.returncode == 0:
            return ["-fopenmp"], ["-fopenmp"]
    print("fastdrop: compiler has no OpenMP; building serial kernels", file=sys.stderr)
    return [], []


omp_compile, omp_link = openmp_flags()
if sys.platform == "win32":
    base_flags = ["/O2"]
else:
    # -ffp-contract=off: a kept element is exactly x * s, never fused into something else.
    base_flags = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-Wall", "-Wno-unused-function"]

extension = Extension(
    "fastdrop._kernels",
    sources=["fastdrop/_kernels.pyx"] + sorted(glob.glob("src/*.c")),
    include_dirs=["src", np.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=base_flags + omp_compile,
    extra_link_args=omp_link,
    depends=sorted(glob.glob("src/*.h")),
)

setup(
    ext_modules=cythonize(
        [extension],
        compiler_directives={"language_level": 3, "boundscheck": False,
                             "wraparound": False, "cdivision": True},
    ),
)
