"""One training step of a 784-1024-1024-10 ReLU MLP, batch 128, SGD with momentum.

    python -m pytest bench/bench_training.py --benchmark-only
    python bench/bench_training.py            # one-shot report of the ratios, no pytest

A step is forward, softmax cross-entropy, backward and the optimizer update, in float32,
on minibatches of the bundled MNIST subset.
Variants (group "training step"):

- ``plain``: no dropout;
- ``dropout``: dropout 0.2 on the input and 0.5 on the hidden layers, per example
  (`DropoutDense`, masks from the kernels, backward masked in place from the bits),
  at fastdrop's default thread count and at 1 kernel thread;
- ``dropout_split``: the same with separate `Dropout` + `Dense` layers;
- ``per_batch``: the same rates with one mask per minibatch (the thinned network is
  computed on the gathered kept rows of W);
- ``dropout_0.5`` / ``per_batch_0.5``: keep_prob 0.5 on the input too, and
  ``per_batch_0.5_thin`` with the model computing only the kept units across layers
  (``thin_per_batch=True``);
- ``torch_plain`` / ``torch_dropout``: the same model and step in PyTorch on the CPU,
  when torch is importable.

Epochs (group "training epoch"): one epoch of `fastdrop.nn.fit` (the trainer: its checks,
bookkeeping and the last, smaller minibatch included; no shuffling) against the same epoch
in PyTorch (the same minibatches in the same order), both with dropout, on warm models.

The ratios of medians within one run are printed, with their targets from targets.py, at
the end of the module's run and by the script.
"""
import itertools
import os
import sys
import time

import sitepath

sitepath.prefer_built_source_tree()

import pytest  # noqa: E402  (after the choice of fastdrop)
from conftest import write_after_capture  # noqa: E402

import fastdrop  # noqa: E402
from fastdrop.cli.timing import interleaved_medians  # noqa: E402
from fastdrop.datasets import load_mnist5k  # noqa: E402
from fastdrop.nn import SGD, SoftmaxCrossEntropy, build_mlp, fit  # noqa: E402
from targets import TRAINING, describe, verdict  # noqa: E402

SIZES = (784, 1024, 1024, 10)
BATCH = 128
LR, MOMENTUM = 0.01, 0.9  # small enough that no variant diverges over the benchmark's steps
SEED = 20240601
ROUNDS = int(os.environ.get("FASTDROP_BENCH_TRAIN_ROUNDS", "40"))
EPOCH_ROUNDS = int(os.environ.get("FASTDROP_BENCH_EPOCH_ROUNDS", "5"))

VARIANTS = {
    "plain": {},
    "dropout": {"input_rate": 0.2, "hidden_rate": 0.5},
    "dropout_split": {"input_rate": 0.2, "hidden_rate": 0.5, "fused": False},
    "per_batch": {"input_rate": 0.2, "hidden_rate": 0.5, "mode": "per_batch"},
    "dropout_0.5": {"input_rate": 0.5, "hidden_rate": 0.5},
    "per_batch_0.5": {"input_rate": 0.5, "hidden_rate": 0.5, "mode": "per_batch"},
    "per_batch_0.5_thin": {"input_rate": 0.5, "hidden_rate": 0.5, "mode": "per_batch",
                           "thin_per_batch": True},
}

RATIOS = (  # (name, numerator, denominator); the targets are in targets.TRAINING
    ("dropout / plain", "dropout", "plain"),
    ("dropout (1 kernel thread) / plain", "dropout@1t", "plain"),
    ("dropout_split / plain", "dropout_split", "plain"),
    ("per_batch / dropout", "per_batch", "dropout"),
    ("per_batch_0.5 / dropout_0.5", "per_batch_0.5", "dropout_0.5"),
    ("per_batch_0.5_thin / dropout_0.5", "per_batch_0.5_thin", "dropout_0.5"),
    ("dropout / torch_dropout", "dropout", "torch_dropout"),
    ("plain / torch_plain", "plain", "torch_plain"),
    ("torch_dropout / torch_plain", "torch_dropout", "torch_plain"),
    ("epoch: fit dropout / torch_dropout", "epoch_fit_dropout", "epoch_torch_dropout"),
)


def batches():
    """Minibatches of the bundled MNIST subset, cycled (so training stays finite)."""
    X, y = load_mnist5k()[:2]
    n = X.shape[0] // BATCH
    return [(X[i * BATCH:(i + 1) * BATCH], y[i * BATCH:(i + 1) * BATCH]) for i in range(n)]


def fastdrop_step(variant):
    """A closure running one training step of the variant's model (state carries over)."""
    model = build_mlp(SIZES, seed=SEED, **VARIANTS[variant])
    optimizer = SGD(lr=LR, momentum=MOMENTUM)
    loss = SoftmaxCrossEntropy()
    data = itertools.cycle(batches())

    def step():
        X, y = next(data)
        loss.forward(model.forward(X, training=True), y)
        model.backward(loss.backward(), need_input_grad=False, overwrite_grad=True)
        optimizer.step(model)

    return step


def fit_epoch():
    """A closure training one more epoch of the dropout model with `fit`, in data order."""
    model = build_mlp(SIZES, seed=SEED, **VARIANTS["dropout"])
    optimizer = SGD(lr=LR, momentum=MOMENTUM)
    X, y = load_mnist5k()[:2]

    def epoch():
        fit(model, X, y, epochs=1, batch_size=BATCH, optimizer=optimizer, progress=False,
            shuffle=False)

    return epoch


