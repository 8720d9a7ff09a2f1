"""The tutorial's claims, measured: one function per experiment.

Each experiment is a function returning an `ExperimentResult` (tables of numbers, a few
headline figures, and the series its plot draws), so it can be called from Python with
any configuration; `run_experiment` runs one by name with its quick or full
configuration (as ``fastdrop experiment NAME [--quick]`` does).

- ``nwgm``: weight scaling vs the NWGM and the arithmetic mean of all 2^n thinned nets of
  one dropout layer, as depth and nonlinearity after that layer grow (random nets).
- ``bagging``: k nets on bootstrap samples, averaged, vs one dropout net (Srivastava et
  al. 2014 compare dropout to model averaging; here test error, time and memory).
- ``coadaptation``: test error as random hidden units are removed at test time, with and
  without dropout in training; mean hidden activations (their Fig. 8: sparser with dropout).
- ``rate``: test error vs the hidden dropout rate (their Fig. 9).
- ``datasize``: with and without dropout vs training-set size (their Fig. 10).
- ``mc``: MC averaging of k stochastic passes vs weight scaling (their Fig. 11).

Trained experiments use the bundled MNIST subset (`fastdrop.datasets.load_mnist5k`,
4000 train / 1000 test).  matplotlib is optional and imported only to save a plot.
"""
import importlib.util
import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ..datasets import load_mnist5k
from ..nn import SGD, Dense, Dropout, ReLU, Sequential, Sigmoid, Tanh, build_mlp, fit
from . import ensemble

PLOT_HINT = "matplotlib is not installed; install it (pip install 'fastdrop[plot]') to save plots"


# -- results -----------------------------------------------------------------------------

@dataclass
class Table:
    title: str
    columns: list
    rows: list  # lists of values; floats are formatted with the column's format
    formats: list = None

    def __str__(self):
        formats = self.formats or ["{}"] * len(self.columns)
        cells = [[fmt.format(v) if not isinstance(v, str) else v for fmt, v in zip(formats, row)]
                 for row in self.rows]
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(self.columns)]
        line = lambda values: "  ".join(v.rjust(w) for v, w in zip(values, widths))
        out = [self.title, line(self.columns), line(["-" * w for w in widths])]
        out += [line(r) for r in cells]
        return "\n".join(out)


@dataclass
class ExperimentResult:
    name: str
    config: dict
    tables: list = field(default_factory=list)
    headline: dict = field(default_factory=dict)  # label -> number, the figures to quote
    series: dict = field(default_factory=dict)    # what the plot draws
    seconds: float = 0.0

    def __str__(self):
        parts = [str(t) for t in self.tables]
        if self.headline:
            width = max(len(k) for k in self.headline)
            parts.append("headline:\n" + "\n".join(
                f"  {k.ljust(width)}  {_headline_value(v)}" for k, v in self.headline.items()))
        parts.append(f"({self.name}: {self.seconds:.1f} s, seed {self.config.get('seed')})")
        return "\n\n".join(parts)


def _headline_value(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _log(verbose, message):
    if verbose:
        print(message, file=sys.stderr, flush=True)


# -- shared training helpers ------------------------------------------------------------

def _data(n_train=None, seed=0):
    """The bundled MNIST subset; with n_train, a random subset (fixed by seed) of its training part."""
    X_train, y_train, X_test, y_test = load_mnist5k()
    if n_train is not None and n_train < X_train.shape[0]:
        rows = np.random.default_rng(seed).permutation(X_train.shape[0])[:n_train]
        X_train, y_train = X_train[rows], y_train[rows]
    return X_train, y_train, X_test, y_test


def _build(sizes, input_rate, hidden_rate, seed):
    return build_mlp(sizes, input_rate=input_rate, hidden_rate=hidden_rate, seed=seed)


def _train(model, X, y, *, epochs, seed, dropout, lr=0.05, batch_size=100):
    """SGD with momentum (and max-norm 3 for dropout nets, as Srivastava et al. 2014)."""
    optimizer = SGD(lr=lr, momentum=0.9, max_norm=3.0 if dropout else None)
    start = time.perf_counter()
    fit(model, X, y, epochs=epochs, batch_size=batch_size, optimizer=optimizer, seed=seed,
        progress=False)
    return time.perf_counter() - start


def _error(proba, y):
    return float(np.mean(np.argmax(proba, axis=1) != y))


def _param_bytes(model):
    return sum(p.nbytes for p in model.params())


def _epochs_for_steps(steps, n, batch_size=100):
    return max(1, math.ceil(steps * batch_size / n))


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
    result = ExperimentResult("nwgm", config)
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
                         scale_activation=scale_activation)
    exact = [r[2] for r in rows if r[1] == 0 or r[0] == "linear"]
    result.headline = {
        "max |det - NWGM| where exact (depth 0 or linear)": max(exact) if exact else float("nan"),
    }
    for activation in activations:
        if activation != "linear" and depths:
            result.headline[f"max |det - NWGM|, {activation} depth {max(depths)}"] = gaps[activation][-1]
    result.seconds = time.perf_counter() - start
    return result


