"""Types: mypy --strict sees fastdrop as a user does (an installed package with py.typed),
accepts typed code that uses the API, and rejects a misspelt keyword and wrong types.

Each example is a file mypy checks; a line that must be an error ends in
``# E: <part of mypy's message>``, and every other line must be clean.  mypy runs once, on
all examples, as a subprocess (fastdrop on PYTHONPATH, the examples elsewhere), so
fastdrop's own modules are checked as an installed package's are: only the examples'
errors are reported.
"""
import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import fastdrop

pytest.importorskip("mypy")

PACKAGE_ROOT = Path(fastdrop.__file__).resolve().parent.parent
HAVE_TORCH = importlib.util.find_spec("torch") is not None


def run_mypy(arguments, folder):
    """python -m <arguments> in `folder`, finding fastdrop as an installed package."""
    environment = {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")}
    environment["PYTHONPATH"] = str(PACKAGE_ROOT)
    return subprocess.run([sys.executable, "-m", *arguments], cwd=folder, capture_output=True,
                          text=True, env=environment)

EXAMPLES = {
    # the API, with the overloads of return_mask / return_noise checked by assert_type
    "api_ok.py": """
        from typing import Any, Optional, Union

        import numpy as np
        from numpy.typing import NDArray
        from typing_extensions import assert_type

        import fastdrop
        from fastdrop import Mask, config


        def step(x: NDArray[np.float32], seed: int, stream: int) -> NDArray[np.float32]:
            y: NDArray[np.float32] = fastdrop.dropout(x, 0.5, seed=seed, stream=stream)
            return y


        x = np.ones((4, 8), dtype=np.float32)
        assert_type(fastdrop.dropout(x), NDArray[Any])
        assert_type(fastdrop.dropout(x, return_mask=False), NDArray[Any])
        y, mask = fastdrop.dropout(x, 0.25, seed=np.random.SeedSequence(3), return_mask=True)
        assert_type(mask, Optional[Mask])
        flag: bool = bool(x.size)
        either = fastdrop.dropout(x, keep_prob=0.9, seed=1, return_mask=flag)
        assert_type(either, Union[NDArray[Any], tuple[NDArray[Any], Optional[Mask]]])
        if mask is not None:
            grad = fastdrop.dropout_backward(np.ones_like(y), mask)
            shape: tuple[int, ...] = mask.shape
        sampled = fastdrop.sample_mask((4, 8), keep_prob=0.9, seed=np.random.PCG64(1))
        assert_type(sampled, Mask)
        z = fastdrop.apply_mask(x, sampled)
        regenerated = fastdrop.dropout_backward(x, rate=0.5, seed=7, stream=2, offset=0)
        a, a_mask = fastdrop.alpha_dropout(x, 0.1, seed=np.uint64(5), return_mask=True)
        assert_type(a_mask, Optional[Mask])
        a_grad = fastdrop.alpha_dropout_backward(x, rate=0.1, seed=5)
        g, noise = fastdrop.gaussian_dropout(x, 0.2, seed=np.random.default_rng(0),
                                             return_noise=True)
        assert_type(noise, Optional[NDArray[Any]])
        g_grad = fastdrop.gaussian_dropout_backward(x, noise)
        with config.threads(1), config.simd("scalar"):
            w = fastdrop.dropout([1.0, 2.0], seed=None, training=False)
        level: str = fastdrop.simd_level()
        levels: tuple[str, ...] = config.available_simd_levels()
        threads: int = fastdrop.get_num_threads()
        fastdrop.set_num_threads(None)
        version: str = fastdrop.__version__
    """,
    # the methods of Mask (annotated in fastdrop/mask.py)
    "mask_ok.py": """
        import numpy as np
        from numpy.typing import NDArray

        import fastdrop
        from fastdrop import Mask

        mask = fastdrop.sample_mask(100, 0.5, seed=1)
        kept: NDArray[np.bool_] = mask.to_bool()
        count: int = mask.count()
        nbytes: int = mask.nbytes
        bits: NDArray[np.uint8] = mask.bits
        keep_prob: float = mask.keep_prob
        half: Mask = mask[:50]
        joined: Mask = Mask.concatenate([half, mask[50:]])
        user: Mask = Mask.from_bool(np.ones(8, dtype=bool), 0.5)
    """,
    # fastdrop.reference, the same API (annotated in fastdrop/reference.py)
    "reference_ok.py": """
        from typing import Any, Optional

        import numpy as np
        from numpy.typing import NDArray
        from typing_extensions import assert_type

        from fastdrop import Mask, reference

        x = np.ones(8, dtype=np.float32)
        assert_type(reference.dropout(x, 0.5, seed=np.random.SeedSequence(1)), NDArray[Any])
        y, mask = reference.dropout(x, 0.5, seed=1, return_mask=True)
        assert_type(mask, Optional[Mask])
        assert_type(reference.sample_mask(8, seed=1), Mask)
    """,
    "api_errors.py": """
        from typing import Any

        import numpy as np
        from numpy.typing import NDArray

        import fastdrop
        from fastdrop import config

        x = np.ones(8, dtype=np.float32)
        fastdrop.dropout(x, 0.5, sed=1)  # E: Unexpected keyword argument "sed"
        fastdrop.sample_mask(8, 0.5, sed=1)  # E: Unexpected keyword argument "sed"
        fastdrop.dropout_backward(x, rate=0.5, seed=1, steam=2)  # E: Unexpected keyword argument "steam"
        fastdrop.dropout(x, 0.5, 1)  # E: No overload variant of "dropout" matches
        fastdrop.dropout(x, seed=1.5)  # E: No overload variant of "dropout" matches
        fastdrop.sample_mask(8, seed="1")  # E: Argument "seed" to "sample_mask" has incompatible type
        pair: tuple[Any, Any] = fastdrop.dropout(x)  # E: Incompatible types in assignment
        only: NDArray[Any] = fastdrop.dropout(x, return_mask=True)  # E: Incompatible types in assignment
        config.set_simd_level("avx")  # E: Argument 1 to "set_simd_level" has incompatible type
        fastdrop.set_num_threads("2")  # E: Argument 1 has incompatible type "str"
    """,
    # the doors: fastdrop.torch and fastdrop.cs231n
    "doors_ok.py": """
        from typing import Any

        import numpy as np
        import torch
        from numpy.typing import NDArray
        from typing_extensions import assert_type

        import fastdrop.torch as fdt
        from fastdrop.cs231n import dropout_backward, dropout_forward

        model = torch.nn.Sequential(torch.nn.Linear(4, 4), fdt.Dropout(0.5, seed=1),
                                    fdt.AlphaDropout(0.1, seed=np.random.SeedSequence(2)))
        t = torch.ones(3, 4)
        y = fdt.dropout(t, 0.5, seed=torch.Generator().manual_seed(0), stream=3)
        assert_type(y, torch.Tensor)
        assert_type(fdt.Dropout2d(0.2).forward(torch.ones(1, 2, 3, 3)), torch.Tensor)
        out, cache = dropout_forward(np.ones((2, 3)), {"p": 0.8, "mode": "train"})
        dx = dropout_backward(np.ones((2, 3)), cache)
        assert_type(dx, NDArray[Any])
    """,
    "doors_errors.py": """
        import torch

        import fastdrop.torch as fdt

        t = torch.ones(3, 4)
        fdt.dropout(t, 0.5, sed=1)  # E: Unexpected keyword argument "sed"
        fdt.Dropout(0.5, seeds=1)  # E: Unexpected keyword argument "seeds"
        fdt.dropout(t, p="0.5")  # E: Argument "p" to "dropout" has incompatible type
    """,
}
TORCH_EXAMPLES = ("doors_ok.py", "doors_errors.py")
MARK = re.compile(r"#\s*E:\s*(.+?)\s*$")
ERROR = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: (?P<message>.*)$")


def _annotated(function):
    return bool(getattr(function, "__annotations__", None))


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory):
    """{example: [(line, message)]} from one `mypy --strict` run over every example."""
    folder = tmp_path_factory.mktemp("typed_examples")
    names = [n for n in EXAMPLES if HAVE_TORCH or n not in TORCH_EXAMPLES]
    for name in names:
        (folder / name).write_text(textwrap.dedent(EXAMPLES[name]).lstrip())
    result = run_mypy(["mypy", "--strict", "--no-error-summary", "--show-error-codes",
                       "--hide-error-context", "--no-pretty",
                       "--cache-dir", str(folder / ".mypy_cache"), *names], folder)
    assert result.returncode in (0, 1), result.stdout + result.stderr  # 2: mypy itself failed
    errors = {name: [] for name in names}
    for line in result.stdout.splitlines():
        match = ERROR.match(line)
        if match:
            errors.setdefault(match["file"], []).append((int(match["line"]), match["message"]))
    assert set(errors) == set(names), f"errors outside the examples: {result.stdout}"
    return errors