def torch_epoch(torch):
    """One epoch of the torch dropout model over fit's minibatches, in the same order."""
    X, y = (torch.from_numpy(array) for array in load_mnist5k()[:2])
    minibatches = [(X[i:i + BATCH], y[i:i + BATCH]) for i in range(0, X.shape[0], BATCH)]
    step = torch_step(torch, True, minibatches)
    count = len(minibatches)

    def epoch():
        for _ in range(count):
            step()

    return epoch


def torch_step(torch, dropout, data=None):
    nn = torch.nn
    torch.manual_seed(0)
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        if dropout:
            layers.append(nn.Dropout(0.2 if i == 0 else 0.5))
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(SIZES) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    data = itertools.cycle(data if data is not None else
                           [(torch.from_numpy(X), torch.from_numpy(y)) for X, y in batches()])

    def step():
        X, y = next(data)
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(X), y).backward()
        optimizer.step()

    return step


# -- pytest-benchmark ------------------------------------------------------------------

_medians = {}


@pytest.fixture(scope="module", autouse=True)
def report_ratios(request):
    yield
    if not _medians:
        return
    write_after_capture(request, format_ratios(_medians))


def _run(benchmark, name, step, **info):
    benchmark.group = f"training step {'-'.join(map(str, SIZES))} batch {BATCH}"
    benchmark.extra_info.update(variant=name, **info)
    for _ in range(3):  # warm-up: allocations, BLAS threads, optimizer state
        step()
    benchmark.pedantic(step, rounds=ROUNDS, iterations=1, warmup_rounds=2)
    _medians[name] = benchmark.stats.stats.median


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_fastdrop_step(benchmark, variant):
    _run(benchmark, variant, fastdrop_step(variant), threads=fastdrop.get_num_threads(),
         simd=fastdrop.simd_level())


def test_fastdrop_dropout_one_kernel_thread(benchmark):
    with fastdrop.config.threads(1):
        _run(benchmark, "dropout@1t", fastdrop_step("dropout"), threads=1, simd=fastdrop.simd_level())


@pytest.mark.parametrize("dropout", [False, True], ids=["torch_plain", "torch_dropout"])
def test_torch_step(benchmark, dropout):
    torch = pytest.importorskip("torch")
    name = "torch_dropout" if dropout else "torch_plain"
    _run(benchmark, name, torch_step(torch, dropout), threads=torch.get_num_threads())


def _run_epoch(benchmark, name, epoch):
    benchmark.group = f"training epoch {'-'.join(map(str, SIZES))} batch {BATCH}"
    benchmark.extra_info.update(variant=name)
    epoch()  # warm-up: allocations, BLAS threads, optimizer state
    benchmark.pedantic(epoch, rounds=EPOCH_ROUNDS, iterations=1, warmup_rounds=0)
    _medians[name] = benchmark.stats.stats.median


def test_fit_epoch(benchmark):
    _run_epoch(benchmark, "epoch_fit_dropout", fit_epoch())


def test_torch_epoch(benchmark):
    torch = pytest.importorskip("torch")
    _run_epoch(benchmark, "epoch_torch_dropout", torch_epoch(torch))


def format_ratios(medians):
    lines = ["training-step ratios (medians):"]
    for label, num, den in RATIOS:
        if num not in medians or den not in medians:
            continue
        ratio = medians[num] / medians[den]
        target = TRAINING.get(label)
        lines.append(f"  {label:36s} {ratio:6.3f}  ({1e3 * medians[num]:.2f} ms / "
                     f"{1e3 * medians[den]:.2f} ms)  {describe(target)} {verdict(ratio, target)}")
    return lines


# -- one-shot script ---------------------------------------------------------------------

def main(rounds=ROUNDS, clock=time.perf_counter):
    """Interleave the variants round by round (fair under load) and print medians and ratios.

    ``clock=time.process_time`` (``--cpu`` on the command line) measures CPU time instead
    of wall time: on a busy machine, run with OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
    and --cpu for ratios that other processes do not distort.
    """
    steps = {name: fastdrop_step(name) for name in VARIANTS}
    one_thread = fastdrop_step("dropout")

    def dropout_one_thread():
        with fastdrop.config.threads(1):
            one_thread()

    steps["dropout@1t"] = dropout_one_thread
    phases = [steps]
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        # a phase of its own: torch's OpenMP workers keep spinning after each op and
        # would slow down whichever fastdrop step ran next
        phases.append({"torch_plain": torch_step(torch, False),
                       "torch_dropout": torch_step(torch, True)})
    medians = {}
    for phase in phases:
        medians.update(interleaved_medians(phase, rounds, warmup=3, clock=clock))
    if torch is not None:
        # whole epochs, alternating (torch's spinning workers slow the next call of either)
        medians.update(interleaved_medians(
            {"epoch_fit_dropout": fit_epoch(), "epoch_torch_dropout": torch_epoch(torch)},
            EPOCH_ROUNDS, warmup=1, round_seconds=0, clock=clock))
    print(f"one training step, {'-'.join(map(str, SIZES))}, batch {BATCH}, float32, "
          f"SGD momentum; kernels {fastdrop.simd_level()}, {fastdrop.get_num_threads()} thread(s); "
          f"{'CPU' if clock is time.process_time else 'wall'} time, {rounds} rounds")
    for name, median in medians.items():
        print(f"  {name:16s} {1e3 * median:8.2f} ms")
    print("\n".join(format_ratios(medians)))
    return medians


if __name__ == "__main__":
    main(clock=time.process_time if "--cpu" in sys.argv[1:] else time.perf_counter)
