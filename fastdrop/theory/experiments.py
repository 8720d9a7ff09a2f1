"""The tutorial's claims, measured: one function per experiment.

Each experiment is a function returning an `ExperimentResult` (tables of numbers, a few
headline figures, the series its plot draws, and its qualitative conclusions), so it can
be called from Python with any configuration; `run_experiment` runs one by name with its
quick or full configuration over one or more seeds (as ``fastdrop experiment NAME
[--quick] [--seeds N]`` does) and reports mean ± sd over the seeds.

- ``scaling``: classical vs inverted dropout scaling, and expectation matching through
  an affine layer but not through a nonlinearity (exact, over all masks).
- ``nwgm``: weight scaling vs the NWGM and the arithmetic mean of all 2^n thinned nets of
  one dropout layer, as depth and nonlinearity after that layer grow (random nets).
- ``bagging``: one dropout net vs k nets on bootstrap samples and vs k nets on all the
  data from different seeds, each averaged in probability and by NWGM; test error,
  training time and parameter memory.
- ``coadaptation``: test error as random hidden units are removed at test time, with and
  without dropout in training; mean hidden activations (Srivastava et al. 2014, Fig. 8).
- ``rate``: test error vs the hidden dropout rate (their Fig. 9).
- ``datasize``: with and without dropout vs training-set size (their Fig. 10).
- ``mc``: MC averaging of k stochastic passes vs weight scaling (their Fig. 11).

Trained experiments use the bundled MNIST subset (`fastdrop.datasets.load_mnist5k`,
4000 train / 1000 test).  Every net is trained with early stopping: a fifth of its
training digits is held out, the net is checked on it every `CHECK_STEPS` SGD steps, and
training stops once `patience` steps bring no improvement (or at `max_steps`), keeping
the best weights.  So each net, at each data size and rate, gets the steps it needs,
and the step counts are reported.  matplotlib is optional and imported only to plot.
"""
import importlib.util
import math
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from ..api import dropout
from ..datasets import load_mnist5k
from ..nn import SGD, Dense, Dropout, ReLU, Sequential, Sigmoid, Tanh, build_mlp, evaluate, fit
from . import ensemble

PLOT_HINT = "matplotlib is not installed; install it (pip install 'fastdrop[plot]') to save plots"

#: share of each net's training digits held out for early stopping
VALIDATION_SHARE = 0.2
#: SGD steps between two checks on the held-out digits
CHECK_STEPS = 50
BATCH_SIZE = 100


# -- results -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Spread:
    """A number measured over several seeds: mean, standard deviation, count."""
    mean: float
    sd: float
    n: int

    def format(self, fmt):
        return f"{fmt.format(self.mean)} ± {fmt.replace('+', '').format(self.sd)}"  # no sign on a sd

    def as_dict(self):
        return {"mean": self.mean, "sd": self.sd, "n": self.n}


def _value(v):
    """The number to compare or plot: a Spread's mean, anything else as it is."""
    return v.mean if isinstance(v, Spread) else v


@dataclass
class Table:
    title: str
    columns: list
    rows: list  # lists of values; numbers are formatted with the column's format
    formats: list = None

    def cells(self):
        formats = self.formats or ["{}"] * len(self.columns)
        return [[v if isinstance(v, str) else v.format(fmt) if isinstance(v, Spread) else fmt.format(v)
                 for fmt, v in zip(formats, row)] for row in self.rows]

    def __str__(self):
        cells = self.cells()
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(self.columns)]
        line = lambda values: "  ".join(v.rjust(w) for v, w in zip(values, widths))
        out = [self.title, line(self.columns), line(["-" * w for w in widths])]
        out += [line(r) for r in cells]
        return "\n".join(out)

    def as_dict(self):
        return {"title": self.title, "columns": list(self.columns),
                "rows": [[_jsonable(v) for v in row] for row in self.rows], "text": self.cells()}


@dataclass
class ExperimentResult:
    name: str
    config: dict
    tables: list = field(default_factory=list)
    headline: dict = field(default_factory=dict)     # label -> number, the figures to quote
    series: dict = field(default_factory=dict)       # what the plot draws (means over seeds)
    series_sd: dict = None                           # the same shape: sd over seeds, or None
    conclusions: dict = field(default_factory=dict)  # question -> qualitative answer
    budget: str = ""                                 # how long the nets were trained
    seeds: list = field(default_factory=list)
    seconds: float = 0.0
    seed_series: list = None                         # with several seeds: each seed's series

    def __str__(self):
        parts = [str(t) for t in self.tables]
        if self.headline:
            width = max(len(k) for k in self.headline)
            parts.append("headline:\n" + "\n".join(
                f"  {k.ljust(width)}  {_headline_value(v)}" for k, v in self.headline.items()))
        if self.conclusions:
            width = max(len(k) for k in self.conclusions)
            parts.append("conclusions:\n" + "\n".join(
                f"  {k.ljust(width)}  {v}" for k, v in self.conclusions.items()))
        if self.budget:
            parts.append(f"training budget: {self.budget}")
        seeds = self.seeds or [self.config.get("seed")]
        spread = f"mean ± sd over seeds {seeds}" if len(seeds) > 1 else f"seed {seeds[0]}"
        parts.append(f"({self.name}: {self.seconds:.1f} s, {spread})")
        return "\n\n".join(parts)

    def as_dict(self):
        """Everything, as JSON-ready builtins (a Spread becomes {mean, sd, n})."""
        return {"name": self.name, "config": _jsonable(self.config), "seeds": list(self.seeds),
                "seconds": self.seconds, "budget": self.budget,
                "tables": [t.as_dict() for t in self.tables],
                "headline": _jsonable(self.headline), "conclusions": _jsonable(self.conclusions),
                "series": _jsonable(self.series), "series_sd": _jsonable(self.series_sd)}


def _jsonable(v):
    if isinstance(v, Spread):
        return v.as_dict()
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return None if math.isnan(v) else float(v)
    return v


def _headline_value(v):
    if isinstance(v, Spread):
        return v.format("{:.4g}")
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _log(verbose, message):
    if verbose:
        print(message, file=sys.stderr, flush=True)


# -- several seeds -----------------------------------------------------------------------