def _plot_nwgm(result, path):
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    s = result.series
    for activation, gaps in s["gaps"].items():
        left.semilogy(s["depths"], np.maximum(gaps, 1e-17), marker="o", label=activation)
    left.set(xlabel="hidden layers after the dropout layer", ylabel="max |weight scaling - NWGM|",
             title="NWGM identity and its gap")
    left.set_xticks(s["depths"])
    left.legend()
    right.loglog(s["scales"], np.maximum(s["scale_gaps"], 1e-17), marker="o")
    right.set(xlabel="weight scale", ylabel="max |weight scaling - NWGM|",
              title=f"{s['scale_activation']}: stronger nonlinearity")
    _save(fig, path)


# -- bagging vs dropout ------------------------------------------------------------------------

def experiment_bagging(*, k=5, hidden=(256, 256), epochs=15, dropout_epochs=None, n_train=None,
                       input_rate=0.2, hidden_rate=0.5, seed=0, verbose=False):
    """k nets trained on bootstrap samples and averaged vs one dropout net of the same shape."""
    dropout_epochs = epochs if dropout_epochs is None else dropout_epochs
    config = dict(k=k, hidden=list(hidden), epochs=epochs, dropout_epochs=dropout_epochs,
                  n_train=n_train, input_rate=input_rate, hidden_rate=hidden_rate, seed=seed)
    result = ExperimentResult("bagging", config)
    start = time.perf_counter()
    X, y, X_test, y_test = _data(n_train, seed)
    sizes = [X.shape[1], *hidden, 10]
    rng = np.random.default_rng(seed)

    # one throwaway step first, so no timed run pays for thread-pool start-up and first touches
    _train(_build(sizes, input_rate, hidden_rate, seed), X[:100], y[:100], epochs=1, seed=seed,
           dropout=True)
    _log(verbose, "bagging: single net")
    single = _build(sizes, 0.0, 0.0, seed)
    single_time = _train(single, X, y, epochs=epochs, seed=seed, dropout=False)
    single_error = _error(single.predict_proba(X_test), y_test)

    member_proba, member_errors, bag_time, bag_bytes = [], [], 0.0, 0
    for member in range(k):
        _log(verbose, f"bagging: member {member + 1}/{k}")
        rows = rng.integers(0, X.shape[0], X.shape[0])  # a bootstrap sample
        net = _build(sizes, 0.0, 0.0, seed + 1 + member)
        bag_time += _train(net, X[rows], y[rows], epochs=epochs, seed=seed + 1 + member, dropout=False)
        proba = net.predict_proba(X_test)
        member_proba.append(proba)
        member_errors.append(_error(proba, y_test))
        bag_bytes += _param_bytes(net)
    bag_error = _error(np.mean(member_proba, axis=0), y_test)
    bag_geo_error = _error(ensemble.nwgm(np.stack(member_proba), np.ones(k)), y_test)

    _log(verbose, "bagging: dropout net")
    dropped = _build(sizes, input_rate, hidden_rate, seed)
    dropout_time = _train(dropped, X, y, epochs=dropout_epochs, seed=seed, dropout=True)
    dropout_error = _error(dropped.predict_proba(X_test), y_test)

    arch = "-".join(str(s) for s in sizes)
    result.tables.append(Table(
        f"{arch} on {X.shape[0]} training digits, test on {X_test.shape[0]} ({epochs} epochs; "
        f"the dropout net {dropout_epochs})",
        ["model", "test error %", "train s", "params MB"],
        [["one net, no dropout", 100 * single_error, single_time, _param_bytes(single) / 2**20],
         [f"bagging: mean of {k} bootstrap nets", 100 * bag_error, bag_time, bag_bytes / 2**20],
         [f"bagging: NWGM of the {k} nets", 100 * bag_geo_error, bag_time, bag_bytes / 2**20],
         ["  (its members: mean error)", 100 * float(np.mean(member_errors)), bag_time / max(k, 1),
          bag_bytes / max(k, 1) / 2**20],
         [f"one dropout net ({input_rate}/{hidden_rate})", 100 * dropout_error, dropout_time,
          _param_bytes(dropped) / 2**20]],
        ["{}", "{:.2f}", "{:.1f}", "{:.2f}"]))
    result.series = dict(labels=["single", f"bag of {k}", "dropout"],
                         errors=[single_error, bag_error, dropout_error],
                         times=[single_time, bag_time, dropout_time],
                         megabytes=[_param_bytes(single) / 2**20, bag_bytes / 2**20,
                                    _param_bytes(dropped) / 2**20])
    result.headline = {"test error %, single net": 100 * single_error,
                       f"test error %, bag of {k}": 100 * bag_error,
                       "test error %, dropout net": 100 * dropout_error,
                       "train time bag / dropout": bag_time / dropout_time if dropout_time else float("nan"),
                       "parameter memory bag / dropout": bag_bytes / _param_bytes(dropped)}
    result.seconds = time.perf_counter() - start
    return result


