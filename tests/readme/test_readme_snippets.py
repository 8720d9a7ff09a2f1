"""Every Python snippet of README.md runs as written, each on its own in a fresh interpreter
(from an empty folder, so nothing but the package under test is importable)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fastdrop

README = Path(__file__).resolve().parents[2] / "README.md"


def snippets():
    if not README.exists():
        return []
    text = README.read_text(encoding="utf-8")
    return [pytest.param(match.group(1), id=f"line{text[:match.start()].count(chr(10)) + 1}")
            for match in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M)]


def test_the_readme_shows_code():
    if not README.exists():
        pytest.skip("README.md is not beside the tests (an installed package)")
    assert len(snippets()) >= 8


@pytest.mark.parametrize("code", snippets())
def test_snippet_runs_on_its_own(code, tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg",
           "PYTHONPATH": str(Path(fastdrop.__file__).resolve().parents[1])}
    script = tmp_path / "snippet.py"
    script.write_text(code, encoding="utf-8")
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"snippet failed:\n{code}\n--- stderr ---\n{result.stderr[-4000:]}"