def _is_number(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _spread(values):
    if all(v == values[0] for v in values):
        return values[0]  # the same at every seed (a size, a k): no spread to show
    return Spread(float(np.mean(values)), float(np.std(values)), len(values))


def _combine_cells(values):
    """One table cell or headline value from its per-seed values."""
    if all(_is_number(v) for v in values):
        return _spread(values)
    return values[0] if all(v == values[0] for v in values) else " / ".join(map(str, values))


def _combine_series(values, statistic):
    """Per-seed copies of a plotted series -> their elementwise mean (or sd)."""
    first = values[0]
    if isinstance(first, dict):
        return {k: _combine_series([v[k] for v in values], statistic) for k in first}
    if isinstance(first, np.ndarray):  # a sample (e.g. per-unit means): pool the seeds
        return np.concatenate(values) if statistic is np.mean else None
    if isinstance(first, (list, tuple)) and first and all(_is_number(x) for x in first):
        if all(list(v) == list(first) for v in values):
            return list(first) if statistic is np.mean else None
        return [float(x) for x in statistic(np.asarray(values, dtype=float), axis=0)]
    if _is_number(first):
        return float(statistic(values))
    return first if statistic is np.mean else None


def combine(results):
    """Results of one experiment at several seeds -> one result of mean ± sd.

    Table cells and headline numbers that differ between seeds become `Spread`s; the
    series become their elementwise means, with `series_sd` their standard deviations.
    """
    first = results[0]
    if len(results) == 1:
        return first
    tables = []
    for i, table in enumerate(first.tables):
        rows = [[_combine_cells([r.tables[i].rows[j][c] for r in results])
                 for c in range(len(row))] for j, row in enumerate(table.rows)]
        tables.append(Table(table.title, table.columns, rows, table.formats))
    headline = {k: _combine_cells([r.headline[k] for r in results]) for k in first.headline}
    config = dict(first.config, seed=[r.config.get("seed") for r in results])
    return ExperimentResult(
        first.name, config, tables, headline,
        series=_combine_series([r.series for r in results], np.mean),
        series_sd=_combine_series([r.series for r in results], np.std),
        budget=first.budget, seeds=[s for r in results for s in r.seeds],
        seconds=sum(r.seconds for r in results), seed_series=[r.series for r in results])


# -- data and training -------------------------------------------------------------------------

def _data(n_train=None, seed=0):
    """The bundled MNIST subset; with n_train, a random subset (fixed by seed) of its training part."""
    X_train, y_train, X_test, y_test = load_mnist5k()
    if n_train is not None and n_train < X_train.shape[0]:
        rows = np.random.default_rng(seed).permutation(X_train.shape[0])[:n_train]
        X_train, y_train = X_train[rows], y_train[rows]
    return X_train, y_train, X_test, y_test


def _split(X, y, seed):
    """(X_fit, y_fit, X_val, y_val): `VALIDATION_SHARE` of the rows held out, fixed by seed."""
    n_val = max(1, int(round(VALIDATION_SHARE * X.shape[0])))
    rows = np.random.default_rng([seed, 1]).permutation(X.shape[0])
    return X[rows[n_val:]], y[rows[n_val:]], X[rows[:n_val]], y[rows[:n_val]]


def _build(sizes, input_rate, hidden_rate, seed):
    return build_mlp(sizes, input_rate=input_rate, hidden_rate=hidden_rate, seed=seed)


@dataclass
class Training:
    """How one net was trained: wall time, SGD steps taken, steps at the weights kept."""
    seconds: float
    steps: int
    best_step: int


def _train(model, X, y, X_val, y_val, *, max_steps, patience, seed, dropout, lr=0.05):
    """SGD with momentum (and max-norm 3 for dropout nets, as Srivastava et al. 2014) with
    early stopping: every `CHECK_STEPS` steps the net is scored on (X_val, y_val) (error,
    then loss); training ends `patience` steps after the best score or at `max_steps`,
    and the best weights are put back."""
    optimizer = SGD(lr=lr, momentum=0.9, max_norm=3.0 if dropout else None)
    steps_per_epoch = math.ceil(X.shape[0] / BATCH_SIZE)
    epochs_per_check = max(1, round(CHECK_STEPS / steps_per_epoch))
    best_score, best_params, best_step, steps, epoch = None, None, 0, 0, 0
    start = time.perf_counter()
    while steps < max_steps and steps - best_step < patience:
        epochs = min(epochs_per_check, math.ceil((max_steps - steps) / steps_per_epoch))
        fit(model, X, y, epochs=epochs, batch_size=BATCH_SIZE, optimizer=optimizer,
            seed=seed * 1_000_003 + epoch, progress=False)
        epoch += epochs
        steps += epochs * steps_per_epoch
        loss, error = evaluate(model, X_val, y_val)
        if best_score is None or (error, loss) < best_score:
            best_score, best_step = (error, loss), steps
            best_params = [p.copy() for p in model.params()]
    for param, best in zip(model.params(), best_params):
        param[...] = best
    return Training(time.perf_counter() - start, steps, best_step)


_shared_nets = None  # a dict while `sharing_trained_nets` is active


@contextmanager
def sharing_trained_nets():
    """Within this block, an experiment that needs a net already trained by another one (the
    same digits, split, shape, rates, seeds and budget) reuses it, training time included."""
    global _shared_nets
    previous, _shared_nets = _shared_nets, {}
    try:
        yield
    finally:
        _shared_nets = previous


def _trained_net(n_train, seed, hidden, rates, *, max_steps, patience, net_seed=None):
    """(net, Training): an MLP of `hidden` widths with dropout `rates` (input, hidden),
    trained with early stopping on ``_split(*_data(n_train, seed)[:2], seed)``."""
    net_seed = seed if net_seed is None else net_seed
    if n_train is not None and n_train >= load_mnist5k()[0].shape[0]:
        n_train = None  # the whole training set, however it was asked for: the same net
    key = (n_train, seed, tuple(hidden), tuple(rates), max_steps, patience, net_seed)
    if _shared_nets is not None and key in _shared_nets:
        return _shared_nets[key]
    X, y, _, _ = _data(n_train, seed)
    X_fit, y_fit, X_val, y_val = _split(X, y, seed)
    net = _build([X.shape[1], *hidden, 10], *rates, net_seed)
    run = _train(net, X_fit, y_fit, X_val, y_val, max_steps=max_steps, patience=patience,
                 seed=net_seed, dropout=rates[0] > 0 or rates[1] > 0)
    if _shared_nets is not None:
        _shared_nets[key] = net, run
    return net, run


def _budget_text(max_steps, patience):
    return (f"early stopping on a held-out {VALIDATION_SHARE:.0%} of each net's training digits, "
            f"checked every {CHECK_STEPS} SGD steps of {BATCH_SIZE}; a net stops {patience} steps "
            f"after its best check or at {max_steps} steps, keeping its best weights")


def _error(proba, y):
    return float(np.mean(np.argmax(proba, axis=1) != y))


def _param_bytes(model):
    return sum(p.nbytes for p in model.params())


def _warm_up(sizes, X, y, seed):
    """One throwaway step, so no timed run pays for thread-pool start-up and first touches."""
    fit(_build(sizes, 0.2, 0.5, seed), X[:100], y[:100], epochs=1, batch_size=BATCH_SIZE,
        optimizer=SGD(lr=0.01), seed=seed, progress=False)


# -- scaling: classical vs inverted, and expectation through the layers ------------------------

def experiment_scaling(*, units=12, width=16, inputs=64, keep_prob=0.5, samples=20000,
                       seed=0, verbose=False):
    """Classical vs inverted dropout scaling, and where expectation matching stops.

    Part 1 samples `samples` masks of a layer of `width` units with `fastdrop.dropout`:
    classical dropout (``x * m``, test ``p * x``) and inverted dropout (``x * m / p``,
    test ``x``) keep the same units and differ by the factor ``1/p`` only, and each
    one's training mean converges to its own test-time output.
    Part 2 enumerates all ``2**units`` masks of a dropout layer feeding an affine layer,
    a ReLU and another affine layer, and compares the exact expectation at each stage
    with the deterministic (scaled) network.
    """
    config = dict(units=units, width=width, inputs=inputs, keep_prob=keep_prob, samples=samples,
                  seed=seed)
    result = ExperimentResult("scaling", config, seeds=[seed])
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    x = np.abs(rng.standard_normal(width)) + 0.5
    batch = np.broadcast_to(x, (samples, width)).copy()
    _log(verbose, f"scaling: {samples} masks of {width} units")
    classical = dropout(batch, keep_prob=keep_prob, seed=seed, inverted=False)
    inverted = dropout(batch, keep_prob=keep_prob, seed=seed, inverted=True)
    classical_test = dropout(x, keep_prob=keep_prob, training=False, inverted=False)
    inverted_test = dropout(x, keep_prob=keep_prob, training=False, inverted=True)
    same_units = bool(np.array_equal(classical != 0, inverted != 0))
    factor_gap = float(np.max(np.abs(inverted * keep_prob - classical)))
    noise = 1.0 / math.sqrt(samples)
    rows = []
    for name, train, test in (("classical", classical, classical_test),
                              ("inverted", inverted, inverted_test)):
        gap = float(np.max(np.abs(train.mean(axis=0) - test) / test))
        rows.append([name, "x*m", "p*x", gap] if name == "classical" else
                    [name, "x*m/p", "x", gap])
    result.tables.append(Table(
        f"{samples} sampled masks of {width} units, keep_prob {keep_prob}: the training mean "
        f"vs the test-time output (sampling noise ~ {noise:.1e})",
        ["convention", "training", "test", "max rel |mean(train) - test|"], rows,
        ["{}", "{}", "{}", "{:.2e}"]))

    # part 2: exact expectations over all 2^units masks of a layer feeding Dense-ReLU-Dense
    masks, probs = ensemble.enumerate_masks(units, keep_prob)
    h = np.abs(rng.standard_normal((inputs, units))) + 0.1
    W1 = rng.standard_normal((units, width)) / math.sqrt(units)
    b1 = rng.standard_normal(width) * 0.1
    W2 = rng.standard_normal((width, 10)) / math.sqrt(width)
    thinned = h[None, :, :] * masks[:, None, :] / keep_prob           # (2^n, inputs, units)
    affine = thinned @ W1 + b1
    relu = np.maximum(affine, 0.0)
    logits = relu @ W2
    det_affine = h @ W1 + b1
    det_relu = np.maximum(det_affine, 0.0)
    det_logits = det_relu @ W2
    expect = lambda a: np.tensordot(probs, a, axes=(0, 0))
    stage_rows = []
    for stage, stack, det in (("dropped units h*m/p", thinned, h),
                              ("after the affine layer W(h*m/p)+b", affine, det_affine),
                              ("after the ReLU", relu, det_relu),
                              ("after the next affine layer (logits)", logits, det_logits)):
        gap = float(np.max(np.abs(expect(stack) - det)))
        stage_rows.append([stage, gap, gap / float(np.max(np.abs(det)))])
    result.tables.append(Table(
        f"exact expectation over all 2^{units} = {2**units} masks vs the deterministic net "
        f"({inputs} random inputs; dropout -> Dense {width} -> ReLU -> Dense 10)",
        ["stage", "max |E[stage] - deterministic|", "relative"], stage_rows,
        ["{}", "{:.2e}", "{:.2e}"]))
    # how the training mean of each convention approaches its test output as masks accumulate
    counts = sorted({min(samples, 10 ** k) for k in range(1, 1 + math.ceil(math.log10(max(samples, 10))))})
    convergence = dict(masks=counts)
    for name, train, test in (("classical", classical, classical_test),
                              ("inverted", inverted, inverted_test)):
        running = np.cumsum(train, axis=0)
        convergence[name] = [float(np.max(np.abs(running[n - 1] / n - test) / test)) for n in counts]
    shown = min(samples, 12)
    result.series = dict(stages=[r[0] for r in stage_rows], gaps=[r[1] for r in stage_rows],
                         mean_gaps=[r[3] for r in rows], convergence=convergence,
                         example=dict(classical=classical[:shown].tolist(),
                                      inverted=inverted[:shown].tolist()))
    result.headline = {
        "classical and inverted keep the same units": str(same_units),
        "max |inverted * p - classical|": factor_gap,
        "max rel |mean(train) - test|, inverted": rows[1][3],
        "max |E - det| after the affine layer": stage_rows[1][1],
        "max |E - det| after the ReLU": stage_rows[2][1],
    }
    result.seconds = time.perf_counter() - start
    return result


def _conclude_scaling(result):
    s = result.series
    samples = result.config["samples"]
    return {
        "classical and inverted differ only by 1/p": result.headline[
            "classical and inverted keep the same units"] == "True"
            and _value(result.headline["max |inverted * p - classical|"]) < 1e-5,
        "each training mean matches its own test output": max(s["mean_gaps"]) < 6 / math.sqrt(samples),
        "expectation exact through the affine layer": s["gaps"][1] < 1e-10,
        "expectation not exact after the ReLU": s["gaps"][2] > 1e-3,
    }


# -- nwgm: the identity and its gap -----------------------------------------------------------

_NWGM_ACTIVATIONS = ("linear", "tanh", "relu", "sigmoid")


# Weight gains that keep the signal's scale roughly constant through a layer of each
# activation (sigmoid's slope is 1/4 at 0), so depth is not confounded with shrinking logits.
_GAINS = {"linear": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0), "sigmoid": 4.0}


