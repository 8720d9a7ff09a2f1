"""`fastdrop demo`: an MLP on the bundled MNIST subset, without and with dropout.

Trains 784-1024-1024-10 (ReLU, float32) on the fixed 4000/1000 split three ways — no
regularization, L2 weight decay, and dropout (0.2 on the input, 0.5 on the hidden
layers, max-norm) — and prints train error, test error, time and the share of the
training-step time spent in dropout.  ``--mode per_batch`` adds a per-batch dropout row
(one mask per minibatch: cheaper, a different algorithm) next to the per-example one.

The default run is short (a few epochs, SGD with momentum and an exponentially decaying
learning rate) so it ends in well under two minutes on two cores; ``--full`` uses the
reference setting (SGD lr 0.05, momentum 0.9, batch 100, 100 epochs, constant rate).
"""
import sys
import time

from .. import __version__, config, get_num_threads, simd_level
from ..datasets import load_mnist5k
from ..nn import SGD, ExponentialLR, build_mlp, evaluate, fit

DEFAULT_EPOCHS = 20
FULL_EPOCHS = 100
SIZES = (784, 1024, 1024, 10)
LR = 0.05
MOMENTUM = 0.9
BATCH_SIZE = 100
WEIGHT_DECAY = 1e-3
MAX_NORM = 3.0
INPUT_RATE = 0.2
HIDDEN_RATE = 0.5
FINAL_LR_FACTOR = 0.1  # the default run decays the rate to this fraction by its last epoch


def add_arguments(parser):
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"epochs per model (default {DEFAULT_EPOCHS}; {FULL_EPOCHS} with --full)")
    parser.add_argument("--full", action="store_true",
                        help="the reference setting: lr 0.05 constant, momentum 0.9, batch 100, "
                             f"{FULL_EPOCHS} epochs (takes several minutes)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the weights, the dropout masks and the minibatch order")
    parser.add_argument("--mode", choices=("per_sample", "per_batch"), default="per_sample",
                        help="per_batch adds a row with one dropout mask per minibatch "
                             "next to per-example dropout")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for the dropout kernels (default: fastdrop's own, "
                             "OMP_NUM_THREADS or every core; a minibatch's dropout is below the "
                             "size where the kernels share work out anyway)")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="do not show per-epoch progress")


def _configurations(mode):
    rows = [
        ("no regularization", {}, {}),
        (f"L2 (weight decay {WEIGHT_DECAY:g})", {}, {"weight_decay": WEIGHT_DECAY}),
        (f"dropout {INPUT_RATE:g}/{HIDDEN_RATE:g} + max-norm {MAX_NORM:g}",
         {"input_rate": INPUT_RATE, "hidden_rate": HIDDEN_RATE}, {"max_norm": MAX_NORM}),
    ]
    if mode == "per_batch":
        rows.append(("  same, one mask per batch",
                     {"input_rate": INPUT_RATE, "hidden_rate": HIDDEN_RATE, "mode": "per_batch"},
                     {"max_norm": MAX_NORM}))
    return rows


def run(args):
    epochs = args.epochs if args.epochs is not None else (FULL_EPOCHS if args.full else DEFAULT_EPOCHS)
    if epochs < 1:
        print("fastdrop demo: --epochs must be at least 1", file=sys.stderr)
        return 2
    if args.threads is not None and args.threads < 1:
        print("fastdrop demo: --threads must be at least 1", file=sys.stderr)
        return 2
    if args.threads is None:
        return _train_and_report(args, epochs)
    with config.threads(args.threads):
        return _train_and_report(args, epochs)


def _train_and_report(args, epochs):
    X_train, y_train, X_test, y_test = load_mnist5k()
    schedule_text = "constant" if args.full else f"decaying to {FINAL_LR_FACTOR:g}x"
    print(f"fastdrop {__version__} demo: MLP {'-'.join(map(str, SIZES))} (ReLU, float32) on the "
          f"bundled MNIST subset ({len(y_train)} train / {len(y_test)} test)")
    print(f"SGD lr {LR:g} ({schedule_text}), momentum {MOMENTUM:g}, batch {BATCH_SIZE}, "
          f"{epochs} epochs, seed {args.seed}; kernels: {simd_level()}, "
          f"{get_num_threads()} thread(s)")
    print()
    results = []
    for name, model_args, optimizer_args in _configurations(args.mode):
        model = build_mlp(SIZES, seed=args.seed, **model_args)
        schedule = None if args.full else ExponentialLR(FINAL_LR_FACTOR ** (1.0 / max(1, epochs - 1)))
        optimizer = SGD(lr=LR, momentum=MOMENTUM, schedule=schedule, **optimizer_args)
        if args.progress:
            print(f"training: {name.strip()}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        history = fit(model, X_train, y_train, epochs=epochs, batch_size=BATCH_SIZE,
                      optimizer=optimizer, seed=args.seed, progress=args.progress)
        seconds = time.perf_counter() - start
        train_error = evaluate(model, X_train, y_train)[1]
        test_error = evaluate(model, X_test, y_test)[1]
        results.append((name, train_error, test_error, seconds, history))
    print(format_table(results))
    by_name = {name: test for name, _, test, _, _ in results}
    plain = by_name["no regularization"]
    dropout_name = _configurations("per_sample")[2][0]
    print()
    print(f"dropout changes the test error by {100 * (by_name[dropout_name] - plain):+.1f} points "
          f"against no regularization.")
    return 0


def format_table(results):
    header = (f"{'method':38s} {'train err':>9s} {'test err':>9s} {'time':>7s} "
              f"{'ms/step':>8s} {'in dropout':>10s}")
    lines = [header, "-" * len(header)]
    for name, train_error, test_error, seconds, history in results:
        step_ms = 1e3 * history.step_seconds / max(1, history.steps)
        share = f"{100 * history.dropout_share:.1f} %" if history.dropout_seconds else "-"
        lines.append(f"{name:38s} {100 * train_error:8.2f}% {100 * test_error:8.2f}% "
                     f"{seconds:6.1f}s {step_ms:8.2f} {share:>10s}")
    return "\n".join(lines)
