"""`fastdrop experiment NAME`: run one of the experiments of `fastdrop.theory` and print
its tables and conclusions, with the ``--quick`` or the full configuration, over one or
more seeds, optionally saving its plot and its numbers as JSON."""
import argparse
import json
import sys

from ..theory import experiments


def add_seed_arguments(parser):
    """--quick, --seed, --seeds and --no-progress: shared with `fastdrop report`."""
    parser.add_argument("--quick", action="store_true",
                        help="256-256 nets on 1000 training digits (datasize: its sizes), a "
                             "smaller step cap: seconds to a minute each on 2 cores")
    parser.add_argument("--seed", type=int, default=0, help="first seed for data order, weights and masks")
    parser.add_argument("--seeds", type=int, default=1, metavar="N",
                        help="run at N seeds (seed, seed+1, ...) and report mean ± sd")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress lines on stderr")


def check_seed_arguments(args, prog):
    """An error message for bad --seed / --seeds, or None."""
    if args.seed < 0:
        return f"{prog}: --seed must be >= 0"
    if args.seeds < 1:
        return f"{prog}: --seeds must be >= 1"
    return None


def add_arguments(parser):
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "experiments:\n" + "\n".join(
        f"  {name:13s} {e.description}" for name, e in experiments.EXPERIMENTS.items())
    parser.add_argument("name", choices=sorted(experiments.EXPERIMENTS), metavar="NAME",
                        help="which experiment: " + ", ".join(experiments.EXPERIMENTS))
    add_seed_arguments(parser)
    parser.add_argument("--plot", metavar="OUT.png", default=None,
                        help="save a figure (needs matplotlib: pip install 'fastdrop[plot]')")
    parser.add_argument("--json", metavar="OUT.json", default=None,
                        help="write the configuration, tables, plotted series, headline numbers "
                             "and conclusions as JSON")


def run(args):
    problem = check_seed_arguments(args, "fastdrop experiment")
    if problem:
        print(problem, file=sys.stderr)
        return 2
    if args.plot and not experiments.matplotlib_available():
        print(f"fastdrop experiment: {experiments.PLOT_HINT}; running without a plot", file=sys.stderr)
    mode = "quick" if args.quick else "full"
    seeds = f"seed {args.seed}" if args.seeds == 1 else f"seeds {args.seed}..{args.seed + args.seeds - 1}"
    print(f"experiment {args.name} ({mode} configuration, {seeds})\n", flush=True)
    result = experiments.run_experiment(args.name, quick=args.quick, seed=args.seed, seeds=args.seeds,
                                        verbose=args.progress)
    print(result)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(dict(result.as_dict(), mode=mode), f, indent=1)
        print(f"\nresults written to {args.json}")
    if args.plot:
        if not experiments.matplotlib_available():
            print(f"\nplot not saved: {experiments.PLOT_HINT}", file=sys.stderr)
            return 1
        experiments.plot_result(result, args.plot)
        print(f"\nplot saved to {args.plot}")
    return 0