def _random_dropout_net(units, depth, activation, *, width, classes, features, keep_prob,
                        weight_scale, seed):
    """features -> tanh(units) -> Dropout -> depth x (Dense, activation) -> Dense -> classes.

    Weights ~ N(0, (scale * gain)^2 / fan_in), float64."""
    act = {"tanh": Tanh, "relu": ReLU, "sigmoid": Sigmoid, "linear": None}[activation]
    gain = _GAINS[activation]
    rng = np.random.default_rng(seed)

    def dense(n_in, n_out, scale):
        layer = Dense(n_in, n_out, dtype=np.float64)
        layer.W[:] = rng.standard_normal((n_in, n_out)) * (scale / math.sqrt(n_in))
        layer.b[:] = rng.standard_normal(n_out) * 0.1 * scale
        return layer

    layers = [dense(features, units, 1.5), Tanh(), Dropout(keep_prob=keep_prob, seed=seed)]
    fan_in = units
    for _ in range(depth):
        layers.append(dense(fan_in, width, weight_scale * gain))
        if act is not None:
            layers.append(act())
        fan_in = width
    layers.append(dense(fan_in, classes, weight_scale))
    return Sequential(layers)


def _gap_row(model, X, layer):
    geometric, arithmetic = ensemble.exact_means(model, X, layer)
    det = ensemble.deterministic_predictions(model, X)
    g = ensemble.PairStats.between(geometric, det)
    a = ensemble.PairStats.between(arithmetic, det)
    ga = ensemble.PairStats.between(arithmetic, geometric)
    return g, a, ga


def experiment_nwgm(*, units=12, depths=(0, 1, 2, 3), activations=_NWGM_ACTIVATIONS, width=32,
                    inputs=200, classes=10, features=20, keep_prob=0.5,
                    scales=(0.25, 0.5, 1.0, 2.0, 4.0), scale_activation="tanh", scale_depth=2,
                    seed=0, verbose=False):
    """Weight scaling vs NWGM vs arithmetic mean over all 2^units thinned nets.

    A dropout layer of `units` units is followed by `depth` hidden layers of `width`
    units with the given activation, then an affine map to `classes` logits.  At depth 0
    (and for the linear "activation" at any depth) weight scaling is the NWGM exactly.
    """
    config = dict(units=units, depths=list(depths), activations=list(activations), width=width,
                  inputs=inputs, keep_prob=keep_prob, scales=list(scales), seed=seed)
    result = ExperimentResult("nwgm", config, seeds=[seed])
    start = time.perf_counter()
    X = np.random.default_rng(seed).standard_normal((inputs, features))
    common = dict(width=width, classes=classes, features=features, keep_prob=keep_prob)
    rows, gaps = [], {a: [] for a in activations}
    for activation in activations:
        for depth in depths:
            _log(verbose, f"nwgm: {activation}, depth {depth}")
            model = _random_dropout_net(units, depth, activation, weight_scale=1.0,
                                        seed=seed + 1000 * depth + 7, **common)
            g, a, ga = _gap_row(model, X, 2)
            gaps[activation].append(g.max_abs_diff)
            rows.append([activation, depth, g.max_abs_diff, g.mean_kl, a.max_abs_diff,
                         ga.max_abs_diff, 100 * a.argmax_agreement])
    result.tables.append(Table(
        f"weight scaling vs the 2^{units} = {2**units} thinned nets (keep_prob {keep_prob}, "
        f"{inputs} random inputs, layers after the dropout: depth x (Dense {width}, activation))",
        ["activation", "depth", "max|det-NWGM|", "KL(NWGM||det)", "max|det-AM|", "max|NWGM-AM|",
         "argmax det=AM %"],
        rows, ["{}", "{}", "{:.2e}", "{:.2e}", "{:.2e}", "{:.2e}", "{:.1f}"]))
    scale_rows, scale_gaps = [], []
    for scale in scales:
        _log(verbose, f"nwgm: weight scale {scale}")
        model = _random_dropout_net(units, scale_depth, scale_activation, weight_scale=scale,
                                    seed=seed + 99, **common)
        g, a, ga = _gap_row(model, X, 2)
        scale_gaps.append(g.max_abs_diff)
        scale_rows.append([scale, g.max_abs_diff, g.mean_kl, a.max_abs_diff,
                           100 * a.argmax_agreement])
    result.tables.append(Table(
        f"stronger nonlinearity: {scale_activation}, depth {scale_depth}, weights x scale",
        ["scale", "max|det-NWGM|", "KL(NWGM||det)", "max|det-AM|", "argmax det=AM %"],
        scale_rows, ["{:g}", "{:.2e}", "{:.2e}", "{:.2e}", "{:.1f}"]))
    result.series = dict(depths=list(depths), gaps=gaps, scales=list(scales), scale_gaps=scale_gaps,
                         scale_activation=scale_activation,
                         exact_gaps=[r[2] for r in rows if r[1] == 0 or r[0] == "linear"],
                         nwgm_vs_am=[r[5] for r in rows], argmax_agreement=[r[6] for r in rows])
    exact = [r[2] for r in rows if r[1] == 0 or r[0] == "linear"]
    result.headline = {
        "max |det - NWGM| where exact (depth 0 or linear)": max(exact) if exact else float("nan"),
    }
    result.headline["max |NWGM - AM| (geometric vs arithmetic mean)"] = max(r[5] for r in rows)
    result.headline["argmax agreement, weight scaling vs AM % (lowest)"] = min(r[6] for r in rows)
    for activation in activations:
        if activation != "linear" and depths:
            result.headline[f"max |det - NWGM|, {activation} depth {max(depths)}"] = gaps[activation][-1]
    result.seconds = time.perf_counter() - start
    return result


