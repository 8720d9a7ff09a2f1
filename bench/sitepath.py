"""Which fastdrop the benchmarks import: the source tree's when it is built in place, else
the installed one.

``python -m pytest bench/`` puts the current folder on sys.path, and a script run as
``python bench/bench_x.py`` puts bench/ there.  After ``pip install .`` the source tree's
``fastdrop/`` folder has no compiled extension; found first, it would shadow the installed
package and fail with "cannot import name '_kernels'".  So the tree's root goes on sys.path
(first) only when its extension is built in place (``python setup.py build_ext --inplace``),
and is taken off otherwise.
"""
import importlib.machinery
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def built_in_place():
    folder = os.path.join(ROOT, "fastdrop")
    return any(os.path.exists(os.path.join(folder, "_kernels" + suffix))
               for suffix in importlib.machinery.EXTENSION_SUFFIXES)


def prefer_built_source_tree():
    """Put the source tree first on sys.path if it is built in place, else remove it.
    Call before the first ``import fastdrop``; afterwards it changes nothing."""
    if "fastdrop" in sys.modules:
        return
    others = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != ROOT]
    sys.path[:] = ([ROOT] if built_in_place() else []) + others
