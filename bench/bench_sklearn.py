"""fastdrop.sklearn against scikit-learn's MLPClassifier on the bundled MNIST 5k subset.

    python -m pytest bench/bench_sklearn.py --benchmark-only   # epoch times (pytest-benchmark)
    python bench/bench_sklearn.py                # both targets: epoch ratios, then test errors
    python bench/bench_sklearn.py --epochs-only  # the epoch ratios alone (a minute)
    python bench/bench_sklearn.py --cpu          # CPU time instead of wall time
    python bench/bench_sklearn.py --errors-only --jobs 2   # the test errors, 2 fits at a time

Two targets (targets.py, SKLEARN):

- One epoch, hidden (512, 512), batch 200, adam, float32, on the 4000 training digits:
  `DropoutMLPClassifier` with dropout 0 and with dropout 0.5 against `MLPClassifier`.  An
  epoch is one ``partial_fit`` of a network that has already been built and stepped
  (so both sides pay their checks of X and y, neither its initialisation), timed in
  interleaved rounds (group "sklearn epoch").
- Test error on the 1000 test digits after 50 epochs of batch 100, hidden (1024, 1024):
  ``DropoutMLPClassifier(dropout=0.5, input_dropout=0.2, max_norm=3)`` against
  ``MLPClassifier`` at its best ``alpha`` of {1e-4, 1e-3, 1e-2} (best by the mean test
  error over the seeds, so the choice favours scikit-learn), mean ± sd over 3 seeds.  Both
  train the full 50 epochs (``n_iter_no_change=50``: the same budget, no early stop).  This
  trains 12 networks of 784-1024-1024-10 (tens of minutes on two cores), so pytest does not
  run it; the script does, after the epoch ratios.
"""
import os
import statistics
import sys
import time
import warnings

import sitepath

sitepath.prefer_built_source_tree()

import numpy as np  # noqa: E402  (after the choice of fastdrop)
import pytest  # noqa: E402
from conftest import write_after_capture  # noqa: E402

import fastdrop  # noqa: E402
from fastdrop.cli.timing import interleaved_medians  # noqa: E402
from fastdrop.datasets import load_mnist5k  # noqa: E402
from targets import SKLEARN, describe, verdict  # noqa: E402

sklearn = pytest.importorskip("sklearn")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402

from fastdrop.sklearn import DropoutMLPClassifier  # noqa: E402

EPOCH_PARAMS = dict(hidden_layer_sizes=(512, 512), batch_size=200, solver="adam", random_state=0)
EPOCH_ROUNDS = 7
ERROR_PARAMS = dict(hidden_layer_sizes=(1024, 1024), batch_size=100, max_iter=50,
                    n_iter_no_change=50, solver="adam")
DROPOUT_PARAMS = dict(dropout=0.5, input_dropout=0.2, max_norm=3.0)
ALPHAS = (1e-4, 1e-3, 1e-2)
SEEDS = (0, 1, 2)
CLASSES = np.arange(10)


def epoch_calls():
    """{name: one epoch of partial_fit} for the three estimators, each built and warmed."""
    X, y, _, _ = load_mnist5k()
    estimators = {"MLPClassifier": MLPClassifier(**EPOCH_PARAMS),
                  "DropoutMLPClassifier dropout=0": DropoutMLPClassifier(dropout=0.0,
                                                                         **EPOCH_PARAMS),
                  "DropoutMLPClassifier dropout=0.5": DropoutMLPClassifier(dropout=0.5,
                                                                           **EPOCH_PARAMS)}
    calls = {}
    for name, estimator in estimators.items():
        estimator.partial_fit(X, y, classes=CLASSES)
        calls[name] = (lambda e=estimator: e.partial_fit(X, y))
    return calls


RATIOS = (("epoch: dropout 0 / MLPClassifier", "DropoutMLPClassifier dropout=0", "MLPClassifier"),
          ("epoch: dropout 0.5 / MLPClassifier", "DropoutMLPClassifier dropout=0.5",
           "MLPClassifier"))


def format_ratios(medians):
    lines = []
    for label, num, den in RATIOS:
        if num in medians and den in medians:
            ratio = medians[num] / medians[den]
            target = SKLEARN.get(label)
            lines.append(f"  {label:38s} {ratio:6.3f}  ({medians[num]:.3f} s / "
                         f"{medians[den]:.3f} s)  {describe(target)} {verdict(ratio, target)}")
    return lines


def _test_error(name, estimator, data):
    """(name, seed, test error in %, seconds, epochs) of one fit, on one BLAS thread."""
    from threadpoolctl import threadpool_limits
    X, y, X_test, y_test = data
    with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        estimator.fit(X, y)
        seconds = time.perf_counter() - start
        error = 100.0 * (1.0 - estimator.score(X_test, y_test))
    return name, estimator.random_state, error, seconds, estimator.n_iter_


