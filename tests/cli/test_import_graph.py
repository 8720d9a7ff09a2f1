"""The modules of nn, theory, datasets and cli import one way, down: no cycles, and no
subpackage reaches up into one that depends on it (imports inside functions included)."""
import ast
import os

import pytest

PACKAGE = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "fastdrop")
SUBPACKAGES = ("nn", "theory", "datasets", "cli")
#: what each subpackage may import from the others
ALLOWED = {"nn": set(), "datasets": set(), "theory": {"nn", "datasets"},
           "cli": {"nn", "theory", "datasets", "cli"}}


def _modules():
    for sub in SUBPACKAGES:
        folder = os.path.join(PACKAGE, sub)
        for name in sorted(os.listdir(folder)):
            if name.endswith(".py"):
                module = f"fastdrop.{sub}" + ("" if name == "__init__.py" else f".{name[:-3]}")
                yield module, os.path.join(folder, name), name == "__init__.py"


def _imports(module, path, is_package, modules):
    """The modules of `modules` that `module` imports, anywhere in its source."""
    package = module if is_package else module.rsplit(".", 1)[0]
    tree = ast.parse(open(path, encoding="utf-8").read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in modules else base)
    targets = set()
    for name in found & set(modules):
        targets.add(name)
        sub = ".".join(name.split(".")[:2])
        if sub != ".".join(module.split(".")[:2]) and sub in modules:
            targets.add(sub)  # entering another subpackage runs its __init__ first
    return targets - {module}


def _graph():
    modules = {module: (path, is_package) for module, path, is_package in _modules()}
    return {module: _imports(module, path, is_package, modules)
            for module, (path, is_package) in modules.items()}


def test_no_import_cycles():
    graph = _graph()
    state = {}

    def visit(module, stack):
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                pytest.fail("import cycle: " + " -> ".join(stack + [target]))
            if target not in state:
                visit(target, stack + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_subpackages_import_only_downwards():
    graph = _graph()
    assert "fastdrop.nn.dense" in graph["fastdrop.nn"]  # the graph sees relative imports
    assert "fastdrop.nn" in graph["fastdrop.theory.ensemble"]
    for module, targets in graph.items():
        sub = module.split(".")[1]
        for target in targets:
            other = target.split(".")[1]
            assert other == sub or other in ALLOWED[sub], f"{module} imports {target}"
