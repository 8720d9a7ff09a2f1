"""Dropout MLPs for scikit-learn: `DropoutMLPClassifier` and `DropoutMLPRegressor`.

    from fastdrop.sklearn import DropoutMLPClassifier
    clf = DropoutMLPClassifier(hidden_layer_sizes=(512, 512), dropout=0.5, input_dropout=0.2,
                               max_norm=3.0, random_state=0).fit(X, y)
    clf.predict_proba(X_pool)                       # the deterministic (weight-scaled) net
    clf.sample_proba(X_pool, n_samples=50)          # (50, n, n_classes) by MC dropout

The estimators take the parameters of ``sklearn.neural_network.MLPClassifier`` /
``MLPRegressor`` with their meaning (the stochastic solvers 'adam' and 'sgd' with a
constant learning rate; no 'lbfgs'), plus ``dropout`` (the rate on each hidden layer's
output: one float, or one per hidden layer), ``input_dropout`` (the rate on the input) and
``max_norm`` (after every step, each unit's incoming weight vector is scaled back to this
L2 norm when longer, Srivastava et al. 2014).  They follow scikit-learn's MLP closely: the
same weight initialisation from ``random_state`` (so with no dropout they start from the
weights ``MLPClassifier`` starts from), the same loss with the L2 penalty ``alpha``, the
same minibatches, shuffling, ``tol`` / ``n_iter_no_change`` stopping, early stopping,
``warm_start`` and ``partial_fit`` semantics, and the fitted attributes in its layout
(``coefs_[i]`` of shape (fan_in, fan_out), ``intercepts_``, ``loss_curve_``, ``n_iter_``,
``t_``, ``classes_``, ``out_activation_``...).  The network is a `fastdrop.nn.Sequential`
of `DropoutDense` / `Dense` layers trained by `fastdrop.nn`'s optimizers, in the dtype of
the data it was first fitted on (float32 or float64).

Randomness (DESIGN.md, "scikit-learn estimators").  A fit that builds the network (the
first fit, any fit without ``warm_start``, the first ``partial_fit``) draws the initial
weights, then a 64-bit mask key, from ``check_random_state(random_state)``; the k-th
minibatch trained since then draws its masks from stream k.  ``warm_start`` fits and
further ``partial_fit`` calls go on with k, so they never replay masks.  Masks come from
fastdrop's counter-based kernels, so they do not depend on the number of threads.

MC dropout.  ``sample_proba(X, n_samples=T, random_state=None)`` (``sample_predict`` for
the regressor) runs T thinned networks: pass t drops the same units for every row of X (a
committee of T members, as BALD and BatchBALD want), so a row's T outputs depend only on
the row, the key and t, whatever else X holds.  The products are computed in blocks of a
fixed number of rows, so the result is also bit-identical for any split of X into rows
(with a BLAS whose rows do not depend on their position within a product of fixed shape,
as OpenBLAS's).
"""
import warnings
from numbers import Integral, Real

try:
    import sklearn  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a child interpreter
    raise ImportError("fastdrop.sklearn needs scikit-learn, which is not installed; install "
                      "it with the extra: pip install 'fastdrop[sklearn]'") from exc

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, gen_batches, shuffle as shuffle_indices
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import (_check_sample_weight, check_is_fitted, column_or_1d,
                                      validate_data)

from .api import sample_mask
from .nn import Adam, SGD, Dense, DropoutDense, ReLU, Sequential, Sigmoid, Tanh, layer_seeds

__all__ = ["DropoutMLPClassifier", "DropoutMLPRegressor"]

_HIDDEN_ACTIVATIONS = {"identity": None, "logistic": Sigmoid, "tanh": Tanh, "relu": ReLU}

#: Rows of every matrix product sample_proba runs: a fixed height, so each row is rounded
#: the same way whatever other rows share its product.
MC_BLOCK_ROWS = 256


def _key_from(random_state):
    """A 64-bit key drawn from a RandomState (two 32-bit words, low word first)."""
    words = random_state.randint(0, 2**32, size=2, dtype=np.uint64)
    return int(words[0]) | (int(words[1]) << 32)


def _sigmoid(z):
    # exp of a non-positive argument only, so large |z| cannot overflow
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype, copy=False)


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def _output(z, kind):
    if kind == "softmax":
        return _softmax(z)
    if kind == "logistic":
        return _sigmoid(z)
    return z


