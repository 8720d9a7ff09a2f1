"""The core modules import one way down: no cycles, no imports hidden inside functions,
argument checks that know nothing of Mask, and a compiled module that imports nothing
from the package (so it never calls back up into Python)."""
import ast
import re
from pathlib import Path

import pytest

import fastdrop

PACKAGE = Path(fastdrop.__file__).parent
CORE = ["__init__", "api", "_general", "_validate", "mask", "config", "reference"]


def package_imports(module):
    """{module-level package imports}, [imports inside functions] of fastdrop/<module>.py."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    in_functions = {id(node) for function in ast.walk(tree)
                    if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                    for node in ast.walk(function)}
    top, nested = set(), []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if id(node) in in_functions:  # a module-level try/except ImportError is not hidden
            nested.append(ast.unparse(node))
        elif isinstance(node, ast.ImportFrom) and node.level == 1:
            top.update([node.module] if node.module else [a.name for a in node.names])
    return top, nested


def test_core_imports_form_no_cycle_and_none_is_lazy():
    graph = {}
    for module in CORE:
        top, nested = package_imports(module)
        assert nested == [], f"fastdrop/{module}.py imports inside a function: {nested}"
        graph[module] = {m for m in top if m in CORE and m != "__init__"}
    visiting, done = set(), set()

    def visit(module, path):
        assert module not in visiting, f"import cycle: {' -> '.join(path + [module])}"
        if module in done:
            return
        visiting.add(module)
        for target in graph.get(module, ()):
            visit(target, path + [module])
        visiting.discard(module)
        done.add(module)

    for module in graph:
        visit(module, [])


def test_validators_do_not_know_mask_and_reference_leans_on_no_kernels():
    assert package_imports("_validate")[0] == set()
    assert "_kernels" not in package_imports("reference")[0]
    assert "_general" not in package_imports("reference")[0]


def test_compiled_module_imports_nothing_from_the_package():
    source = PACKAGE / "_kernels.pyx"
    if not source.exists():
        pytest.skip("an installed package without its Cython source")
    imports = re.findall(r"^\s*(?:from|import|cimport)\s+(\S+)", source.read_text(), re.M)
    assert [name for name in imports if name.startswith((".", "fastdrop"))] == []