def _conclude_nwgm(result):
    s = result.series
    deep = [gaps[-1] for a, gaps in s["gaps"].items() if a != "linear"]
    return {
        "weight scaling = NWGM exactly after an affine-softmax layer": max(s["exact_gaps"]) < 1e-12,
        "not exact once nonlinear layers follow the dropout": bool(deep) and min(deep) > 1e-6,
        "gap grows with the nonlinearity's strength": s["scale_gaps"][-1] > s["scale_gaps"][0],
        "geometric and arithmetic means differ": max(s["nwgm_vs_am"]) > 1e-4,
    }


# -- bagging and ensembles vs dropout ----------------------------------------------------------

def experiment_bagging(*, k=5, hidden=(256, 256), n_train=None, max_steps=3000, patience=600,
                       input_rate=0.2, hidden_rate=0.5, seed=0, verbose=False):
    """One dropout net vs k nets on bootstrap samples (bagging) and vs k nets trained on all
    the data from different seeds (an ensemble), each averaged in probability and by NWGM.

    All nets share one held-out split for early stopping; bootstrap samples are drawn
    from the rest.  The ensemble's first member is the single net of the first row.
    """
    config = dict(k=k, hidden=list(hidden), n_train=n_train, max_steps=max_steps,
                  patience=patience, input_rate=input_rate, hidden_rate=hidden_rate, seed=seed)
    result = ExperimentResult("bagging", config, budget=_budget_text(max_steps, patience),
                              seeds=[seed])
    start = time.perf_counter()
    X, y, X_test, y_test = _data(n_train, seed)
    X_fit, y_fit, X_val, y_val = _split(X, y, seed)
    sizes = [X.shape[1], *hidden, 10]
    rng = np.random.default_rng([seed, 2])
    _warm_up(sizes, X, y, seed)

    def trained(rates, net_seed=None):
        return _trained_net(n_train, seed, hidden, rates, max_steps=max_steps, patience=patience,
                            net_seed=net_seed)

    def committee(kind):
        proba, seconds, steps, nbytes = [], 0.0, 0, 0
        for member in range(k):
            _log(verbose, f"bagging: {kind} member {member + 1}/{k}")
            if kind == "bootstrap":
                rows = rng.integers(0, X_fit.shape[0], X_fit.shape[0])
                net = _build(sizes, 0.0, 0.0, 1000 * seed + 500 + member)
                run = _train(net, X_fit[rows], y_fit[rows], X_val, y_val, max_steps=max_steps,
                             patience=patience, seed=1000 * seed + 500 + member, dropout=False)
            else:  # the first member is the single net of the first row
                net, run = trained((0.0, 0.0), None if member == 0 else 1000 * seed + member)
            proba.append(net.predict_proba(X_test))
            seconds, steps, nbytes = seconds + run.seconds, steps + run.steps, nbytes + _param_bytes(net)
            if member == 0:
                first = (_error(proba[0], y_test), run, _param_bytes(net))
        stack = np.stack(proba)
        return dict(mean=_error(stack.mean(axis=0), y_test),
                    nwgm=_error(ensemble.nwgm(stack, np.ones(k)), y_test),
                    seconds=seconds, steps=steps, megabytes=nbytes / 2**20, first=first)

    bag = committee("bootstrap")
    ens = committee("all data")
    single_error, single_run, single_bytes = ens["first"]
    _log(verbose, "bagging: dropout net")
    dropped, dropout_run = trained((input_rate, hidden_rate))
    dropout_error = _error(dropped.predict_proba(X_test), y_test)
    dropout_mb = _param_bytes(dropped) / 2**20

    arch = "-".join(str(s) for s in sizes)
    rows = [["one net, no dropout", 100 * single_error, single_run.seconds, single_bytes / 2**20,
             single_run.steps]]
    for label, c in ((f"bagging: {k} bootstrap nets", bag),
                     (f"ensemble: {k} nets, all data, own seeds", ens)):
        rows.append([f"{label}, mean", 100 * c["mean"], c["seconds"], c["megabytes"], c["steps"]])
        rows.append([f"{label}, NWGM", 100 * c["nwgm"], c["seconds"], c["megabytes"], c["steps"]])
    rows.append([f"one dropout net ({input_rate}/{hidden_rate})", 100 * dropout_error,
                 dropout_run.seconds, dropout_mb, dropout_run.steps])
    result.tables.append(Table(
        f"{arch} on {X.shape[0]} training digits ({X_fit.shape[0]} to fit, {X_val.shape[0]} held "
        f"out), test on {X_test.shape[0]}",
        ["model", "test error %", "train s", "params MB", "SGD steps"], rows,
        ["{}", "{:.2f}", "{:.1f}", "{:.2f}", "{:.0f}"]))
    labels = ["one net", f"bag of {k}", f"ensemble of {k}", "dropout"]
    result.series = dict(labels=labels,
                         errors=[single_error, bag["mean"], ens["mean"], dropout_error],
                         times=[single_run.seconds, bag["seconds"], ens["seconds"], dropout_run.seconds],
                         megabytes=[single_bytes / 2**20, bag["megabytes"], ens["megabytes"], dropout_mb],
                         steps=[single_run.steps, bag["steps"], ens["steps"], dropout_run.steps])
    result.headline = {"test error %, one net": 100 * single_error,
                       f"test error %, bag of {k} bootstrap nets": 100 * bag["mean"],
                       f"test error %, ensemble of {k} all-data nets": 100 * ens["mean"],
                       f"test error %, ensemble of {k}, NWGM": 100 * ens["nwgm"],
                       "test error %, one dropout net": 100 * dropout_error,
                       "train time ensemble / dropout": ens["seconds"] / dropout_run.seconds,
                       "parameter memory ensemble / dropout": ens["megabytes"] / dropout_mb}
    result.seconds = time.perf_counter() - start
    return result


def _conclude_bagging(result):
    labels, errors = result.series["labels"], result.series["errors"]
    single, bag, ens, drop = errors
    steps = result.series["steps"]
    return {
        "dropout beats one net": drop < single,
        "the all-data ensemble beats the bootstrap bag": ens < bag,
        "the all-data ensemble beats one net": ens < single,
        "ranking, best first": " < ".join(labels[i] for i in np.argsort(errors, kind="stable")),
        "the dropout net takes fewer SGD steps than the ensemble": steps[3] < steps[2],
    }


# -- co-adaptation ---------------------------------------------------------------------------

def _hidden_activation_layers(model):
    return [i for i, layer in enumerate(model.layers) if isinstance(layer, (ReLU, Sigmoid, Tanh))]


def _forward_removing_units(model, X, removal, rng):
    """Eval forward with a fixed random share of every hidden layer's units removed.

    One mask per hidden layer, shared by all inputs (the same units are gone for every
    test digit); the survivors are scaled by 1 / (1 - removal), as inverted dropout does.
    """
    hidden = set(_hidden_activation_layers(model))
    h = X
    for i, layer in enumerate(model.layers):
        h = layer.forward(h, training=False)
        if i in hidden and removal > 0:
            keep = rng.random(h.shape[1]) >= removal
            scale = 1.0 / (1.0 - removal) if removal < 1 else 0.0
            h = h * (keep.astype(h.dtype) * h.dtype.type(scale))
    return h


def _hidden_activations(model, X):
    hidden = set(_hidden_activation_layers(model))
    out, h = [], X
    for i, layer in enumerate(model.layers):
        h = layer.forward(h, training=False)
        if i in hidden:
            out.append(h)
    return out