def _plot_bagging(result, path):
    plt = _pyplot()
    s = result.series
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.5))
    for ax, key, label in zip(axes, ("errors", "times", "megabytes"),
                              ("test error", "training time (s)", "parameters (MB)")):
        values = [100 * v for v in s[key]] if key == "errors" else s[key]
        ax.bar(s["labels"], values, color=["0.6", "tab:blue", "tab:orange"])
        ax.set_title(label + (" (%)" if key == "errors" else ""))
    _save(fig, path)


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


def experiment_coadaptation(*, hidden=(256, 256), epochs=15, dropout_epochs=None, n_train=None,
                            removals=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8), repeats=5,
                            input_rate=0.2, hidden_rate=0.5, seed=0, verbose=False):
    """Test error under random removal of hidden units, and hidden activation statistics."""
    dropout_epochs = epochs if dropout_epochs is None else dropout_epochs
    config = dict(hidden=list(hidden), epochs=epochs, dropout_epochs=dropout_epochs, n_train=n_train,
                  removals=list(removals), repeats=repeats, input_rate=input_rate,
                  hidden_rate=hidden_rate, seed=seed)
    result = ExperimentResult("coadaptation", config)
    start = time.perf_counter()
    X, y, X_test, y_test = _data(n_train, seed)
    sizes = [X.shape[1], *hidden, 10]
    nets = {}
    for name, rates in (("no dropout", (0.0, 0.0)), ("dropout", (input_rate, hidden_rate))):
        _log(verbose, f"coadaptation: training the net with {name}")
        net = _build(sizes, *rates, seed)
        dropout = rates[1] > 0
        _train(net, X, y, epochs=dropout_epochs if dropout else epochs, seed=seed, dropout=dropout)
        nets[name] = net
    errors = {name: [] for name in nets}
    spread = {name: [] for name in nets}
    for removal in removals:
        for name, net in nets.items():
            rng = np.random.default_rng([seed, int(round(removal * 1000))])
            runs = [_error(ensemble._softmax(_forward_removing_units(net, X_test, removal, rng)), y_test)
                    for _ in range(repeats if removal > 0 else 1)]
            errors[name].append(float(np.mean(runs)))
            spread[name].append(float(np.std(runs)))
    result.tables.append(Table(
        f"{'-'.join(map(str, sizes))} on {X.shape[0]} digits ({epochs} epochs; with dropout "
        f"{input_rate}/{hidden_rate}: {dropout_epochs}). "
        f"Test error % with a random share of every hidden layer's units removed at test time "
        f"(mean of {repeats} draws; survivors scaled by 1/(1-share))",
        ["removed", *[f"{n} (±sd)" for n in nets]],
        [[f"{r:.0%}", *[f"{100 * errors[n][i]:.2f} ±{100 * spread[n][i]:.2f}" for n in nets]]
         for i, r in enumerate(removals)]))
    stats_rows, mean_acts = [], {}
    for name, net in nets.items():
        acts = _hidden_activations(net, X_test)
        last = acts[-1]
        unit_means = last.mean(axis=0)
        mean_acts[name] = unit_means
        stats_rows.append([name, float(unit_means.mean()), float(np.median(unit_means)),
                           100 * float(np.mean(last > 0)),
                           100 * float(np.mean(unit_means < 0.1 * unit_means.max()))])
    result.tables.append(Table(
        "last hidden layer on the test set (Srivastava et al. 2014, Fig. 8: dropout -> sparser)",
        ["net", "mean act.", "median unit mean", "active %", "units < 10% of max mean %"],
        stats_rows, ["{}", "{:.3f}", "{:.3f}", "{:.1f}", "{:.1f}"]))
    result.series = dict(removals=list(removals), errors=errors, mean_activations=mean_acts)
    half = min(range(len(removals)), key=lambda i: abs(removals[i] - 0.5))
    result.headline = {}
    for name in nets:
        result.headline[f"test error %, {name}, nothing removed"] = 100 * errors[name][0]
        result.headline[f"test error %, {name}, {removals[half]:.0%} removed"] = 100 * errors[name][half]
    for row in stats_rows:
        result.headline[f"active share %, {row[0]}"] = row[3]
    result.seconds = time.perf_counter() - start
    return result


