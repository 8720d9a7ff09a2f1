"""MC dropout throughput: T stochastic passes of a 784-1024-1024-10 MLP over 1000 inputs.

    python -m pytest bench/bench_mc.py --benchmark-only         # pytest-benchmark table
    FASTDROP_BENCH_MC_T=300 python -m pytest bench/bench_mc.py --benchmark-only
    python bench/bench_mc.py                                    # one-shot report

The same computation (dropout 0.2 on the input, 0.5 on both hidden layers, ReLU, the same
weights) five ways:

- ``fastdrop.theory.mc_predict`` itself (total time): row tiles aligned on the global row
  index, passes grouped to fill a product, the BLAS on one thread inside the tiles and the
  tiles on fastdrop's threads, so every row gets the same bits however the work is cut;
- ``mc_predict`` stacked: the path mc_predict took before the row tiles (whole passes
  stacked 16 to a GEMM on the BLAS's own threads, whose rounding follows the grouping),
  kept for models with variant noise layers and timed here as the baseline of the tiles'
  cost (target in targets.py);
- the stacked loop written out with ``fastdrop.dropout`` masks, timing the mask calls;
- the same loop with NumPy masks: ``h * (rng.random(h.shape) < keep) / keep``;
- PyTorch with dropout left on (``F.dropout(training=True)`` under ``no_grad``), when
  torch is importable; skipped cleanly otherwise.

The three loops stack whole passes 16 to a GEMM, as the stacked path does.

Each loop reports passes per second and the share of its time spent making and applying
masks (target for fastdrop in targets.py).  T defaults to 16 passes, one stacked chunk,
so the group stays short; ``FASTDROP_BENCH_MC_T`` sets more (300 for the mask-share
target), ``FASTDROP_BENCH_MC_ROUNDS`` the script's interleaved rounds (default 3).
"""
import os
import statistics
import sys
import time

import sitepath

sitepath.prefer_built_source_tree()

import numpy as np  # noqa: E402  (after the choice of fastdrop)

import fastdrop  # noqa: E402
from fastdrop import theory  # noqa: E402
from fastdrop.cli.timing import interleaved_times  # noqa: E402
from fastdrop.nn import build_mlp  # noqa: E402
from fastdrop.theory import ensemble  # noqa: E402
from targets import MC_MASK_SHARE, MC_TILE_COST, describe, verdict  # noqa: E402

SIZES = (784, 1024, 1024, 10)
INPUT_RATE, HIDDEN_RATE = 0.2, 0.5
BATCH = 1000
PASSES_PER_CHUNK = 16  # what mc_predict's default 64 MB chunk gives for 1000 x 1024 float32
SEED = 20240601


def _positive_env(name, default):
    text = os.environ.get(name, "").strip()
    value = int(text) if text else default
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def mc_passes():
    return _positive_env("FASTDROP_BENCH_MC_T", PASSES_PER_CHUNK)


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


# -- the implementations: each returns (seconds, mask seconds or None, mean probabilities) ---------

def run_mc_predict(model, X, T):
    start = time.perf_counter()
    mean = theory.mc_predict(model, X, T, seed=SEED).mean
    return time.perf_counter() - start, None, mean


def run_mc_stacked(model, X, T):
    start = time.perf_counter()
    all_layers, sites = ensemble._mc_sites(model, None)
    mean = ensemble._mc_predict_stacked(all_layers, sites, X, T, SEED, False,
                                        ensemble._DEFAULT_CHUNK_BYTES).mean
    return time.perf_counter() - start, None, mean