def experiment_coadaptation(*, hidden=(256, 256), n_train=None, max_steps=3000, patience=600,
                            removals=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8), repeats=5,
                            input_rate=0.2, hidden_rate=0.5, seed=0, verbose=False):
    """Test error under random removal of hidden units, and hidden activation statistics."""
    config = dict(hidden=list(hidden), n_train=n_train, max_steps=max_steps, patience=patience,
                  removals=list(removals), repeats=repeats, input_rate=input_rate,
                  hidden_rate=hidden_rate, seed=seed)
    result = ExperimentResult("coadaptation", config, budget=_budget_text(max_steps, patience),
                              seeds=[seed])
    start = time.perf_counter()
    X, y, X_test, y_test = _data(n_train, seed)
    sizes = [X.shape[1], *hidden, 10]
    nets, steps = {}, {}
    for name, rates in (("no dropout", (0.0, 0.0)), ("dropout", (input_rate, hidden_rate))):
        _log(verbose, f"coadaptation: training the net with {name}")
        nets[name], run = _trained_net(n_train, seed, hidden, rates, max_steps=max_steps,
                                       patience=patience)
        steps[name] = run.steps
    errors = {name: [] for name in nets}
    for removal in removals:
        for name, net in nets.items():
            rng = np.random.default_rng([seed, int(round(removal * 1000))])
            runs = [_error(ensemble._softmax(_forward_removing_units(net, X_test, removal, rng)), y_test)
                    for _ in range(repeats if removal > 0 else 1)]
            errors[name].append(float(np.mean(runs)))
    result.tables.append(Table(
        f"{'-'.join(map(str, sizes))} on {X.shape[0]} digits (dropout {input_rate}/{hidden_rate}). "
        f"Test error % with a random share of every hidden layer's units removed at test time "
        f"(mean of {repeats} draws; survivors scaled by 1/(1-share))",
        ["removed", *nets],
        [[f"{r:.0%}", *[100 * errors[n][i] for n in nets]] for i, r in enumerate(removals)],
        ["{}"] + ["{:.2f}"] * len(nets)))
    stats_rows, mean_acts = [], {}
    for name, net in nets.items():
        last = _hidden_activations(net, X_test)[-1]
        unit_means = last.mean(axis=0)
        mean_acts[name] = unit_means
        stats_rows.append([name, steps[name], float(unit_means.mean()), float(np.median(unit_means)),
                           100 * float(np.mean(last > 0)),
                           100 * float(np.mean(unit_means < 0.1 * unit_means.max()))])
    result.tables.append(Table(
        "last hidden layer on the test set (Srivastava et al. 2014, Fig. 8: dropout -> sparser)",
        ["net", "SGD steps", "mean act.", "median unit mean", "active %", "units < 10% of max mean %"],
        stats_rows, ["{}", "{:.0f}", "{:.3f}", "{:.3f}", "{:.1f}", "{:.1f}"]))
    result.series = dict(removals=list(removals), errors=errors, mean_activations=mean_acts,
                         sorted_unit_means={name: sorted(map(float, m), reverse=True)
                                            for name, m in mean_acts.items()},
                         active_share={row[0]: row[4] for row in stats_rows})
    half = min(range(len(removals)), key=lambda i: abs(removals[i] - 0.5))
    for name in nets:
        result.headline[f"test error %, {name}, nothing removed"] = 100 * errors[name][0]
        result.headline[f"test error %, {name}, {removals[half]:.0%} removed"] = 100 * errors[name][half]
    for row in stats_rows:
        result.headline[f"active share %, {row[0]}"] = row[4]
    result.seconds = time.perf_counter() - start
    return result


def _conclude_coadaptation(result):
    s = result.series
    half = min(range(len(s["removals"])), key=lambda i: abs(s["removals"][i] - 0.5))
    loss = {name: errs[half] - errs[0] for name, errs in s["errors"].items()}
    return {
        "dropout net loses less when half the hidden units are removed":
            loss["dropout"] < loss["no dropout"],
        "dropout net is better with nothing removed":
            s["errors"]["dropout"][0] < s["errors"]["no dropout"][0],
        "dropout net's last hidden layer is sparser (fewer active units)":
            s["active_share"]["dropout"] < s["active_share"]["no dropout"],
    }


# -- dropout rate (Fig. 9) ----------------------------------------------------------------------

def experiment_rate(*, rates=(0.0, 0.2, 0.4, 0.5, 0.6, 0.8), hidden=(256, 256), n_train=None,
                    max_steps=3000, patience=600, input_rate=0.0, fixed_pn=None, seed=0,
                    verbose=False):
    """Train and test error vs the hidden dropout rate, with the widths fixed (Fig. 9a), and,
    when `fixed_pn` (a width) is given, with ``keep_prob * width = fixed_pn`` (Fig. 9b)."""
    config = dict(rates=list(rates), hidden=list(hidden), n_train=n_train, max_steps=max_steps,
                  patience=patience, input_rate=input_rate, fixed_pn=fixed_pn, seed=seed)
    result = ExperimentResult("rate", config, budget=_budget_text(max_steps, patience), seeds=[seed])
    start = time.perf_counter()
    X, y, X_test, y_test = _data(n_train, seed)
    X_fit, y_fit, _, _ = _split(X, y, seed)
    panels = [("fixed n", lambda keep: list(hidden))]
    if fixed_pn:
        panels.append((f"fixed pn = {fixed_pn}",
                       lambda keep: [max(1, int(round(fixed_pn / keep)))] * len(hidden)))
    series = {}
    for label, widths_for in panels:
        rows, train_errs, test_errs = [], [], []
        for rate in rates:
            keep = 1.0 - rate
            if keep <= 0:
                continue
            widths = widths_for(keep)
            _log(verbose, f"rate: {label}, rate {rate}, widths {widths}")
            net, run = _trained_net(n_train, seed, widths, (input_rate, rate), max_steps=max_steps,
                                    patience=patience)
            train_errs.append(_error(net.predict_proba(X_fit), y_fit))
            test_errs.append(_error(net.predict_proba(X_test), y_test))
            rows.append([rate, keep, "-".join(map(str, widths)), run.steps, 100 * train_errs[-1],
                         100 * test_errs[-1]])
        series[label] = dict(rates=[r[0] for r in rows], train=train_errs, test=test_errs)
        result.tables.append(Table(
            f"hidden dropout rate, {label} (input rate {input_rate}, {X.shape[0]} digits)",
            ["rate", "keep p", "hidden", "SGD steps", "train error %", "test error %"], rows,
            ["{:g}", "{:g}", "{}", "{:.0f}", "{:.2f}", "{:.2f}"]))
    result.series = series
    first = series["fixed n"]
    best = int(np.argmin(first["test"]))
    result.headline = {"best hidden rate (fixed n)": first["rates"][best],
                       "test error % at the best rate": 100 * first["test"][best]}
    if 0.0 in first["rates"]:
        result.headline["test error % without dropout"] = 100 * first["test"][first["rates"].index(0.0)]
    result.seconds = time.perf_counter() - start
    return result


def _conclude_rate(result):
    s = result.series["fixed n"]
    rates, test, train = s["rates"], s["test"], s["train"]
    best = int(np.argmin(test))
    return {
        "some hidden dropout beats none": min(e for r, e in zip(rates, test) if r > 0) < test[rates.index(0.0)],
        "the best rate is moderate (0.2 to 0.6)": 0.2 <= rates[best] <= 0.6,
        "rate 0.8 is worse than the best rate": test[rates.index(0.8)] > test[best],
        "training error grows with the rate (0.8 vs 0)": train[rates.index(0.8)] > train[rates.index(0.0)],
    }


# -- data-set size (Fig. 10) ------------------------------------------------------------------

def experiment_datasize(*, sizes=(100, 250, 500, 1000, 2000, 4000), hidden=(256, 256),
                        max_steps=3000, patience=600, input_rate=0.2, hidden_rate=0.5, seed=0,
                        verbose=False):
    """Test error with and without dropout as the training set grows, each net trained to
    its early-stopping point."""
    config = dict(sizes=list(sizes), hidden=list(hidden), max_steps=max_steps, patience=patience,
                  input_rate=input_rate, hidden_rate=hidden_rate, seed=seed)
    result = ExperimentResult("datasize", config, budget=_budget_text(max_steps, patience),
                              seeds=[seed])
    start = time.perf_counter()
    _, _, X_test, y_test = _data(None, seed)
    rows, errors, gains = [], {"no dropout": [], "dropout": []}, []
    for n in sizes:
        row = [n]
        for name, rates in (("no dropout", (0.0, 0.0)), ("dropout", (input_rate, hidden_rate))):
            _log(verbose, f"datasize: {n} digits, {name}")
            net, run = _trained_net(n, seed, hidden, rates, max_steps=max_steps, patience=patience)
            errors[name].append(_error(net.predict_proba(X_test), y_test))
            row += [run.best_step, 100 * errors[name][-1]]
        gains.append(100 * (errors["no dropout"][-1] - errors["dropout"][-1]))
        rows.append([*row, gains[-1]])
    result.tables.append(Table(
        f"test error % vs training-set size ({'-'.join(map(str, hidden))} hidden, dropout "
        f"{input_rate}/{hidden_rate}; steps = SGD steps to each net's best held-out check)",
        ["train size", "steps, no dropout", "no dropout", "steps, dropout", "dropout",
         "gain (points)"], rows,
        ["{}", "{:.0f}", "{:.2f}", "{:.0f}", "{:.2f}", "{:+.2f}"]))
    result.series = dict(sizes=list(sizes), errors=errors, gains=gains)
    result.headline = {}
    for n, gain in zip(sizes, gains):
        result.headline[f"gain from dropout at {n} digits (points)"] = gain
    result.seconds = time.perf_counter() - start
    return result


