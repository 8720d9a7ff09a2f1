"""MC dropout throughput: T stochastic passes of a 784-1024-1024-10 MLP over 1000 inputs.

    python -m pytest bench/bench_mc.py --benchmark-only         # pytest-benchmark table
    FASTDROP_BENCH_MC_T=50 python -m pytest bench/bench_mc.py --benchmark-only
    python bench/bench_mc.py                                    # one-shot report

Three implementations of the same computation (dropout 0.2 on the input, 0.5 on both
hidden layers, ReLU, the same weights, passes stacked the same way: 16 passes of the
1000 inputs per GEMM):

- ``fastdrop.ensemble.mc_predict`` (masks from the Philox kernels, fused with the scaling);
- the same loop with NumPy masks: ``h * (rng.random(h.shape) < keep) / keep``;
- PyTorch with dropout left on (``F.dropout(training=True)`` under ``no_grad``), when
  torch is importable; skipped cleanly otherwise.

Each reports passes per second and the share of its time spent making and applying
masks (the target for fastdrop: at most 5 %).  T defaults to 1000
(``FASTDROP_BENCH_MC_T`` overrides it for quick runs).
"""
import os
import sys
import time

if __name__ == "__main__":  # run as a script: use the tree's fastdrop, not an installed one
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

import fastdrop
from fastdrop import ensemble
from fastdrop.model import build_mlp

SIZES = (784, 1024, 1024, 10)
INPUT_RATE, HIDDEN_RATE = 0.2, 0.5
BATCH = 1000
PASSES_PER_CHUNK = 16  # what mc_predict's default 64 MB chunk gives for 1000 x 1024 float32
SEED = 20240601


def mc_passes():
    text = os.environ.get("FASTDROP_BENCH_MC_T", "").strip()
    if not text:
        return 1000
    value = int(text)
    if value < 1:
        raise ValueError(f"FASTDROP_BENCH_MC_T must be >= 1, got {value}")
    return value


def make_problem():
    """The model (fused DropoutDense layers, float32) and 1000 inputs in [0, 1]."""
    model = build_mlp(SIZES, input_rate=INPUT_RATE, hidden_rate=HIDDEN_RATE, seed=SEED)
    X = np.random.default_rng(SEED).random((BATCH, SIZES[0]), dtype=np.float32)
    return model, X


def affine_layers(model):
    """(W, b, keep_prob) of each affine layer, keep_prob of the dropout on its input."""
    return [(layer.W, layer.b, getattr(layer, "keep_prob", 1.0))
            for layer in model.layers if hasattr(layer, "W")]


def _softmax_sum(logits, passes):
    z = logits.reshape(passes, BATCH, -1).astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    return p.sum(axis=0)


# -- the three implementations -------------------------------------------------------------------

def run_fastdrop(model, X, T):
    """mc_predict, with the time inside its dropout kernel calls measured."""
    mask_seconds = 0.0
    kernel = ensemble._dropout

    def timed_dropout(*args, **kwargs):
        nonlocal mask_seconds
        start = time.perf_counter()
        out = kernel(*args, **kwargs)
        mask_seconds += time.perf_counter() - start
        return out

    ensemble._dropout = timed_dropout
    try:
        start = time.perf_counter()
        result = ensemble.mc_predict(model, X, T, seed=SEED)
        seconds = time.perf_counter() - start
    finally:
        ensemble._dropout = kernel
    return seconds, mask_seconds, result.mean


def run_numpy(model, X, T):
    """The same stacked loop with masks from numpy.random.Generator."""
    rng = np.random.default_rng(SEED)
    layers = affine_layers(model)
    total = np.zeros((BATCH, SIZES[-1]))
    mask_seconds = 0.0
    start = time.perf_counter()
    for t0 in range(0, T, PASSES_PER_CHUNK):
        passes = min(PASSES_PER_CHUNK, T - t0)
        h = np.tile(X, (passes, 1))
        for i, (W, b, keep) in enumerate(layers):
            if keep < 1.0:
                m0 = time.perf_counter()
                h = h * (rng.random(h.shape, dtype=np.float32) < keep) * np.float32(1.0 / keep)
                mask_seconds += time.perf_counter() - m0
            h = h @ W + b
            if i < len(layers) - 1:
                np.maximum(h, 0, out=h)
        total += _softmax_sum(h, passes)
    return time.perf_counter() - start, mask_seconds, total / T


def torch_module():
    try:
        import torch
    except ImportError:
        return None
    return torch