def _plot_coadaptation(result, path):
    plt = _pyplot()
    s = result.series
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for name, errs in s["errors"].items():
        axes[0].plot([100 * r for r in s["removals"]], [100 * e for e in errs], marker="o", label=name)
    axes[0].set(xlabel="hidden units removed at test time (%)", ylabel="test error (%)")
    axes[0].legend()
    for ax, (name, means) in zip(axes[1:], s["mean_activations"].items()):
        ax.hist(means, bins=40)
        ax.set(title=f"{name}: mean activation per unit", xlabel="mean activation", ylabel="units")
    _save(fig, path)


# -- dropout rate (Fig. 9) ----------------------------------------------------------------------

def experiment_rate(*, rates=(0.0, 0.2, 0.4, 0.5, 0.6, 0.8), hidden=(256, 256), epochs=15,
                    n_train=None, input_rate=0.0, fixed_pn=None, seed=0, verbose=False):
    """Train and test error vs the hidden dropout rate, with the widths fixed (Fig. 9a), and,
    when `fixed_pn` (a width) is given, with ``keep_prob * width = fixed_pn`` (Fig. 9b)."""
    config = dict(rates=list(rates), hidden=list(hidden), epochs=epochs, n_train=n_train,
                  input_rate=input_rate, fixed_pn=fixed_pn, seed=seed)
    result = ExperimentResult("rate", config)
    start = time.perf_counter()
    X, y, X_test, y_test = _data(n_train, seed)
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
            net = _build([X.shape[1], *widths, 10], input_rate, rate, seed)
            _train(net, X, y, epochs=epochs, seed=seed, dropout=rate > 0 or input_rate > 0)
            train_err = _error(net.predict_proba(X), y)
            test_err = _error(net.predict_proba(X_test), y_test)
            train_errs.append(train_err)
            test_errs.append(test_err)
            rows.append([rate, keep, "-".join(map(str, widths)), 100 * train_err, 100 * test_err])
        series[label] = dict(rates=[r[0] for r in rows], train=train_errs, test=test_errs)
        result.tables.append(Table(
            f"hidden dropout rate, {label} (input rate {input_rate}, {X.shape[0]} digits, "
            f"{epochs} epochs)",
            ["rate", "keep p", "hidden", "train error %", "test error %"], rows,
            ["{:g}", "{:g}", "{}", "{:.2f}", "{:.2f}"]))
    result.series = series
    first = series["fixed n"]
    best = int(np.argmin(first["test"]))
    result.headline = {"best hidden rate (fixed n)": first["rates"][best],
                       "test error % at the best rate": 100 * first["test"][best]}
    if 0.0 in first["rates"]:
        result.headline["test error % without dropout"] = 100 * first["test"][first["rates"].index(0.0)]
    result.seconds = time.perf_counter() - start
    return result


def _plot_rate(result, path):
    plt = _pyplot()
    panels = result.series
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, (label, s) in zip(axes[0], panels.items()):
        keep = [1 - r for r in s["rates"]]
        ax.plot(keep, [100 * e for e in s["train"]], marker="o", label="train")
        ax.plot(keep, [100 * e for e in s["test"]], marker="o", label="test")
        ax.set(xlabel="keep probability p (hidden)", ylabel="error (%)", title=label)
        ax.legend()
    _save(fig, path)


# -- data-set size (Fig. 10) ------------------------------------------------------------------