def _sign(x):
    return "+" if x > 0 else "-" if x < 0 else "0"


def _conclude_datasize(result):
    s = result.series
    out = {f"sign of the gain at {n} digits": _sign(g) for n, g in zip(s["sizes"], s["gains"])}
    out["dropout helps at the largest size"] = s["gains"][-1] > 0
    return out


# -- MC averaging vs weight scaling (Fig. 11) -----------------------------------------------------

def experiment_mc(*, hidden=(256, 256), n_train=None, max_steps=3000, patience=600,
                  ks=(1, 2, 5, 10, 20, 50, 100), repeats=5, input_rate=0.2, hidden_rate=0.5, seed=0,
                  verbose=False):
    """Test error of MC dropout with k passes (mean over `repeats`) vs weight scaling."""
    config = dict(hidden=list(hidden), n_train=n_train, max_steps=max_steps, patience=patience,
                  ks=list(ks), repeats=repeats, input_rate=input_rate, hidden_rate=hidden_rate,
                  seed=seed)
    result = ExperimentResult("mc", config, budget=_budget_text(max_steps, patience), seeds=[seed])
    start = time.perf_counter()
    X, _, X_test, y_test = _data(n_train, seed)
    _log(verbose, "mc: training the dropout net")
    net, run = _trained_net(n_train, seed, hidden, (input_rate, hidden_rate), max_steps=max_steps,
                            patience=patience)
    scaled_error = _error(net.predict_proba(X_test), y_test)
    k_max = max(ks)
    _log(verbose, f"mc: {repeats} x {k_max} stochastic passes")
    mc_start = time.perf_counter()
    samples = ensemble.mc_predict(net, X_test, k_max * repeats, seed=seed, return_samples=True).samples
    mc_seconds = time.perf_counter() - mc_start
    rows, means = [], []
    for k in ks:
        errs = [_error(samples[r * k_max:r * k_max + k].mean(axis=0), y_test) for r in range(repeats)]
        means.append(float(np.mean(errs)))
        rows.append([k, 100 * means[-1], 100 * float(np.std(errs)), 100 * scaled_error,
                     100 * (means[-1] - scaled_error)])
    result.tables.append(Table(
        f"{'-'.join(map(str, [X.shape[1], *hidden, 10]))}, dropout {input_rate}/{hidden_rate}, "
        f"{X.shape[0]} digits, {run.steps} SGD steps. MC averaging over k stochastic passes "
        f"(mean and sd over {repeats} repeats) vs weight scaling",
        ["k", "MC test error %", "sd over repeats", "weight scaling %", "MC minus weight scaling"],
        rows, ["{}", "{:.2f}", "{:.2f}", "{:.2f}", "{:+.2f}"]))
    result.series = dict(ks=list(ks), means=means, scaled=scaled_error)
    result.headline = {"weight scaling test error %": 100 * scaled_error,
                       "MC test error %, k = 1": 100 * means[0],
                       f"MC test error %, k = {ks[-1]}": 100 * means[-1],
                       f"smallest k within {MC_TOLERANCE} points of weight scaling":
                           _matching_k(ks, means, scaled_error),
                       "MC passes per second (1000 inputs)": k_max * repeats / mc_seconds}
    result.seconds = time.perf_counter() - start
    return result


#: MC "matches" weight scaling when its mean test error is at most this many points above
MC_TOLERANCE = 0.5


def _matching_k(ks, means, scaled):
    return next((k for k, m in zip(ks, means) if 100 * (m - scaled) <= MC_TOLERANCE + 1e-9), None)


def _conclude_mc(result):
    s = result.series
    k = _matching_k(s["ks"], s["means"], s["scaled"])
    return {
        "one stochastic pass is worse than weight scaling": s["means"][0] > s["scaled"],
        "more passes help": s["means"][-1] < s["means"][0],
        f"MC averaging within {MC_TOLERANCE} points of weight scaling by k = 50":
            k is not None and k <= 50,
    }


# -- plotting ---------------------------------------------------------------------------------------
#
# Each figure of the report draws one claim's evidence; `FIGURES` names them, with the
# experiments they draw on and an alt text saying what they show.  Wherever a result holds
# several seeds, lines and bars carry error bars of ± sd over the seeds.

def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _errorbar(ax, x, y, sd, **kwargs):
    """A line with markers, and error bars of ± sd over seeds when there is more than one."""
    ax.errorbar(x, y, yerr=sd, marker="o", capsize=3 if sd is not None else 0, **kwargs)


def _log_errors(values, sd):
    """Error bars for a log axis: ± sd, the lower arm stopping short of zero."""
    if sd is None:
        return None
    values, sd = np.asarray(values, dtype=float), np.asarray(sd, dtype=float)
    return np.vstack([np.minimum(sd, 0.9 * values), sd])


def _sd(result, *keys):
    """The sd over seeds of ``result.series[keys...]``, or None with one seed."""
    value = result.series_sd
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _times(values, factor):
    return None if values is None else [factor * v for v in values]


def _floor(values, low=1e-17):
    return np.maximum(np.asarray(values, dtype=float), low)


def _draw_conventions(fig, r):
    s = r.series
    conv, example = s["convergence"], s["example"]
    left, mid, right = fig.subplots(1, 3, gridspec_kw=dict(width_ratios=[1.4, 1, 1]))
    for name in ("classical", "inverted"):
        _errorbar(left, conv["masks"], _floor(conv[name]),
                  _log_errors(conv[name], _sd(r, "convergence", name)), label=name,
                  **(dict(markersize=9, markerfacecolor="none") if name == "classical" else
                     dict(linestyle="--")))
    masks = np.asarray(conv["masks"], dtype=float)
    left.text(0.04, 0.05, "the two curves coincide:\ninverted = classical / p", fontsize=8,
              transform=left.transAxes)
    left.plot(masks, 1 / np.sqrt(masks), color="0.5", linestyle=":", label="1/√masks")
    left.set(xscale="log", yscale="log", xlabel="masks averaged",
             ylabel="max relative |training mean − test output|",
             title="each training mean → its own test output")
    left.legend(fontsize=8)
    classical, inverted = np.asarray(example["classical"]), np.asarray(example["inverted"])
    top = float(inverted.max()) or 1.0
    for ax, data, title in ((mid, classical, f"classical x·m, seed {r.seeds[0]}"),
                            (right, inverted, "inverted x·m/p, the same masks")):
        image = ax.imshow(data, vmin=0, vmax=top, cmap="magma", aspect="auto", interpolation="nearest")
        ax.set(title=title, xlabel="unit", ylabel="mask")
    fig.colorbar(image, ax=[mid, right], label="output (0 = dropped)", shrink=0.9)


def _draw_expectation(fig, r):
    s = r.series
    ax = fig.subplots()
    ax.barh(range(len(s["stages"])), _floor(s["gaps"]), log=True, color="tab:blue",
            xerr=_log_errors(s["gaps"], _sd(r, "gaps")), capsize=4)
    ax.set_yticks(range(len(s["stages"])), s["stages"])
    ax.invert_yaxis()
    ax.set(xlabel="max |expectation over all masks − scaled (deterministic) net|",
           title=f"over all 2^{r.config['units']} masks: exact up to the first nonlinearity")


def _draw_nwgm(fig, r):
    s = r.series
    left, right = fig.subplots(1, 2)
    for activation, gaps in s["gaps"].items():
        _errorbar(left, s["depths"], _floor(gaps), _log_errors(gaps, _sd(r, "gaps", activation)),
                  label=activation)
    left.set(yscale="log", xlabel="hidden layers between the dropout layer and the softmax",
             ylabel="max |weight scaling − NWGM|", title="exact at depth 0, not after nonlinear layers")
    left.set_xticks(s["depths"])
    left.legend(fontsize=8)
    _errorbar(right, s["scales"], _floor(s["scale_gaps"]),
              _log_errors(s["scale_gaps"], _sd(r, "scale_gaps")), color="tab:orange")
    right.set(xscale="log", yscale="log", xlabel="weight scale (strength of the nonlinearity)",
              ylabel="max |weight scaling − NWGM|",
              title=f"{s['scale_activation']}, 2 layers: the gap grows with the scale")


