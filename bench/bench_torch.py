"""fastdrop.torch next to torch.nn.Dropout, in one process.

    python -m pytest bench/bench_torch.py --benchmark-only   # pytest-benchmark tables
    python bench/bench_torch.py [--rounds N]    # interleaved rounds, median ratios

(from a source tree built in place, run the script with PYTHONPATH=. ).

Two workloads, each run with ``fastdrop.torch.Dropout`` and with ``torch.nn.Dropout``:

- forward + backward of one dropout (p = 0.5) on a 2^22-element float32 tensor;
- one full training step (forward, cross-entropy, backward, SGD update) of the
  784-1024-1024-10 ReLU MLP with dropout 0.2 on the input and 0.5 after each hidden
  layer, on a batch of 128 bundled digits.

The script alternates the two implementations round by round (so load on a shared
machine hits both alike) and prints the median of the per-round ratios torch / fastdrop.
Both libraries run with their default thread counts unless ``--threads`` sets both.

``--door`` times the door itself at 2^10, 2^17, 2^20 and 2^24 float32 elements, each
ratio the median over interleaved rounds: the door's forward (``fastdrop.torch.dropout``,
no grad) over fastdrop's NumPy call (both allocating their output), the registered
operator's own cost over the NumPy call (microseconds added), and forward + backward
against torch eager ``F.dropout`` and ``torch.compile``d ``F.dropout`` (inductor).
"""
import argparse
import statistics
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fastdrop  # noqa: E402
import fastdrop.torch as fdt  # noqa: E402
from fastdrop.datasets import load_mnist5k  # noqa: E402

SIZE = 1 << 22
BATCH = 128
SEED = 20240601
IMPLEMENTATIONS = {"fastdrop": fdt.Dropout, "torch": torch.nn.Dropout}


def dropout_fwd_bwd(dropout_class):
    """A callable running forward + backward of one dropout on a 2^22 float32 tensor."""
    generator = torch.Generator().manual_seed(SEED)
    x = torch.randn(SIZE, generator=generator, requires_grad=True)
    grad = torch.randn(SIZE, generator=generator)
    module = dropout_class(0.5)

    def step():
        x.grad = None
        module(x).backward(grad)

    return step


def mlp(dropout_class):
    torch.manual_seed(SEED)
    return torch.nn.Sequential(
        dropout_class(0.2), torch.nn.Linear(784, 1024), torch.nn.ReLU(),
        dropout_class(0.5), torch.nn.Linear(1024, 1024), torch.nn.ReLU(),
        dropout_class(0.5), torch.nn.Linear(1024, 10))


def training_step(dropout_class):
    """A callable running one SGD step of the 784-1024-1024-10 MLP on a batch of digits."""
    X_train, y_train, _, _ = load_mnist5k()
    X, y = torch.from_numpy(X_train[:BATCH]), torch.from_numpy(y_train[:BATCH])
    model = mlp(dropout_class)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    def step():
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(X), y).backward()
        optimizer.step()

    return step


WORKLOADS = {"dropout fwd+bwd float32 n=2^22": dropout_fwd_bwd,
             "MLP 784-1024-1024-10 training step": training_step}


def check_fastdrop_is_exact():
    """The timed module computes what fastdrop.reference does (so nothing broken is timed)."""
    module = fdt.Dropout(0.5, seed=SEED)
    x = torch.randn(4099)
    expected = fastdrop.reference.dropout(x.numpy(), 0.5, seed=SEED, stream=0)
    assert np.array_equal(module(x).numpy().view(np.uint32), expected.view(np.uint32))


# -- pytest-benchmark -----------------------------------------------------------------------

@pytest.mark.parametrize("impl", list(IMPLEMENTATIONS))
@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_torch_dropout(benchmark, workload, impl):
    if impl == "fastdrop":
        check_fastdrop_is_exact()
    step = WORKLOADS[workload](IMPLEMENTATIONS[impl])
    step()  # warm up: first-touch allocations, thread pools
    benchmark.group = workload
    benchmark.extra_info.update(impl=impl, torch_threads=torch.get_num_threads(),
                                fastdrop_threads=fastdrop.get_num_threads())
    benchmark(step)


# -- script: interleaved rounds -------------------------------------------------------------

def seconds_per_call(step, calls):
    start = time.perf_counter()
    for _ in range(calls):
        step()
    return (time.perf_counter() - start) / calls