def run_torch(model, X, T, torch):
    """PyTorch, dropout on (training=True), same weights and stacking."""
    F = torch.nn.functional
    layers = [(torch.from_numpy(np.ascontiguousarray(W)), torch.from_numpy(b), keep)
              for W, b, keep in affine_layers(model)]
    x = torch.from_numpy(X)
    torch.manual_seed(SEED)
    total = np.zeros((BATCH, SIZES[-1]))
    mask_seconds = 0.0
    start = time.perf_counter()
    with torch.no_grad():
        for t0 in range(0, T, PASSES_PER_CHUNK):
            passes = min(PASSES_PER_CHUNK, T - t0)
            h = x.repeat(passes, 1)
            for i, (W, b, keep) in enumerate(layers):
                if keep < 1.0:
                    m0 = time.perf_counter()
                    h = F.dropout(h, p=1.0 - keep, training=True)
                    mask_seconds += time.perf_counter() - m0
                h = torch.addmm(b, h, W)
                if i < len(layers) - 1:
                    h = torch.relu_(h)
            total += _softmax_sum(h.numpy(), passes)
    return time.perf_counter() - start, mask_seconds, total / T


def check_same_estimate(mean, reference, T):
    """Two MC estimates of the same average agree to within sampling noise."""
    tolerance = 0.02 + 5.0 / np.sqrt(T)
    difference = float(np.max(np.abs(mean - reference)))
    assert difference < tolerance, (difference, tolerance)


# -- pytest-benchmark ---------------------------------------------------------------------------

try:
    import pytest
except ImportError:  # the script report does not need pytest
    pytest = None

if pytest is not None:
    @pytest.fixture(scope="module")
    def problem():
        model, X = make_problem()
        return model, X, mc_passes()

    @pytest.fixture(scope="module")
    def fastdrop_mean(problem):
        model, X, T = problem
        return ensemble.mc_predict(model, X, min(T, 64), seed=SEED).mean

    def _bench(benchmark, name, runner, T):
        outcome = {}

        def once():
            outcome["result"] = runner()

        rounds = 1 if T >= 200 else 3
        benchmark.group = f"MC dropout, T={T} passes of 784-1024-1024-10 over {BATCH} inputs"
        benchmark.pedantic(once, rounds=rounds, iterations=1, warmup_rounds=0)
        seconds, mask_seconds, mean = outcome["result"]
        benchmark.extra_info.update(impl=name, T=T, passes_per_second=T / seconds,
                                    mask_share=mask_seconds / seconds,
                                    threads=fastdrop.get_num_threads(), simd=fastdrop.simd_level())
        return mean, mask_seconds / seconds

    def test_mc_fastdrop(benchmark, problem, fastdrop_mean):
        model, X, T = problem
        mean, _ = _bench(benchmark, "fastdrop.ensemble.mc_predict",
                         lambda: run_fastdrop(model, X, T), T)
        check_same_estimate(mean, fastdrop_mean, min(T, 64))

    def test_mc_numpy_masks(benchmark, problem, fastdrop_mean):
        model, X, T = problem
        mean, _ = _bench(benchmark, "NumPy masks", lambda: run_numpy(model, X, T), T)
        check_same_estimate(mean, fastdrop_mean, min(T, 64))

    def test_mc_torch(benchmark, problem, fastdrop_mean):
        torch = pytest.importorskip("torch")
        model, X, T = problem
        mean, _ = _bench(benchmark, "torch F.dropout", lambda: run_torch(model, X, T, torch), T)
        check_same_estimate(mean, fastdrop_mean, min(T, 64))


# -- one-shot report -------------------------------------------------------------------------------

def main():
    T = mc_passes()
    model, X = make_problem()
    torch = torch_module()
    print(f"MC dropout: T = {T} passes of {'-'.join(map(str, SIZES))} (dropout {INPUT_RATE}/"
          f"{HIDDEN_RATE}/{HIDDEN_RATE}) over {BATCH} inputs, {PASSES_PER_CHUNK} passes per GEMM; "
          f"fastdrop {fastdrop.simd_level()}, {fastdrop.get_num_threads()} threads")
    runs = [("fastdrop mc_predict", lambda: run_fastdrop(model, X, T)),
            ("NumPy masks", lambda: run_numpy(model, X, T))]
    if torch is not None:
        runs.append((f"torch {torch.__version__} F.dropout", lambda: run_torch(model, X, T, torch)))
    else:
        print("(torch is not installed: its row is skipped)")
    results = []
    for name, runner in runs:
        seconds, mask_seconds, mean = runner()
        results.append((name, seconds, mask_seconds, mean))
    reference = results[0][3]
    print(f"{'implementation':28s} {'seconds':>9s} {'passes/s':>9s} {'mask share':>11s} "
          f"{'vs fastdrop':>11s} {'max|mean diff|':>15s}")
    for name, seconds, mask_seconds, mean in results:
        print(f"{name:28s} {seconds:9.2f} {T / seconds:9.1f} {100 * mask_seconds / seconds:10.1f}% "
              f"{seconds / results[0][1]:10.2f}x {np.max(np.abs(mean - reference)):15.4f}")
    share = results[0][2] / results[0][1]
    print(f"fastdrop mask share {100 * share:.1f} % (target <= 5 %): {'met' if share <= 0.05 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
