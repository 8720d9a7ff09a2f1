"""`fastdrop report OUT.html`: run every experiment and write one self-contained page that
sets each claim of the dropout tutorial beside its measurement and a verdict."""
import sys
import time

from ..theory import report
from .experiment import add_seed_arguments, check_seed_arguments

#: seeds when --seeds is not given: the full report shows mean ± sd, a --quick one is a look
FULL_SEEDS, QUICK_SEEDS = 3, 1


def add_arguments(parser):
    parser.add_argument("out", metavar="OUT.html", help="where to write the page")
    add_seed_arguments(parser)
    parser.set_defaults(seeds=None)
    parser.epilog = (f"Without --seeds the report runs {FULL_SEEDS} seeds ({QUICK_SEEDS} with "
                     "--quick). On 2 cores: about 10 minutes, or 2 with --quick.")


def run(args):
    if args.seeds is None:
        args.seeds = QUICK_SEEDS if args.quick else FULL_SEEDS
    problem = check_seed_arguments(args, "fastdrop report")
    if problem:
        print(problem, file=sys.stderr)
        return 2
    start = time.perf_counter()
    _, verdicts = report.write_report(args.out, quick=args.quick, seed=args.seed, seeds=args.seeds,
                                      verbose=args.progress)
    width = max(len(k) for k in verdicts)
    for key, result_verdict in verdicts.items():
        print(f"{key.ljust(width)}  {result_verdict}")
    print(f"\nreport written to {args.out} ({time.perf_counter() - start:.0f} s, "
          f"{args.seeds} seed{'s' if args.seeds > 1 else ''})")
    return 0