def interleaved_ratio(workload, rounds, calls):
    """Median over rounds of (torch time / fastdrop time), the two run back to back each round."""
    steps = {impl: WORKLOADS[workload](cls) for impl, cls in IMPLEMENTATIONS.items()}
    for step in steps.values():
        step()
    times = {impl: [] for impl in steps}
    for _ in range(rounds):
        for impl, step in steps.items():
            times[impl].append(seconds_per_call(step, calls))
    ratios = [t / f for t, f in zip(times["torch"], times["fastdrop"])]
    medians = {impl: statistics.median(values) for impl, values in times.items()}
    return statistics.median(ratios), medians


# -- the door against the NumPy call, torch eager and torch.compile ----------------------------

DOOR_SIZES = (10, 17, 20, 24)


def door_steps(exponent):
    """{name: callable} of the door's timed calls at 2^exponent float32 elements."""
    from fastdrop.torch import _ops

    size = 1 << exponent
    generator = torch.Generator().manual_seed(SEED)
    x = torch.randn(size, generator=generator)
    x_numpy = x.numpy()
    x_grad = x.clone().requires_grad_()
    grad = torch.randn(size, generator=generator)
    rng = torch.tensor([1, 2, 3, 0])
    compiled = torch.compile(lambda t: torch.nn.functional.dropout(t, 0.5))

    def fwd_bwd(function):
        def step():
            x_grad.grad = None
            function(x_grad).backward(grad)
        return step

    with torch.no_grad():
        return {
            "numpy forward": lambda: fastdrop.dropout(x_numpy, 0.5, seed=1, stream=2),
            "door forward": lambda: fdt.dropout(x, 0.5),
            "op forward": lambda: _ops.dropout_op(x, rng, 0.5, 0),
            "door fwd+bwd": fwd_bwd(lambda t: fdt.dropout(t, 0.5)),
            "eager fwd+bwd": fwd_bwd(lambda t: torch.nn.functional.dropout(t, 0.5)),
            "compiled fwd+bwd": fwd_bwd(compiled),
        }


def door_table(rounds):
    for exponent in DOOR_SIZES:
        steps = door_steps(exponent)
        calls = max(1, (1 << 22) >> exponent) if exponent > 12 else 200
        with torch.no_grad():
            for name in ("numpy forward", "door forward", "op forward"):
                steps[name]()
        for name in ("door fwd+bwd", "eager fwd+bwd", "compiled fwd+bwd"):
            steps[name]()
        times = {name: [] for name in steps}
        for _ in range(rounds):
            for name, step in steps.items():
                if "fwd+bwd" in name:
                    times[name].append(seconds_per_call(step, calls))
                else:
                    with torch.no_grad():
                        times[name].append(seconds_per_call(step, calls))

        def ratio(a, b):
            return statistics.median(x / y for x, y in zip(times[a], times[b]))

        added = statistics.median(o - n for o, n in zip(times["op forward"], times["numpy forward"]))
        print(f"2^{exponent}: door forward / numpy {ratio('door forward', 'numpy forward'):.2f}x, "
              f"op adds {added * 1e6:.1f} us; fwd+bwd eager/door "
              f"{ratio('eager fwd+bwd', 'door fwd+bwd'):.1f}x, compiled/door "
              f"{ratio('compiled fwd+bwd', 'door fwd+bwd'):.1f}x (door fwd+bwd "
              f"{statistics.median(times['door fwd+bwd']) * 1e6:.0f} us)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds [15]")
    parser.add_argument("--door", action="store_true",
                        help="only the door's table (forward, operator cost, fwd+bwd peers)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both torch and fastdrop [each library's default]")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
        fastdrop.set_num_threads(args.threads)
    check_fastdrop_is_exact()
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), fastdrop "
          f"{fastdrop.__version__} ({fastdrop.get_num_threads()} threads, {fastdrop.simd_level()})")
    if args.door:
        door_table(args.rounds)
        return
    for workload, calls in zip(WORKLOADS, (5, 3)):
        ratio, medians = interleaved_ratio(workload, args.rounds, calls)
        print(f"{workload}: fastdrop {medians['fastdrop'] * 1e3:.2f} ms, torch "
              f"{medians['torch'] * 1e3:.2f} ms, median ratio torch/fastdrop {ratio:.2f}x")


if __name__ == "__main__":
    main()