def _by_activation(r, key):
    """A per-row series of the nwgm table (activation-major) as activation -> per-depth list."""
    s, n = r.series, len(r.series["depths"])
    sd = _sd(r, key)
    out = {}
    for i, activation in enumerate(s["gaps"]):
        out[activation] = (s[key][i * n:(i + 1) * n], None if sd is None else sd[i * n:(i + 1) * n])
    return out


def _draw_geometric(fig, r):
    s = r.series
    left, right = fig.subplots(1, 2)
    for activation, (values, sd) in _by_activation(r, "nwgm_vs_am").items():
        _errorbar(left, s["depths"], _floor(values), _log_errors(values, sd), label=activation)
    left.set(yscale="log", xlabel="hidden layers after the dropout layer",
             ylabel="max |NWGM − arithmetic mean|", title="geometric vs arithmetic mean of the thinned nets")
    left.set_xticks(s["depths"])
    left.legend(fontsize=8)
    for activation, (values, sd) in _by_activation(r, "argmax_agreement").items():
        _errorbar(right, s["depths"], values, sd, label=activation)
    right.set(xlabel="hidden layers after the dropout layer",
              ylabel="inputs where both pick the same class (%)",
              title="weight scaling vs the arithmetic mean: same class?")
    right.set_xticks(s["depths"])


def _draw_mc(fig, r):
    s = r.series
    ax = fig.subplots()
    _errorbar(ax, s["ks"], _times(s["means"], 100), _times(_sd(r, "means"), 100),
              label="MC averaging of k passes", color="tab:blue")
    scaled, scaled_sd = 100 * s["scaled"], 100 * (_sd(r, "scaled") or 0.0)
    ax.axhline(scaled, color="k", linestyle="--", label="weight scaling")
    if scaled_sd:
        ax.axhspan(scaled - scaled_sd, scaled + scaled_sd, color="0.5", alpha=0.2,
                   label="weight scaling ± sd")
    ax.axhspan(scaled, scaled + MC_TOLERANCE, color="tab:green", alpha=0.12,
               label=f"within {MC_TOLERANCE} points")
    ax.set(xscale="log", xlabel="k (stochastic passes averaged)", ylabel="test error (%)",
           title="MC averaging vs weight scaling")
    ax.set_xticks(s["ks"], [str(k) for k in s["ks"]])
    ax.minorticks_off()
    ax.legend(fontsize=8)


_MODEL_COLOURS = ["0.55", "tab:green", "tab:blue", "tab:orange"]


def _draw_bagging(fig, r):
    s = r.series
    axes = fig.subplots(1, 4)
    positions = np.arange(len(s["labels"]))
    errors, errors_sd = _times(s["errors"], 100), _times(_sd(r, "errors"), 100)
    for i in positions:
        axes[0].errorbar([i], [errors[i]], yerr=None if errors_sd is None else [errors_sd[i]],
                         marker="o", markersize=8, capsize=4, color=_MODEL_COLOURS[i])
    axes[0].set(title="test error (%)", xlim=(-0.5, len(positions) - 0.5))
    for ax, key, title in zip(axes[1:], ("steps", "times", "megabytes"),
                              ("SGD steps", "training time (s)", "parameters (MB)")):
        ax.bar(positions, s[key], yerr=_sd(r, key), capsize=4, color=_MODEL_COLOURS)
        ax.set_title(title)
    for ax in axes:
        ax.set_xticks(positions, s["labels"], fontsize=8, rotation=20)
    fig.suptitle("one dropout net vs explicit ensembles", fontsize=10)


def _draw_coadaptation(fig, r):
    s = r.series
    left, mid, right = fig.subplots(1, 3)
    for name, errs in s["errors"].items():
        _errorbar(left, _times(s["removals"], 100), _times(errs, 100),
                  _times(_sd(r, "errors", name), 100), label=name)
    left.set(xlabel="hidden units removed at test time (%)", ylabel="test error (%)",
             title="robustness to removed units")
    left.legend(fontsize=8)
    for name, means in s["sorted_unit_means"].items():
        rank = np.arange(1, len(means) + 1)
        mid.plot(rank, means, label=name)
        sd = _sd(r, "sorted_unit_means", name)
        if sd is not None:
            mid.fill_between(rank, np.subtract(means, sd), np.add(means, sd), alpha=0.25)
    mid.set(xlabel="units of the last hidden layer, most active first",
            ylabel="mean activation on the test digits", title="activation per unit")
    mid.legend(fontsize=8)
    names = list(s["active_share"])
    right.bar(names, [s["active_share"][n] for n in names],
              yerr=[(_sd(r, "active_share") or {}).get(n, 0.0) for n in names], capsize=4,
              color=["tab:blue", "tab:orange"][:len(names)])
    right.set(ylabel="activations > 0 (%)", title="active share: lower is sparser")


def _draw_rate(fig, r):
    panels = r.series
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (label, s) in zip(axes, panels.items()):
        keep = [1 - rate for rate in s["rates"]]
        for key in ("train", "test"):
            _errorbar(ax, keep, _times(s[key], 100), _times(_sd(r, label, key), 100),
                      label=f"{key} error")
        ax.set(xlabel="keep probability p of the hidden units", ylabel="error (%)",
               title=f"hidden dropout rate, {label}")
        ax.legend(fontsize=8)


def _draw_datasize(fig, r):
    s = r.series
    left, right = fig.subplots(1, 2)
    for name, errs in s["errors"].items():
        _errorbar(left, s["sizes"], _times(errs, 100), _times(_sd(r, "errors", name), 100), label=name)
    left.set(xscale="log", xlabel="training digits", ylabel="test error (%)",
             title="test error vs training-set size")
    left.legend(fontsize=8)
    _errorbar(right, s["sizes"], s["gains"], _sd(r, "gains"), color="tab:green")
    right.axhline(0, color="0.4", linewidth=1)
    right.set(xscale="log", xlabel="training digits", ylabel="no dropout − dropout (points)",
              title="gain from dropout")
    for ax in (left, right):  # the sizes themselves as ticks, after the log scale is set
        ax.set_xticks(s["sizes"], [str(n) for n in s["sizes"]])
        ax.minorticks_off()


def _draw_digits(fig, r):
    """Each seed's pair of test errors at the largest training set, and their mean ± sd."""
    ax = fig.subplots()
    per_seed = r.seed_series or [r.series]
    names = list(r.series["errors"])
    for seed, series in zip(r.seeds, per_seed):
        values = [100 * series["errors"][n][-1] for n in names]
        ax.plot([0, 1], values, color="0.6", marker="o", linewidth=1)
        ax.annotate(f"seed {seed}", (1, values[1]), xytext=(6, 0), textcoords="offset points",
                    fontsize=7, va="center", color="0.4")
    means = [100 * r.series["errors"][n][-1] for n in names]
    sds = [_sd(r, "errors", n) for n in names]
    ax.errorbar([-0.12, 1.12], means, yerr=None if sds[0] is None else [100 * sd[-1] for sd in sds],
                color="k", marker="s", capsize=5, linestyle="none", label="mean ± sd over seeds")
    ax.set_xticks([0, 1], names)
    ax.set(xlim=(-0.4, 1.5), ylabel="test error (%) on 1000 test digits",
           title=f"all {r.series['sizes'][-1]} training digits: each grey line one seed")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)


@dataclass(frozen=True)
class Figure:
    """One figure: the experiments it draws on, how, its size (inches), its alt text."""
    experiments: tuple
    draw: object  # (matplotlib figure, *results) -> None
    size: tuple
    alt: str