def _expected(name):
    """{line: message part} of the lines marked # E: in an example."""
    lines = textwrap.dedent(EXAMPLES[name]).lstrip().splitlines()
    return {number: MARK.search(text)[1] for number, text in enumerate(lines, 1)
            if MARK.search(text)}


def check_example(errors, name):
    expected = _expected(name)
    found = errors[name]
    unexpected = [(line, message) for line, message in found if line not in expected]
    assert unexpected == [], f"{name}: mypy reports errors on lines that should be clean"
    for line, part in expected.items():
        messages = [message for number, message in found if number == line]
        assert any(part in message for message in messages), \
            f"{name}:{line}: expected an error containing {part!r}, mypy said {messages}"


def test_typed_use_of_the_api_passes_strict(mypy_errors):
    assert _expected("api_ok.py") == {}
    check_example(mypy_errors, "api_ok.py")


def test_misspelt_keywords_and_wrong_types_are_errors(mypy_errors):
    assert len(_expected("api_errors.py")) == 10
    check_example(mypy_errors, "api_errors.py")


def test_misspelt_seed_names_the_keyword_and_suggests_seed(mypy_errors):
    first = min(_expected("api_errors.py"))  # dropout(x, 0.5, sed=1)
    messages = [message for line, message in mypy_errors["api_errors.py"] if line == first]
    assert any(message.startswith('Unexpected keyword argument "sed" for overloaded function '
                                  '"dropout"; did you mean "seed"?') for message in messages)