def measure_errors(seeds=SEEDS, alphas=ALPHAS, jobs=1, report=print):
    """Test errors (%) by configuration: {"dropout": [...], "alpha=...": [...]} over seeds.

    The 3 + 9 fits are independent; ``jobs`` of them run at a time, in loky processes,
    each on one BLAS thread (the errors do not depend on how many run at once)."""
    from joblib import Parallel, delayed
    data = load_mnist5k()
    runs = []
    for seed in seeds:
        runs.append(("dropout", DropoutMLPClassifier(random_state=seed, **DROPOUT_PARAMS,
                                                     **ERROR_PARAMS)))
        runs += [(f"alpha={alpha:g}", MLPClassifier(alpha=alpha, random_state=seed,
                                                    **ERROR_PARAMS)) for alpha in alphas]
    errors = {"dropout": []}
    errors.update({f"alpha={alpha:g}": [] for alpha in alphas})
    results = Parallel(n_jobs=jobs, return_as="generator")(
        delayed(_test_error)(name, estimator, data) for name, estimator in runs)
    for name, seed, error, seconds, epochs in results:
        errors[name].append(error)
        report(f"  seed {seed} {name:12s} test error {error:5.2f} %  ({seconds:.0f} s, "
               f"{epochs} epochs)", flush=True)
    return errors


def summarize_errors(errors):
    def mean_sd(values):
        return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)

    best = min((name for name in errors if name != "dropout"), key=lambda n: mean_sd(errors[n])[0])
    ours, theirs = mean_sd(errors["dropout"]), mean_sd(errors[best])
    margin = theirs[0] - ours[0]
    target = SKLEARN["test error: MLPClassifier best alpha - dropout (points)"]
    lines = [f"  {name:12s} {mean_sd(v)[0]:5.2f} ± {mean_sd(v)[1]:.2f} %"
             for name, v in errors.items()]
    lines.append(f"  best MLPClassifier: {best}; dropout {ours[0]:.2f} ± {ours[1]:.2f} % vs "
                 f"{theirs[0]:.2f} ± {theirs[1]:.2f} %: {margin:+.2f} points  "
                 f"{describe(target)} {verdict(margin, target)}")
    return lines


# -- pytest-benchmark ---------------------------------------------------------------------

_medians = {}
_calls = {}


@pytest.fixture(scope="module", autouse=True)
def report_ratios(request):
    yield
    if not _medians:
        return
    write_after_capture(request, ["sklearn epoch ratios (medians):"] + format_ratios(_medians))


@pytest.mark.parametrize("name", [den for _, _, den in RATIOS[:1]] + [num for _, num, _ in RATIOS])
def test_epoch(benchmark, name):
    if not _calls:
        _calls.update(epoch_calls())
    benchmark.group = "sklearn epoch 784-512-512-10 batch 200 adam"
    benchmark.extra_info.update(estimator=name, threads=fastdrop.get_num_threads())
    benchmark.pedantic(_calls[name], rounds=EPOCH_ROUNDS, iterations=1, warmup_rounds=1)
    _medians[name] = benchmark.stats.stats.median


# -- one-shot script ----------------------------------------------------------------------

def load_average():
    """The 1, 5 and 15 minute load averages, where the system tells them."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except (AttributeError, OSError):
        return "unknown"


def main(argv):
    clock = time.process_time if "--cpu" in argv else time.perf_counter
    jobs = int(argv[argv.index("--jobs") + 1]) if "--jobs" in argv else 1
    print(f"fastdrop.sklearn vs scikit-learn {sklearn.__version__}; kernels "
          f"{fastdrop.simd_level()}, {fastdrop.get_num_threads()} thread(s); load average "
          f"{load_average()}", flush=True)
    if "--errors-only" not in argv:
        epoch_ratios(clock)
    if "--epochs-only" in argv:
        return
    print("test error on MNIST 5k (4000 / 1000), 784-1024-1024-10, 50 epochs, batch 100:",
          flush=True)
    errors = measure_errors(jobs=jobs)
    print("\n".join(summarize_errors(errors)))
    print(f"load average at the end: {load_average()}")


def epoch_ratios(clock):
    medians = interleaved_medians(epoch_calls(), EPOCH_ROUNDS, warmup=1, round_seconds=0,
                                  clock=clock)
    print(f"one epoch, 784-512-512-10, batch 200, adam, float32, {EPOCH_ROUNDS} rounds, "
          f"{'CPU' if clock is time.process_time else 'wall'} time:")
    for name, median in medians.items():
        print(f"  {name:34s} {median:.3f} s")
    print("\n".join(format_ratios(medians)))
    print(f"load average after the epochs: {load_average()}", flush=True)
    return medians


if __name__ == "__main__":
    main(sys.argv[1:])