def _loss(Y, out, kind, sample_weight):
    """scikit-learn's log loss / binary log loss / half squared error of outputs `out`."""
    if kind == "identity":
        return float(0.5 * np.average((Y - out) ** 2, weights=sample_weight, axis=0).mean())
    eps = np.finfo(out.dtype).eps
    p = np.clip(out, eps, 1 - eps)
    if kind == "softmax":
        per_row = -(Y * np.log(p)).sum(axis=1)
    else:
        per_row = -(Y * np.log(p) + (1 - Y) * np.log1p(-p)).sum(axis=1)
    return float(np.average(per_row, weights=sample_weight))


class _MLPAdam(Adam):
    """Adam as scikit-learn's MLP runs it: epsilon added to sqrt(v) itself (fastdrop.nn's
    Adam follows PyTorch, whose epsilon is scaled by the bias correction of v)."""

    def _epsilon(self, t):
        return self.eps


class _BaseDropoutMLP(BaseEstimator):
    """What both estimators share: parameters, the network, training and MC sampling."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
        "solver": [StrOptions({"sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "dropout": [Interval(Real, 0, 1, closed="left"), "array-like"],
        "input_dropout": [Interval(Real, 0, 1, closed="left")],
        "max_norm": [None, Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate_init=0.001, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, dropout=0.5, input_dropout=0.0, max_norm=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.dropout = dropout
        self.input_dropout = input_dropout
        self.max_norm = max_norm

    # -- the network ---------------------------------------------------------------------

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        if any(not isinstance(s, Integral) or isinstance(s, bool) for s in sizes) \
                or np.any(np.array(sizes) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return [int(s) for s in sizes]

    def _rates(self, n_hidden):
        """The dropout rate on the input of each affine layer (input, then each hidden)."""
        hidden = self.dropout
        if isinstance(hidden, Real) and not isinstance(hidden, bool):
            hidden = [float(hidden)] * n_hidden
        else:
            hidden = np.asarray(hidden)
            if hidden.ndim != 1 or hidden.shape[0] != n_hidden or hidden.dtype.kind not in "iuf":
                raise ValueError(f"dropout must be one rate or one rate per hidden layer "
                                 f"({n_hidden}), got {self.dropout!r}")
            if not np.all((hidden >= 0) & (hidden < 1)):
                raise ValueError(f"dropout rates must be in [0, 1), got {self.dropout!r}")
            hidden = [float(r) for r in hidden]
        return [float(self.input_dropout)] + hidden

    def _initialize(self, n_features, n_outputs, dtype):
        """Weights as scikit-learn's MLP draws them, a mask key, and the network."""
        hidden = self._hidden_sizes()
        rates = self._rates(len(hidden))
        units = [n_features] + hidden + [n_outputs]
        rs = self._random_state
        factor = 2.0 if self.activation == "logistic" else 6.0
        arrays = []
        for fan_in, fan_out in zip(units[:-1], units[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            W = rs.uniform(-bound, bound, (fan_in, fan_out))
            b = rs.uniform(-bound, bound, fan_out)
            arrays.append((np.ascontiguousarray(W, dtype=dtype), b.astype(dtype)))
        # a network without dropout draws no key, so it sees the RandomState exactly as
        # scikit-learn's MLP does (the same shuffles after the same initial weights)
        self._mask_key = _key_from(rs) if any(rates) else None
        seeds = layer_seeds(self._mask_key or 0, len(arrays))
        activation = _HIDDEN_ACTIVATIONS[self.activation]
        layers = []
        for i, (W, b) in enumerate(arrays):
            if rates[i] > 0:
                layer = DropoutDense(W.shape[0], W.shape[1], rate=rates[i], seed=seeds[i],
                                     dtype=dtype)
                layer.W, layer.b = W, b
                layer.dW, layer.db = np.zeros_like(W), np.zeros_like(b)
            else:
                layer = Dense.from_arrays(W, b)
            layers.append(layer)
            if i < len(arrays) - 1 and activation is not None:
                layers.append(activation())
        self._network = Sequential(layers)
        self._rates_ = rates
        self._affine = [layer for layer in layers if hasattr(layer, "W")]
        self.coefs_ = [layer.W for layer in self._affine]
        self.intercepts_ = [layer.b for layer in self._affine]
        self.n_layers_ = len(units)
        self.n_outputs_ = n_outputs
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = np.inf
        self._best = [a.copy() for a in self.coefs_ + self.intercepts_]

    def _new_optimizer(self):
        if self.solver == "sgd":
            return SGD(lr=self.learning_rate_init, momentum=self.momentum,
                       nesterov=bool(self.nesterovs_momentum and self.momentum > 0),
                       max_norm=self.max_norm)
        return _MLPAdam(lr=self.learning_rate_init, beta1=self.beta_1, beta2=self.beta_2,
                    eps=self.epsilon, max_norm=self.max_norm)

    def _forward_eval(self, X):
        """Outputs of the deterministic network (inverted dropout: the weights as trained),
        computed without leaving anything cached in the layers."""
        h = X = np.asarray(X, dtype=self.coefs_[0].dtype)
        for layer in self._network.layers:
            h = layer.forward_eval(h, overwrite_input=h is not X)
        return _output(h, self.out_activation_)

    def _clear_caches(self):
        # the layers keep their last training batch for backward; a fitted estimator
        # (and its pickle) must not carry it
        for layer in self._network.layers:
            layer._cache = None

    # -- training ------------------------------------------------------------------------

    def _fit(self, X, y, sample_weight=None, incremental=False):
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        self._hidden_sizes()
        X, Y = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        if Y.ndim == 1:
            Y = Y.reshape(-1, 1)
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._set_output_activation(Y)
            self._initialize(X.shape[1], Y.shape[1], X.dtype)
        elif Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} outputs; the network was fitted with "
                             f"{self.n_outputs_}")
        elif self._hidden_sizes() != [W.shape[1] for W in self.coefs_[:-1]]:
            raise ValueError(f"hidden_layer_sizes={self.hidden_layer_sizes!r} does not match "
                             f"the fitted network's hidden layers "
                             f"{[W.shape[1] for W in self.coefs_[:-1]]}; fit without "
                             "warm_start to build a new one")
        else:
            rates = self._rates(self.n_layers_ - 2)
            if rates != self._rates_:
                raise ValueError("dropout and input_dropout cannot change between a fit and a "
                                 "warm-started fit or partial_fit of the same network")
        dtype = self.coefs_[0].dtype
        X = X.astype(dtype, copy=False)
        if sample_weight is not None:
            sample_weight = sample_weight.astype(dtype, copy=False)
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._new_optimizer()
        else:
            self._optimizer.max_norm = self.max_norm
        try:
            self._fit_stochastic(X, Y, sample_weight, incremental)
        finally:
            self._clear_caches()
        if not all(np.isfinite(w).all() for w in self.coefs_ + self.intercepts_):
            raise ValueError("Solver produced non-finite parameter weights. The input data may"
                             " contain large values and need to be preprocessed.")
        return self

    def _fit_stochastic(self, X, Y, sample_weight, incremental):
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        if early_stopping:
            stratify = Y if isinstance(self, ClassifierMixin) and self.n_outputs_ == 1 else None
            if sample_weight is None:
                X_train, X_val, Y_train, Y_val = train_test_split(
                    X, Y, random_state=self._random_state, test_size=self.validation_fraction,
                    stratify=stratify)
                sw_train = sw_val = None
            else:
                X_train, X_val, Y_train, Y_val, sw_train, sw_val = train_test_split(
                    X, Y, sample_weight, random_state=self._random_state,
                    test_size=self.validation_fraction, stratify=stratify)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            y_val = self._targets_for_score(Y_val)
        else:
            X_train, Y_train, sw_train = X, Y, sample_weight
            X_val = y_val = sw_val = None
        # targets are split as scikit-learn splits them (booleans for classes), then cast
        Y_train = Y_train.astype(X.dtype, copy=False)
        n_samples = X_train.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                              "going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        sample_idx = np.arange(n_samples, dtype=int)
        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                if self.shuffle:
                    sample_idx = shuffle_indices(sample_idx, random_state=self._random_state)
                accumulated_loss = 0.0
                for batch in gen_batches(n_samples, batch_size):
                    index = sample_idx[batch] if self.shuffle else batch
                    sw = None if sw_train is None else sw_train[index]
                    loss = self._train_batch(X_train[index], Y_train[index], sw)
                    accumulated_loss += loss * (batch.stop - batch.start)
                self.n_iter_ += 1
                self.loss_ = accumulated_loss / n_samples
                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                self._update_no_improvement_count(early_stopping, X_val, y_val, sw_val)
                if self._no_improvement_count > self.n_iter_no_change:
                    if early_stopping:
                        msg = ("Validation score did not improve more than tol=%f for %d "
                               "consecutive epochs." % (self.tol, self.n_iter_no_change))
                    else:
                        msg = ("Training loss did not improve more than tol=%f for %d "
                               "consecutive epochs." % (self.tol, self.n_iter_no_change))
                    if self.verbose:
                        print(msg + " Stopping.")
                    break
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and "
                                  "the optimization hasn't converged yet." % self.max_iter,
                                  ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        if early_stopping:
            for target, source in zip(self.coefs_ + self.intercepts_, self._best):
                np.copyto(target, source)

    def _train_batch(self, Xb, Yb, sw):
        """One minibatch: forward with fresh masks, scikit-learn's loss and gradient, a step."""
        network = self._network
        sw_sum = Xb.shape[0] if sw is None else float(sw.sum())
        if sw_sum == 0:
            # a minibatch of zero total weight teaches nothing; it still takes its step of
            # the mask stream, so later minibatches draw the masks they would otherwise
            for layer in self._affine:
                if isinstance(layer, DropoutDense):
                    layer.step += 1
            return 0.0
        out = _output(network.forward(Xb, training=True), self.out_activation_)
        loss = _loss(Yb, out, self.out_activation_, sw)
        if self.alpha:
            penalty = sum(float(np.dot(W.ravel(), W.ravel())) for W in self.coefs_)
            loss += 0.5 * self.alpha * penalty / sw_sum
        delta = out - Yb
        if sw is not None:
            delta *= sw.reshape(-1, 1)
        delta *= delta.dtype.type(1.0 / sw_sum)
        network.backward(delta, need_input_grad=False, overwrite_grad=True)
        if self.alpha:
            decay = self.coefs_[0].dtype.type(self.alpha / sw_sum)
            for layer in self._affine:
                layer.dW += decay * layer.W
        self._optimizer.step(network)
        return loss

    def _update_no_improvement_count(self, early_stopping, X_val, y_val, sw_val):
        if early_stopping:
            score = self._score(X_val, y_val, sw_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print("Validation score: %f" % score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best = [a.copy() for a in self.coefs_ + self.intercepts_]
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _score(self, X, y, sample_weight):
        y_pred = self._predict_unchecked(X)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return float(self._score_function(y, y_pred, sample_weight=sample_weight))

    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and targets y (sample_weight: one weight per row).

        The rows' dropout masks are drawn independently, so a weight of 2 is not the same
        as a duplicated row (the copies would see different masks)."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    # -- MC dropout ----------------------------------------------------------------------

    def _mc_outputs(self, X, n_samples, random_state):
        """(n_samples, n_rows, n_outputs): the outputs of n_samples thinned networks."""
        if not isinstance(n_samples, Integral) or isinstance(n_samples, bool) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
        n_samples = int(n_samples)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        dtype = self.coefs_[0].dtype
        X = X.astype(dtype, copy=False)
        key = _key_from(check_random_state(random_state))
        rows = X.shape[0]
        result = np.empty((n_samples, rows, self.n_outputs_), dtype=dtype)
        if rows == 0:
            return result
        slots = n_samples * rows
        layers = self._network.layers
        for start in range(0, slots, MC_BLOCK_ROWS):
            stop = min(start + MC_BLOCK_ROWS, slots)
            passes = np.arange(start, stop) // rows
            h = np.zeros((MC_BLOCK_ROWS, X.shape[1]), dtype=dtype)
            h[:stop - start] = X[np.arange(start, stop) % rows]
            first_pass, last_pass = int(passes[0]), int(passes[-1])
            affine = 0
            for layer in layers:
                if hasattr(layer, "W"):
                    rate = self._rates_[affine]
                    if rate > 0:
                        keep = 1.0 - rate
                        n_units = layer.W.shape[0]
                        mask = sample_mask((last_pass - first_pass + 1, n_units), keep_prob=keep,
                                           seed=key, stream=affine,
                                           offset=first_pass * n_units).to_bool()
                        multiplier = mask.astype(dtype) * dtype.type(1.0 / keep)
                        h[:stop - start] *= multiplier[passes - first_pass]
                    h = np.matmul(h, layer.W)
                    h += layer.b
                    affine += 1
                else:
                    h = layer.forward_eval(h, overwrite_input=True)
            out = _output(h[:stop - start], self.out_activation_)
            result.reshape(slots, -1)[start:stop] = out
        return result


class DropoutMLPClassifier(ClassifierMixin, _BaseDropoutMLP):
    """Multi-layer perceptron classifier trained with dropout (log loss).

    Parameters are those of ``sklearn.neural_network.MLPClassifier`` (solver 'adam' or
    'sgd', constant learning rate), plus ``dropout`` (the rate on each hidden layer's
    output, one float or one per hidden layer; default 0.5), ``input_dropout`` (the rate on
    the input; default 0) and ``max_norm`` (None or the bound on each unit's incoming
    weight norm).  Two classes use one logistic output, more a softmax, as in
    scikit-learn; multilabel targets are not supported.

    ``predict_proba`` is the deterministic network (inverted dropout: the weights as
    trained, the weight-scaling rule); ``sample_proba`` draws MC-dropout committees.
    """

    _score_function = staticmethod(accuracy_score)

    def _set_output_activation(self, Y):
        self.out_activation_ = "softmax" if Y.shape[1] > 1 else "logistic"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, dtype=(np.float64, np.float32),
                             reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if type_of_target(y).startswith("multilabel") or y.ndim != 1:
            raise ValueError(f"{type(self).__name__} supports binary and multiclass targets, "
                             f"got {type_of_target(y)!r}")
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same "
                                     "classes as in the previous call to fit. Previously "
                                     f"got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError("`y` has classes not in `self.classes_`. "
                                 f"`self.classes_` has {self.classes_}. 'y' has {classes}.")
        Y = self._label_binarizer.transform(y).astype(bool)
        return X, Y

    def _targets_for_score(self, Y):
        return self._label_binarizer.inverse_transform(Y)

    def _predict_unchecked(self, X):
        out = self._forward_eval(X)
        if self.n_outputs_ == 1:
            out = out.ravel()
        return self._label_binarizer.inverse_transform(out)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        return super().fit(X, y, sample_weight=sample_weight)

    fit.__doc__ = _BaseDropoutMLP.fit.__doc__

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y); ``classes`` (every class of the whole task) is required
        on the first call.  The mask stream goes on from the previous call."""
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """The class of highest probability under the deterministic network."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        return self._predict_unchecked(X)

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes) of the deterministic network."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        out = self._forward_eval(X)
        if self.n_outputs_ == 1:
            out = out.ravel()
            return np.vstack([1 - out, out]).T
        return out

    def predict_log_proba(self, X):
        """The log of predict_proba."""
        proba = self.predict_proba(X)
        return np.log(proba, out=proba)

    def sample_proba(self, X, n_samples=100, random_state=None):
        """Class probabilities of `n_samples` thinned networks: (n_samples, len(X), n_classes).

        Member t drops the same units for every row (one thinned network per member); the
        masks are a pure function of the key drawn from ``random_state`` (None: numpy's
        global RandomState, an int: always the same members) and t.  Row r's result
        depends only on X[r], so any split of X into rows gives the same rows."""
        check_is_fitted(self)
        out = self._mc_outputs(X, n_samples, random_state)
        if self.n_outputs_ == 1:
            return np.concatenate([1 - out, out], axis=2)
        return out


