"""`fastdrop` itself: the subcommand table, the top-level help, and lazy subcommands."""
import importlib

import pytest

from conftest import run_python
from fastdrop import cli



def _python(code):
    return run_python(code, check=True).stdout


def test_help_lists_every_subcommand_with_its_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert set(cli.COMMANDS) == {"demo", "ensemble", "experiment", "report", "bench"}
    for name, (_, help_text) in cli.COMMANDS.items():
        assert f"  {name}" in out and help_text in out


def test_no_command_prints_the_help_and_fails(capsys):
    assert cli.main([]) == 2
    assert "commands:" in capsys.readouterr().out


def test_unknown_command_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_version(capsys):
    import fastdrop

    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert capsys.readouterr().out.strip() == f"fastdrop {fastdrop.__version__}"


def test_every_subcommand_module_has_the_interface():
    for name, (module_name, _) in cli.COMMANDS.items():
        assert module_name == f"fastdrop.cli.{name}"
        module = importlib.import_module(module_name)
        assert callable(module.add_arguments) and callable(module.run)


def test_demo_help_imports_only_the_demo():
    code = ("import sys\nfrom fastdrop import cli\n"
            "try:\n    cli.main(['demo', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('LOADED', ' '.join(sorted(m for m in sys.modules if m.startswith('fastdrop'))))")
    out = _python(code)
    assert "usage: fastdrop demo" in out
    loaded = out.split("LOADED", 1)[1].split()
    assert "fastdrop.cli.demo" in loaded
    for module in loaded:
        assert not module.startswith("fastdrop.theory"), module
        assert module not in ("fastdrop.cli.bench", "fastdrop.cli.ensemble",
                              "fastdrop.cli.experiment"), module


def test_import_fastdrop_loads_none_of_the_subpackages():
    out = _python("import sys, fastdrop\n"
                  "print(' '.join(sorted(m for m in sys.modules if m.startswith('fastdrop'))))")
    for package in ("nn", "theory", "cli", "datasets"):
        assert f"fastdrop.{package}" not in out.split()