def experiment_datasize(*, sizes=(100, 250, 500, 1000, 2000, 4000), hidden=(256, 256), steps=800,
                        input_rate=0.2, hidden_rate=0.5, seed=0, verbose=False):
    """Test error with and without dropout as the training set grows (same number of steps)."""
    config = dict(sizes=list(sizes), hidden=list(hidden), steps=steps, input_rate=input_rate,
                  hidden_rate=hidden_rate, seed=seed)
    result = ExperimentResult("datasize", config)
    start = time.perf_counter()
    X_all, y_all, X_test, y_test = _data(None, seed)
    order = np.random.default_rng(seed).permutation(X_all.shape[0])
    rows, errors = [], {"no dropout": [], "dropout": []}
    for n in sizes:
        X, y = X_all[order[:n]], y_all[order[:n]]
        epochs = _epochs_for_steps(steps, n)
        row = [n, epochs]
        for name, rates in (("no dropout", (0.0, 0.0)), ("dropout", (input_rate, hidden_rate))):
            _log(verbose, f"datasize: {n} digits, {name}")
            net = _build([X.shape[1], *hidden, 10], *rates, seed)
            _train(net, X, y, epochs=epochs, seed=seed, dropout=rates[1] > 0)
            err = _error(net.predict_proba(X_test), y_test)
            errors[name].append(err)
            row.append(100 * err)
        row.append(row[2] - row[3])
        rows.append(row)
    result.tables.append(Table(
        f"test error % vs training-set size ({'-'.join(map(str, hidden))} hidden, about {steps} "
        f"SGD steps of 100 each; dropout {input_rate}/{hidden_rate})",
        ["train size", "epochs", "no dropout", "dropout", "gain (points)"], rows,
        ["{}", "{}", "{:.2f}", "{:.2f}", "{:+.2f}"]))
    result.series = dict(sizes=list(sizes), errors=errors)
    result.headline = {f"test error % at {sizes[0]}: no dropout / dropout":
                       f"{100 * errors['no dropout'][0]:.2f} / {100 * errors['dropout'][0]:.2f}",
                       f"test error % at {sizes[-1]}: no dropout / dropout":
                       f"{100 * errors['no dropout'][-1]:.2f} / {100 * errors['dropout'][-1]:.2f}"}
    result.seconds = time.perf_counter() - start
    return result


def _plot_datasize(result, path):
    plt = _pyplot()
    s = result.series
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, errs in s["errors"].items():
        ax.semilogx(s["sizes"], [100 * e for e in errs], marker="o", label=name)
    ax.set(xlabel="training-set size", ylabel="test error (%)", title="dropout vs data-set size")
    ax.legend()
    _save(fig, path)


# -- MC averaging vs weight scaling (Fig. 11) -----------------------------------------------------

def experiment_mc(*, hidden=(256, 256), epochs=15, n_train=None, ks=(1, 2, 5, 10, 20, 50, 100),
                  repeats=5, input_rate=0.2, hidden_rate=0.5, seed=0, verbose=False):
    """Test error of MC dropout with k passes (mean ± sd over `repeats`) vs weight scaling."""
    config = dict(hidden=list(hidden), epochs=epochs, n_train=n_train, ks=list(ks),
                  repeats=repeats, input_rate=input_rate, hidden_rate=hidden_rate, seed=seed)
    result = ExperimentResult("mc", config)
    start = time.perf_counter()
    X, y, X_test, y_test = _data(n_train, seed)
    net = _build([X.shape[1], *hidden, 10], input_rate, hidden_rate, seed)
    _log(verbose, "mc: training the dropout net")
    _train(net, X, y, epochs=epochs, seed=seed, dropout=True)
    scaled_error = _error(net.predict_proba(X_test), y_test)
    k_max = max(ks)
    _log(verbose, f"mc: {repeats} x {k_max} stochastic passes")
    mc_start = time.perf_counter()
    samples = ensemble.mc_predict(net, X_test, k_max * repeats, seed=seed, return_samples=True).samples
    mc_seconds = time.perf_counter() - mc_start
    rows, means, sds = [], [], []
    for k in ks:
        errs = [_error(samples[r * k_max:r * k_max + k].mean(axis=0), y_test) for r in range(repeats)]
        means.append(float(np.mean(errs)))
        sds.append(float(np.std(errs)))
        rows.append([k, 100 * means[-1], 100 * sds[-1], 100 * (means[-1] - scaled_error)])
    result.tables.append(Table(
        f"{'-'.join(map(str, [X.shape[1], *hidden, 10]))}, dropout {input_rate}/{hidden_rate}, "
        f"{epochs} epochs on {X.shape[0]} digits. MC averaging over k stochastic passes vs weight "
        f"scaling ({repeats} repeats; weight scaling: {100 * scaled_error:.2f} % test error)",
        ["k", "MC test error %", "± sd", "minus weight scaling"], rows,
        ["{}", "{:.2f}", "{:.2f}", "{:+.2f}"]))
    # errors are multiples of 1/len(y_test); compare in test digits, not in float rounding
    crossing = next((k for k, m in zip(ks, means)
                     if m * len(y_test) <= scaled_error * len(y_test) + 1e-6), None)
    result.series = dict(ks=list(ks), means=means, sds=sds, scaled=scaled_error)
    result.headline = {"weight scaling test error %": 100 * scaled_error,
                       "MC test error %, k = 1": 100 * means[0],
                       f"MC test error %, k = {ks[-1]}": 100 * means[-1],
                       "smallest k matching weight scaling": crossing if crossing else f"> {ks[-1]}",
                       "MC passes per second (1000 inputs)": k_max * repeats / mc_seconds}
    result.seconds = time.perf_counter() - start
    return result