@pytest.mark.skipif(not _annotated(fastdrop.Mask.to_bool),
                    reason="fastdrop/mask.py is not annotated yet")
def test_mask_methods_are_typed(mypy_errors):
    check_example(mypy_errors, "mask_ok.py")


@pytest.mark.skipif(not _annotated(fastdrop.reference.dropout),
                    reason="fastdrop/reference.py is not annotated yet")
def test_reference_is_typed(mypy_errors):
    check_example(mypy_errors, "reference_ok.py")


@pytest.mark.skipif(not HAVE_TORCH, reason="needs torch")
def test_doors_are_typed(mypy_errors):
    check_example(mypy_errors, "doors_ok.py")
    check_example(mypy_errors, "doors_errors.py")


def test_without_py_typed_mypy_skips_the_package(tmp_path):
    """py.typed is what makes mypy read the package: a copy without it is import-untyped."""
    source = Path(fastdrop.__file__).resolve().parent
    assert (source / "py.typed").is_file() and (source / "_kernels.pyi").is_file()
    # under another name, so an installed fastdrop (with its py.typed) cannot answer instead
    copy = tmp_path / "site" / "fastdrop_without_marker"
    copy.mkdir(parents=True)
    for file in source.glob("*.py*"):  # .py and .pyi, not py.typed
        if file.name != "py.typed":
            (copy / file.name).write_bytes(file.read_bytes())
    (tmp_path / "use.py").write_text("import fastdrop_without_marker\n")
    environment = {k: v for k, v in os.environ.items() if k != "MYPYPATH"}
    environment["PYTHONPATH"] = str(tmp_path / "site")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary",
         "--cache-dir", str(tmp_path / ".mypy_cache"), "use.py"],
        cwd=tmp_path, capture_output=True, text=True, env=environment)
    assert "import-untyped" in result.stdout, result.stdout + result.stderr


def test_stub_matches_the_compiled_module(tmp_path):
    """mypy's stubtest: every name and signature of _kernels.pyi is the compiled module's."""
    allowlist = tmp_path / "allowlist"
    allowlist.write_text("fastdrop._kernels.__test__\n")  # Cython's doctest table
    result = run_mypy(["mypy.stubtest", "fastdrop._kernels", "--allowlist", str(allowlist)],
                      tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
