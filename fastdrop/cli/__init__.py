"""The `fastdrop` command: each subcommand lives in its own module, imported only when run.

A subcommand module provides ``add_arguments(parser)`` and ``run(args) -> int``.
"""
import argparse
import importlib
import sys

COMMANDS = {
    "demo": ("fastdrop.demo", "train an MLP on the bundled MNIST subset with and without dropout"),
    "bench": ("fastdrop.cli.bench", "measure throughput and ratios against np.multiply and peers"),
    "experiment": ("fastdrop.experiments", "run one of the theory experiments (nwgm, bagging, ...)"),
    "ensemble": ("fastdrop.ensemble_demo", "compare weight scaling, NWGM, arithmetic mean and MC"),
}


def build_parser():
    parser = argparse.ArgumentParser(prog="fastdrop", description="Fast exact dropout for NumPy.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # a subcommand whose module does not exist yet is not offered
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command_parser)
        command_parser.set_defaults(_run=module.run)
    return parser


def _version():
    from .. import __version__

    return f"fastdrop {__version__}"


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