FIGURES = {
    "conventions": Figure(("scaling",), _draw_conventions, (12, 3.6),
                          "Classical and inverted dropout. Left: on log axes, the largest relative "
                          "gap between each convention's mean output over sampled masks and its own "
                          "test-time output, against the number of masks averaged, with a dotted "
                          "one-over-root-n line for sampling noise. Right: heat maps of both "
                          "conventions' outputs for the same twelve masks, units across, masks down, "
                          "dropped units black."),
    "expectation": Figure(("scaling",), _draw_expectation, (8, 3.2),
                          "Horizontal bars on a log scale: the largest gap between the exact "
                          "expectation over all masks and the deterministic scaled net at four "
                          "stages, the dropped units, after the next affine layer, after the ReLU "
                          "and at the logits."),
    "nwgm": Figure(("nwgm",), _draw_nwgm, (11, 3.8),
                   "Left: on a log scale, the largest gap between weight scaling and the normalized "
                   "geometric mean of all thinned nets against the number of hidden layers between "
                   "the dropout layer and the softmax, one line per activation (linear, tanh, relu, "
                   "sigmoid). Right: the same gap for two tanh layers against the weight scale, "
                   "which sets how strongly nonlinear they are."),
    "geometric": Figure(("nwgm",), _draw_geometric, (11, 3.8),
                        "Left: on a log scale, the largest gap between the normalized geometric "
                        "mean and the arithmetic mean of the thinned nets' predictions against the "
                        "number of hidden layers after the dropout layer, one line per activation. "
                        "Right: the share of inputs on which weight scaling and the arithmetic mean "
                        "pick the same class, against the same depths."),
    "mc": Figure(("mc",), _draw_mc, (7, 4),
                 "Test error of MC dropout, averaging k stochastic passes, against k on a log axis, "
                 "beside a dashed line at the test error of weight scaling and a shaded band of "
                 "the tolerance above it."),
    "bagging": Figure(("bagging",), _draw_bagging, (13, 3.8),
                      "Four panels comparing one net, a bag of bootstrap nets, an ensemble of nets "
                      "trained on all the data, and one dropout net: test error as points, then SGD "
                      "steps, training time and parameter memory as bars."),
    "coadaptation": Figure(("coadaptation",), _draw_coadaptation, (13, 3.8),
                           "Left: test error against the share of hidden units removed at test "
                           "time, for the nets trained with and without dropout. Middle: the mean "
                           "activation of each unit of the last hidden layer, most active first, "
                           "for both nets. Right: bars of the share of active (non-zero) "
                           "activations of both nets."),
    "rate": Figure(("rate",), _draw_rate, (6.5, 4),
                   "Training error and test error of one net against the keep probability p of "
                   "its hidden units (one minus the dropout rate), a net trained at each rate."),
    "datasize": Figure(("datasize",), _draw_datasize, (11, 3.8),
                       "Left: test error against the number of training digits on a log axis, for "
                       "nets trained with and without dropout. Right: the gain from dropout (test "
                       "error without minus with) at each size, against a zero line."),
    "digits": Figure(("datasize",), _draw_digits, (6, 4),
                     "Test error of the net without and with dropout trained on all the training "
                     "digits, a grey line per seed joining its two errors, and black squares for "
                     "their mean over seeds."),
}


def _save(fig, path):
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)


def plot_figure(name, results, path):
    """Save figure `name` of `FIGURES` to `path`, drawn from `results` (experiment -> result)."""
    figure = FIGURES[name]
    fig = _pyplot().figure(figsize=figure.size, layout="constrained")
    figure.draw(fig, *[results[n] for n in figure.experiments])
    _save(fig, path)


def _experiment_plot(name):
    """The plot of `fastdrop experiment NAME --plot`: every figure drawn from that experiment
    alone, one under the other."""
    names = [f for f, figure in FIGURES.items() if figure.experiments == (name,)]

    def plot(result, path):
        figures = [FIGURES[f] for f in names]
        fig = _pyplot().figure(figsize=(max(f.size[0] for f in figures), sum(f.size[1] for f in figures)),
                               layout="constrained")
        parts = fig.subfigures(len(figures), 1, height_ratios=[f.size[1] for f in figures],
                               squeeze=False)[:, 0]
        for part, figure in zip(parts, figures):
            figure.draw(part, result)
        _save(fig, path)

    return plot


def matplotlib_available():
    return importlib.util.find_spec("matplotlib") is not None


# -- the registry -----------------------------------------------------------------------

@dataclass(frozen=True)
class Experiment:
    """One experiment: its function, plot, conclusions, and quick and full configurations."""
    function: object
    plot: object
    conclude: object
    quick: dict
    full: dict
    description: str


#: name -> Experiment.  Quick mode trains 256-256 nets on 1000 of the 4000 digits (but for
#: datasize) with a smaller step cap; the full one trains them on all 4000 with a longer
#: patience, at more rates, sizes and k.  Early stopping gives every net the steps it needs,
#: so both modes reach the same conclusions; the full one fits three seeds in about ten
#: minutes on 2 cores (``fastdrop report`` runs three by default).
EXPERIMENTS = {
    "scaling": Experiment(
        experiment_scaling, _experiment_plot("scaling"), _conclude_scaling,
        dict(units=10, samples=20000), dict(units=14, samples=200000),
        "classical vs inverted scaling; expectation exact through the affine layer, not after ReLU"),
    "nwgm": Experiment(
        experiment_nwgm, _experiment_plot("nwgm"), _conclude_nwgm,
        dict(units=10, inputs=100, scales=(0.5, 1.0, 2.0, 4.0)),
        dict(units=12, depths=(0, 1, 2, 3, 4), inputs=100),
        "weight scaling vs NWGM vs arithmetic mean over all 2^n thinned nets, by depth and nonlinearity"),
    "bagging": Experiment(
        experiment_bagging, _experiment_plot("bagging"), _conclude_bagging,
        dict(k=5, hidden=(256, 256), n_train=1000, max_steps=1500, patience=300),
        dict(k=5, hidden=(256, 256), max_steps=3000, patience=600),
        "one dropout net vs k bootstrap nets and k all-data nets: test error, time, memory"),
    "coadaptation": Experiment(
        experiment_coadaptation, _experiment_plot("coadaptation"), _conclude_coadaptation,
        dict(hidden=(256, 256), n_train=1000, max_steps=1500, patience=300, repeats=3,
             removals=(0.0, 0.2, 0.4, 0.5, 0.6, 0.8)),
        dict(hidden=(256, 256), max_steps=3000, patience=600, repeats=10),
        "test error as hidden units are removed at test time; hidden activation sparsity"),
    "rate": Experiment(
        experiment_rate, _experiment_plot("rate"), _conclude_rate,
        dict(rates=(0.0, 0.2, 0.5, 0.8), hidden=(256, 256), n_train=1000, max_steps=1500,
             patience=300),
        dict(rates=(0.0, 0.2, 0.4, 0.5, 0.6, 0.8), hidden=(256, 256), max_steps=3000,
             patience=600),
        "train/test error vs the hidden dropout rate (Srivastava et al. 2014, Fig. 9)"),
    "datasize": Experiment(
        experiment_datasize, _experiment_plot("datasize"), _conclude_datasize,
        dict(sizes=(250, 1000, 4000), hidden=(256, 256), max_steps=1500, patience=300),
        dict(sizes=(100, 250, 500, 1000, 2000, 4000), hidden=(256, 256), max_steps=3000,
             patience=600),
        "with and without dropout vs training-set size (Fig. 10)"),
    "mc": Experiment(
        experiment_mc, _experiment_plot("mc"), _conclude_mc,
        dict(hidden=(256, 256), n_train=1000, max_steps=1500, patience=300,
             ks=(1, 2, 5, 10, 20, 50), repeats=3),
        dict(hidden=(256, 256), max_steps=3000, patience=600, ks=(1, 2, 5, 10, 20, 50, 100),
             repeats=5),
        "MC averaging of k stochastic passes vs weight scaling (Fig. 11)"),
}


def run_experiment(name, *, quick=False, seed=0, seeds=1, verbose=False, **overrides):
    """Run experiment `name` with its quick or full configuration (plus any overrides) at
    seeds ``seed, seed + 1, ..., seed + seeds - 1``; with several seeds the result holds
    mean ± sd (see `combine`).  Its ``conclusions`` are drawn from the means."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of {sorted(EXPERIMENTS)}")
    if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or seeds < 1:
        raise ValueError(f"seeds must be an int >= 1, got {seeds!r}")
    experiment = EXPERIMENTS[name]
    config = dict(experiment.quick if quick else experiment.full)
    config.update(overrides)
    results = []
    for i in range(seeds):
        if seeds > 1:
            _log(verbose, f"{name}: seed {seed + i} ({i + 1} of {seeds})")
        results.append(experiment.function(seed=seed + i, verbose=verbose, **config))
    result = combine(results)
    result.conclusions = experiment.conclude(result)
    return result


def plot_result(result, path):
    """Save `result`'s figure to `path` (needs matplotlib)."""
    EXPERIMENTS[result.name].plot(result, path)