def fastdrop_masks(h, keep, layer, first_pass):
    return fastdrop.dropout(h, keep_prob=keep, seed=SEED, stream=layer,
                            offset=first_pass * h.size // PASSES_PER_CHUNK, out=h)


def numpy_masks(rng):
    def masked(h, keep, layer, first_pass):
        return h * (rng.random(h.shape, dtype=np.float32) < keep) * np.float32(1.0 / keep)
    return masked


def run_loop(model, X, T, masked):
    """The stacked loop, with `masked(h, keep, layer, first_pass)` dropping units."""
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
                h = masked(h, keep, i, t0)
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


def runners(model, X, T, torch=None):
    """{name: no-argument callable returning (seconds, mask seconds or None, mean)}."""
    out = {"fastdrop mc_predict": lambda: run_mc_predict(model, X, T),
           "mc_predict stacked (before)": lambda: run_mc_stacked(model, X, T),
           "loop, fastdrop masks": lambda: run_loop(model, X, T, fastdrop_masks),
           "loop, NumPy masks": lambda: run_loop(model, X, T,
                                                 numpy_masks(np.random.default_rng(SEED)))}
    if torch is not None:
        out[f"torch {torch.__version__} F.dropout"] = lambda: run_torch(model, X, T, torch)
    return out


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
        T = mc_passes()
        torch = torch_module()
        return runners(model, X, T, torch), T, theory.mc_predict(model, X, T, seed=SEED).mean

    @pytest.mark.parametrize("name", ["fastdrop mc_predict", "mc_predict stacked (before)",
                                      "loop, fastdrop masks", "loop, NumPy masks", "torch"])
    def test_mc(benchmark, problem, name):
        calls, T, reference = problem
        if name == "torch":
            name = next((n for n in calls if n.startswith("torch")), None)
            if name is None:
                pytest.skip("torch is not installed")
        outcome = {}

        def once():
            outcome["result"] = calls[name]()

        benchmark.group = f"MC dropout, T={T} passes of 784-1024-1024-10 over {BATCH} inputs"
        benchmark.pedantic(once, rounds=3, iterations=1, warmup_rounds=1)
        seconds, mask_seconds, mean = outcome["result"]
        benchmark.extra_info.update(impl=name, T=T, passes_per_second=T / seconds,
                                    threads=fastdrop.get_num_threads(),
                                    simd=fastdrop.simd_level())
        if mask_seconds is not None:
            benchmark.extra_info["mask_share"] = mask_seconds / seconds
        check_same_estimate(mean, reference, T)


# -- one-shot report -------------------------------------------------------------------------------

def main():
    T = mc_passes()
    rounds = _positive_env("FASTDROP_BENCH_MC_ROUNDS", 3)
    model, X = make_problem()
    torch = torch_module()
    print(f"MC dropout: T = {T} passes of {'-'.join(map(str, SIZES))} (dropout {INPUT_RATE}/"
          f"{HIDDEN_RATE}/{HIDDEN_RATE}) over {BATCH} inputs (stacked path and loops: "
          f"{PASSES_PER_CHUNK} passes per GEMM); "
          f"fastdrop {fastdrop.simd_level()}, {fastdrop.get_num_threads()} threads; medians of "
          f"{rounds} interleaved rounds")
    if torch is None:
        print("(torch is not installed: its row is skipped)")
    calls = runners(model, X, T, torch)
    outcomes = {name: [] for name in calls}
    recorded = {name: (lambda name=name: outcomes[name].append(calls[name]())) for name in calls}
    times = interleaved_times(recorded, rounds, warmup=1, round_seconds=0)
    reference = outcomes["fastdrop mc_predict"][-1][2]
    base = statistics.median(times["fastdrop mc_predict"])
    print(f"{'implementation':28s} {'seconds':>9s} {'passes/s':>9s} {'mask share':>11s} "
          f"{'x mc_predict':>12s} {'max|mean diff|':>15s}")
    for name, seconds_rounds in times.items():
        seconds = statistics.median(seconds_rounds)
        shares = [m / s for s, m, _ in outcomes[name] if m is not None]
        share = f"{100 * statistics.median(shares):10.1f}%" if shares else f"{'':11s}"
        difference = np.max(np.abs(outcomes[name][-1][2] - reference))
        print(f"{name:28s} {seconds:9.2f} {T / seconds:9.1f} {share} {seconds / base:11.2f}x "
              f"{difference:15.4f}")
    cost = base / statistics.median(times["mc_predict stacked (before)"])
    print(f"mc_predict time / stacked path time {cost:.3f} (target {describe(MC_TILE_COST)}): "
          f"{verdict(cost, MC_TILE_COST)}")
    share = statistics.median(m / s for s, m, _ in outcomes["loop, fastdrop masks"])
    print(f"fastdrop mask share {100 * share:.1f} % (target {describe(MC_MASK_SHARE)}): "
          f"{verdict(share, MC_MASK_SHARE)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
