"""`fastdrop ensemble`: weight scaling vs NWGM vs arithmetic mean vs MC, on one screen.

Trains a small dropout MLP on the bundled MNIST subset, with two narrow dropout layers
whose 2^n thinned networks can be enumerated:

    [dropout 0.2] -> Dense 256 -> ReLU -> [dropout 0.5] -> Dense n -> tanh
        -> [dropout A, 0.2] -> Dense n -> tanh -> [dropout B, 0.2] -> Dense 10

Dropout A is followed by an affine map *and a tanh*, so weight scaling only approximates
the NWGM there; dropout B feeds one affine map and the softmax, where weight scaling *is*
the NWGM of all 2^n thinned networks.  The tables show both, then what
MC dropout over every dropout layer says about the test set.
"""
import sys
import time

import numpy as np

from ..datasets import load_mnist5k
from ..nn import SGD, Dense, Dropout, ReLU, Sequential, Tanh, fit, layer_seeds
from ..theory import compare, mc_predict


def add_arguments(parser):
    parser.add_argument("--units", type=int, default=12,
                        help="width n of the two enumerated dropout layers (2^n thinned nets; 1..16)")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    parser.add_argument("--inputs", type=int, default=500,
                        help="test digits the enumeration runs on (default 500)")
    parser.add_argument("--T", type=int, default=1000, help="MC passes (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed for weights, data order and masks")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no training progress on stderr")


def build_model(units, seed=0):
    """The demo's untrained model, its two enumerated dropout layers ``units`` wide."""
    s = layer_seeds(seed, 8)
    return Sequential([
        Dropout(0.2, seed=s[0]), Dense(784, 256, seed=s[1]), ReLU(),
        Dropout(0.5, seed=s[2]), Dense(256, units, seed=s[3]), Tanh(),
        Dropout(0.2, seed=s[4]), Dense(units, units, seed=s[5]), Tanh(),
        Dropout(0.2, seed=s[6]), Dense(units, 10, seed=s[7]),
    ])


def _check(args):
    if not 1 <= args.units <= 16:
        return "--units must be between 1 and 16 (the demo enumerates 2^units thinned nets)"
    for name in ("epochs", "inputs", "T"):
        if getattr(args, name) < 1:
            return f"--{name} must be at least 1"
    if args.seed < 0:
        return "--seed must be >= 0"
    return None


def run(args):
    problem = _check(args)
    if problem:
        print(f"fastdrop ensemble: {problem}", file=sys.stderr)
        return 2
    X_train, y_train, X_test, y_test = load_mnist5k()
    model = build_model(args.units, args.seed)
    start = time.perf_counter()
    fit(model, X_train, y_train, epochs=args.epochs, batch_size=100,
        optimizer=SGD(lr=0.05, momentum=0.9, max_norm=3.0), seed=args.seed, progress=args.progress)
    seconds = time.perf_counter() - start
    model.eval()
    error = float(np.mean(model.predict(X_test) != y_test))
    print(f"784-256-{args.units}-{args.units}-10 MLP, dropout 0.2/0.5/0.2/0.2, trained {args.epochs} "
          f"epochs on 4000 digits ({seconds:.1f} s); weight-scaling test error {100 * error:.2f} %\n")

    X = X_test[:args.inputs]
    y = y_test[:args.inputs]
    for layer, note in ((6, "followed by Dense + tanh: weight scaling only approximates the NWGM"),
                        (9, "feeds Dense + softmax only: weight scaling IS the NWGM")):
        result = compare(model, X, layer, T=args.T, seed=args.seed)
        print(f"[{note}]")
        print(result)
        errors = {name: 100 * float(np.mean(p.argmax(axis=1) != y)) for name, p in
                  (("weight scaling", result.deterministic), ("NWGM", result.nwgm),
                   ("arith. mean", result.arithmetic), ("MC", result.mc))}
        print("test error %: " + ", ".join(f"{k} {v:.2f}" for k, v in errors.items()) + "\n")

    mc = mc_predict(model, X_test, args.T, seed=args.seed)
    wrong = mc.mean.argmax(axis=1) != y_test
    print(f"MC dropout, every dropout layer, T = {args.T} passes on {X_test.shape[0]} test digits: "
          f"test error {100 * wrong.mean():.2f} %")
    if wrong.any() and (~wrong).any():
        print(f"  predictive entropy (nats): right {mc.predictive_entropy[~wrong].mean():.3f}, "
              f"wrong {mc.predictive_entropy[wrong].mean():.3f};  mutual information (BALD): "
              f"right {mc.mutual_information[~wrong].mean():.4f}, "
              f"wrong {mc.mutual_information[wrong].mean():.4f}")
    return 0