class DropoutMLPRegressor(RegressorMixin, _BaseDropoutMLP):
    """Multi-layer perceptron regressor trained with dropout (half squared error).

    Parameters as `DropoutMLPClassifier` (those of ``sklearn.neural_network.MLPRegressor``
    with loss 'squared_error', plus ``dropout``, ``input_dropout`` and ``max_norm``).
    ``predict`` is the deterministic network; ``sample_predict`` draws MC-dropout samples.
    """

    _score_function = staticmethod(r2_score)

    def _set_output_activation(self, Y):
        self.out_activation_ = "identity"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _targets_for_score(self, Y):
        return Y.ravel() if Y.shape[1] == 1 else Y

    def _predict_unchecked(self, X):
        out = self._forward_eval(X)
        return out.ravel() if out.shape[1] == 1 else out

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        return super().fit(X, y, sample_weight=sample_weight)

    fit.__doc__ = _BaseDropoutMLP.fit.__doc__

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y); the mask stream goes on from the previous call."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predictions of the deterministic network: (n_samples,) or (n_samples, n_outputs)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        return self._predict_unchecked(X)

    def sample_predict(self, X, n_samples=100, random_state=None):
        """Predictions of `n_samples` thinned networks: (n_samples, len(X)), or
        (n_samples, len(X), n_outputs) for several outputs; masks as
        `DropoutMLPClassifier.sample_proba` draws them."""
        check_is_fitted(self)
        out = self._mc_outputs(X, n_samples, random_state)
        return out[..., 0] if self.n_outputs_ == 1 else out