def _plot_mc(result, path):
    plt = _pyplot()
    s = result.series
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.errorbar(s["ks"], [100 * m for m in s["means"]], yerr=[100 * d for d in s["sds"]],
                marker="o", capsize=3, label="MC model averaging")
    ax.axhline(100 * s["scaled"], color="k", linestyle="--", label="weight scaling")
    ax.set_xscale("log")
    ax.set(xlabel="k (stochastic passes averaged)", ylabel="test error (%)",
           title="MC averaging vs weight scaling")
    ax.legend()
    _save(fig, path)


# -- plotting ---------------------------------------------------------------------------------------

def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    import matplotlib.pyplot as plt

    plt.close(fig)


def matplotlib_available():
    return importlib.util.find_spec("matplotlib") is not None


# -- the registry -----------------------------------------------------------------------

#: name -> (function, plot, quick configuration, full configuration)
EXPERIMENTS = {
    "nwgm": (experiment_nwgm, _plot_nwgm,
             dict(units=10, inputs=100, scales=(0.5, 1.0, 2.0, 4.0)),
             dict(units=14, depths=(0, 1, 2, 3, 4, 6), inputs=500)),
    # Quick mode trains on 1000 of the 4000 digits: a regime where 256-unit nets overfit
    # within a few hundred steps, so dropout's effect shows in under a minute.
    "bagging": (experiment_bagging, _plot_bagging,
                dict(k=5, hidden=(256, 256), n_train=1000, epochs=30, dropout_epochs=60),
                dict(k=10, hidden=(1024, 1024), epochs=30, dropout_epochs=100)),
    "coadaptation": (experiment_coadaptation, _plot_coadaptation,
                     dict(hidden=(256, 256), n_train=1000, epochs=30, dropout_epochs=60, repeats=3,
                          removals=(0.0, 0.2, 0.4, 0.5, 0.6, 0.8)),
                     dict(hidden=(1024, 1024), epochs=50, dropout_epochs=100, repeats=10)),
    "rate": (experiment_rate, _plot_rate,
             dict(rates=(0.0, 0.2, 0.5, 0.8), hidden=(256, 256), n_train=1000, epochs=50),
             dict(rates=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), hidden=(512, 512),
                  epochs=100, input_rate=0.2, fixed_pn=128)),
    "datasize": (experiment_datasize, _plot_datasize,
                 dict(sizes=(250, 1000, 4000), hidden=(256, 256), steps=400),
                 dict(sizes=(100, 250, 500, 1000, 2000, 4000), hidden=(1024, 1024), steps=4000)),
    "mc": (experiment_mc, _plot_mc,
           dict(hidden=(256, 256), n_train=1000, epochs=60, ks=(1, 2, 5, 10, 20, 50), repeats=3),
           dict(hidden=(1024, 1024), epochs=100, ks=(1, 2, 5, 10, 20, 50, 100, 200), repeats=10)),
}


def run_experiment(name, *, quick=False, seed=0, verbose=False, **overrides):
    """Run experiment `name` with its quick or full configuration (plus any overrides)."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of {sorted(EXPERIMENTS)}")
    function, _, quick_config, full_config = EXPERIMENTS[name]
    config = dict(quick_config if quick else full_config)
    config.update(overrides)
    return function(seed=seed, verbose=verbose, **config)


def plot_result(result, path):
    """Save `result`'s figure to `path` (needs matplotlib)."""
    EXPERIMENTS[result.name][1](result, path)
