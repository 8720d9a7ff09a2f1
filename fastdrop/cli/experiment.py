"""`fastdrop experiment NAME`: run one of the experiments of `fastdrop.theory` and print
its tables, with the ``--quick`` or the full configuration, optionally saving its plot."""
import argparse
import sys

from ..theory import experiments

DESCRIPTIONS = {
    "nwgm": "weight scaling vs NWGM vs arithmetic mean over all 2^n thinned nets, by depth and nonlinearity",
    "bagging": "k bootstrap nets averaged vs one dropout net: test error, training time, parameter memory",
    "coadaptation": "test error as hidden units are removed at test time; hidden activation sparsity",
    "rate": "train/test error vs the hidden dropout rate (Srivastava et al. 2014, Fig. 9)",
    "datasize": "with and without dropout vs training-set size (Fig. 10)",
    "mc": "MC averaging of k stochastic passes vs weight scaling (Fig. 11)",
}


def add_arguments(parser):
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "experiments:\n" + "\n".join(
        f"  {name:13s} {DESCRIPTIONS[name]}" for name in experiments.EXPERIMENTS)
    parser.add_argument("name", choices=sorted(experiments.EXPERIMENTS), metavar="NAME",
                        help="which experiment: " + ", ".join(experiments.EXPERIMENTS))
    parser.add_argument("--quick", action="store_true",
                        help="small nets (256-256), few epochs and (but for datasize) 1000 "
                             "training digits: under a minute on 2 cores")
    parser.add_argument("--seed", type=int, default=0, help="seed for data order, weights and masks")
    parser.add_argument("--plot", metavar="OUT.png", default=None,
                        help="save a figure (needs matplotlib: pip install 'fastdrop[plot]')")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def run(args):
    if args.seed < 0:
        print("fastdrop experiment: --seed must be >= 0", file=sys.stderr)
        return 2
    if args.plot and not experiments.matplotlib_available():
        print(f"fastdrop experiment: {experiments.PLOT_HINT}; running without a plot", file=sys.stderr)
    mode = "quick" if args.quick else "full"
    print(f"experiment {args.name} ({mode} configuration, seed {args.seed})\n", flush=True)
    result = experiments.run_experiment(args.name, quick=args.quick, seed=args.seed, verbose=not args.quiet)
    print(result)
    if args.plot:
        if not experiments.matplotlib_available():
            print(f"\nplot not saved: {experiments.PLOT_HINT}", file=sys.stderr)
            return 1
        experiments.plot_result(result, args.plot)
        print(f"\nplot saved to {args.plot}")
    return 0
