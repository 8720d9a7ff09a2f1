"""The `fastdrop` command.  Each subcommand lives in its own module, imported only when run.

A subcommand module provides ``add_arguments(parser)``, which adds its options to an
`argparse.ArgumentParser`, and ``run(args) -> int``, which runs it on the parsed options
and returns the exit status.  `main` reads the subcommand's name, the first argument
that is not an option, before importing anything: ``fastdrop demo`` never loads the
theory code or the benchmark.
"""
import argparse
import importlib
import sys

from .. import __version__

#: subcommand -> (module, one-line help)
COMMANDS = {
    "demo": ("fastdrop.cli.demo", "train an MLP on the bundled MNIST subset with and without dropout"),
    "ensemble": ("fastdrop.cli.ensemble", "compare weight scaling, NWGM, arithmetic mean and MC"),
    "experiment": ("fastdrop.cli.experiment", "run one of the theory experiments (nwgm, bagging, ...)"),
    "report": ("fastdrop.cli.report", "run every theory experiment and write one HTML page of claims and verdicts"),
    "bench": ("fastdrop.cli.bench", "measure throughput and ratios against np.multiply and peers"),
}


def build_parser():
    """The top-level parser: ``--version``, ``--help`` and the name of a subcommand."""
    parser = argparse.ArgumentParser(
        prog="fastdrop", description="Fast exact dropout for NumPy.",
        usage="fastdrop [--version] [--help] COMMAND [options]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n" + "\n".join(f"  {name:12s} {help_text}"
                                         for name, (_, help_text) in COMMANDS.items())
               + "\n\n'fastdrop COMMAND --help' describes a command's options.")
    parser.add_argument("--version", action="version", version=f"fastdrop {__version__}")
    parser.add_argument("command", nargs="?", choices=list(COMMANDS), metavar="COMMAND",
                        help="one of: " + ", ".join(COMMANDS))
    return parser


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    position = next((i for i, arg in enumerate(argv) if not arg.startswith("-")), len(argv))
    parser = build_parser()
    name = parser.parse_args(argv[:position + 1]).command
    if name is None:
        parser.print_help()
        return 2
    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(module_name)
    command_parser = argparse.ArgumentParser(prog=f"fastdrop {name}", description=help_text)
    module.add_arguments(command_parser)
    return int(module.run(command_parser.parse_args(argv[position + 1:])) or 0)
