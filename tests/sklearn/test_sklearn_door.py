"""fastdrop.sklearn beyond scikit-learn's own cases: agreement with scikit-learn's MLP
without dropout, the fitted layout, reproducibility (threads, partial_fit, warm_start,
pickle, clone), MC-dropout committees, errors, and the scikit-learn machinery
(Pipeline, GridSearchCV on loky processes, set_output)."""
import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits, load_iris, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import MinMaxScaler, StandardScaler  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402

import fastdrop  # noqa: E402
from fastdrop import config  # noqa: E402
from fastdrop.sklearn import MC_BLOCK_ROWS, DropoutMLPClassifier, DropoutMLPRegressor  # noqa: E402
from conftest import run_python  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_blas_thread")

X_digits, y_digits = load_digits(return_X_y=True)
X_digits = MinMaxScaler().fit_transform(X_digits)
X_iris, y_iris = load_iris(return_X_y=True)
X_reg, y_reg = make_regression(n_samples=120, n_features=6, noise=5.0, random_state=3)
y_reg = y_reg / y_reg.std()

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def small(Estimator=DropoutMLPClassifier, **params):
    base = dict(hidden_layer_sizes=(17, 5), max_iter=3, random_state=0, dropout=0.5,
                input_dropout=0.2, batch_size=32)
    base.update(params)
    return Estimator(**base)


def assert_same_arrays(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


# -- packaging ----------------------------------------------------------------------------

def test_import_without_scikit_learn_names_the_extra():
    result = run_python("""
        import sys
        sys.modules['sklearn'] = None  # import sklearn now raises ImportError
        try:
            import fastdrop.sklearn
        except ImportError as exc:
            print('ImportError:', exc)
        else:
            print('imported')
    """)
    assert result.returncode == 0, result.stderr
    assert "ImportError:" in result.stdout
    assert "fastdrop[sklearn]" in result.stdout


def test_import_fastdrop_does_not_import_scikit_learn():
    result = run_python("import sys, fastdrop; print('sklearn' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_tests_import_the_real_scikit_learn():
    # tests/sklearn has no __init__.py: a namespace portion that must not shadow sklearn
    import sklearn
    assert sklearn.__file__ is not None and hasattr(sklearn, "base")


# -- without dropout: scikit-learn's MLP ----------------------------------------------------

@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_without_dropout_equals_scikit_learn_classifier(solver, n_classes):
    # the same initial weights, shuffles, loss, gradient and update: equal up to rounding
    mask = y_digits < n_classes
    X, y = X_digits[mask][:150], y_digits[mask][:150]
    params = dict(hidden_layer_sizes=(20, 7), solver=solver, max_iter=4, random_state=1,
                  batch_size=32, alpha=1e-3, learning_rate_init=0.1 if solver == "sgd" else 0.01)
    ours = DropoutMLPClassifier(dropout=0.0, **params).fit(X, y)
    theirs = MLPClassifier(**params).fit(X, y)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-9,
                               atol=1e-12)
    assert (ours.n_iter_, ours.t_, ours.n_layers_, ours.n_outputs_, ours.out_activation_) == \
        (theirs.n_iter_, theirs.t_, theirs.n_layers_, theirs.n_outputs_, theirs.out_activation_)
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)


def test_without_dropout_equals_scikit_learn_regressor():
    params = dict(hidden_layer_sizes=(9,), solver="sgd", max_iter=4, random_state=2,
                  learning_rate_init=0.01, momentum=0.5, nesterovs_momentum=False)
    ours = DropoutMLPRegressor(dropout=0.0, **params).fit(X_reg, y_reg)
    theirs = MLPRegressor(**params).fit(X_reg, y_reg)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.predict(X_reg), theirs.predict(X_reg), rtol=1e-9, atol=1e-12)


def test_sample_weight_without_dropout_equals_scikit_learn():
    weights = np.random.RandomState(0).randint(0, 4, size=X_iris.shape[0]).astype(float)
    params = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0, batch_size=40)
    ours = DropoutMLPClassifier(dropout=0.0, **params).fit(X_iris, y_iris, sample_weight=weights)
    theirs = MLPClassifier(**params).fit(X_iris, y_iris, sample_weight=weights)
    for a, b in zip(ours.coefs_, theirs.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


# -- the fitted layout and the deterministic prediction -----------------------------------

@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
def test_predict_proba_is_the_network_of_coefs_and_intercepts(activation):
    clf = small(activation=activation, max_iter=2).fit(X_digits[:200], y_digits[:200])
    assert [c.shape for c in clf.coefs_] == [(64, 17), (17, 5), (5, 10)]
    assert [b.shape for b in clf.intercepts_] == [(17,), (5,), (10,)]
    functions = {"identity": lambda z: z, "logistic": lambda z: 1 / (1 + np.exp(-z)),
                 "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0)}
    h = X_digits[200:260]
    for i, (W, b) in enumerate(zip(clf.coefs_, clf.intercepts_)):
        h = h @ W + b
        if i < len(clf.coefs_) - 1:
            h = functions[activation](h)
    expected = np.exp(h - h.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(clf.predict_proba(X_digits[200:260]), expected, rtol=1e-10)
    np.testing.assert_array_equal(clf.predict(X_digits[200:260]),
                                  clf.classes_[expected.argmax(axis=1)])


def test_predict_proba_is_deterministic_and_leaves_no_state():
    clf = small().fit(X_digits[:200], y_digits[:200])
    first = clf.predict_proba(X_digits[:50])
    clf.sample_proba(X_digits[:5], n_samples=3)
    np.testing.assert_array_equal(clf.predict_proba(X_digits[:50]), first)
    assert all(getattr(layer, "_cache", None) is None for layer in clf._network.layers)


def test_max_norm_bounds_every_units_incoming_weights():
    clf = small(max_norm=0.5, max_iter=5, learning_rate_init=0.05).fit(X_digits[:300],
                                                                       y_digits[:300])
    for W in clf.coefs_:
        assert np.linalg.norm(W, axis=0).max() <= 0.5 * (1 + 1e-12)
    unbounded = small(max_iter=5, learning_rate_init=0.05).fit(X_digits[:300], y_digits[:300])
    assert max(np.linalg.norm(W, axis=0).max() for W in unbounded.coefs_) > 0.5


def test_dropout_per_hidden_layer():
    clf = small(dropout=[0.0, 0.3], input_dropout=0.0).fit(X_digits[:100], y_digits[:100])
    keeps = [getattr(layer, "keep_prob", None) for layer in clf._network.layers
             if hasattr(layer, "W")]
    assert keeps == [None, None, pytest.approx(0.7)]
    with pytest.raises(ValueError, match="one rate per hidden layer"):
        small(dropout=[0.1, 0.2, 0.3]).fit(X_digits[:50], y_digits[:50])
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        small(dropout=[0.1, 1.0]).fit(X_digits[:50], y_digits[:50])
    for bad in ({"dropout": 1.0}, {"input_dropout": -0.1}, {"max_norm": 0}, {"dropout": "x"}):
        with pytest.raises(InvalidParameterError):
            small(**bad).fit(X_digits[:50], y_digits[:50])


def test_dropout_changes_training():
    plain = small(dropout=0.0, input_dropout=0.0).fit(X_digits[:100], y_digits[:100])
    dropped = small().fit(X_digits[:100], y_digits[:100])
    assert not np.array_equal(plain.coefs_[0], dropped.coefs_[0])


# -- reproducibility ----------------------------------------------------------------------

def test_same_random_state_same_coefs_and_another_differs():
    a = small().fit(X_digits[:200], y_digits[:200])
    b = small().fit(X_digits[:200], y_digits[:200])
    c = small(random_state=1).fit(X_digits[:200], y_digits[:200])
    assert_same_arrays(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_)
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


def test_coefs_do_not_depend_on_the_kernel_threads():
    # 300 x 1000 input rows in one minibatch: 300,000 elements, above the 2**18 the
    # kernels share out to their thread pool, so the input masks are drawn in parallel
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 1000)).astype(np.float32)
    y = (X[:, :10].sum(axis=1) > 0).astype(int)
    results = []
    for threads in (1, 2):
        with config.threads(threads):
            clf = DropoutMLPClassifier(hidden_layer_sizes=(8,), input_dropout=0.3, dropout=0.5,
                                       batch_size=300, max_iter=2, random_state=5).fit(X, y)
        results.append(clf.coefs_ + clf.intercepts_)
    assert_same_arrays(results[0], results[1])


@pytest.mark.parametrize("Estimator", [DropoutMLPClassifier, DropoutMLPRegressor])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_two_partial_fits_equal_one_fit_over_the_same_batches(Estimator, solver):
    X, y = (X_digits[:96], y_digits[:96]) if Estimator is DropoutMLPClassifier else \
        (X_reg[:96], y_reg[:96])
    weights = np.random.RandomState(1).uniform(0.5, 2, 96)
    params = dict(solver=solver, batch_size=32, shuffle=False, max_norm=2.0, alpha=1e-3)
    whole = small(Estimator, max_iter=1, **params).fit(X, y, sample_weight=weights)
    parts = small(Estimator, **params)
    extra = {"classes": np.unique(y_digits)} if Estimator is DropoutMLPClassifier else {}
    parts.partial_fit(X[:64], y[:64], sample_weight=weights[:64], **extra)  # batches 1, 2
    parts.partial_fit(X[64:], y[64:], sample_weight=weights[64:])  # batch 3
    assert_same_arrays(whole.coefs_ + whole.intercepts_, parts.coefs_ + parts.intercepts_)
    assert parts.t_ == whole.t_ == 96


def test_warm_start_continues_the_mask_stream():
    # sgd without momentum keeps no optimizer state, so two warm-started fits of one
    # epoch equal one fit of two epochs exactly when the second fit draws the masks of
    # minibatches 4..6 (not 1..3 again)
    params = dict(solver="sgd", momentum=0.0, shuffle=False, learning_rate_init=0.05,
                  n_iter_no_change=np.inf)
    X, y = X_digits[:96], y_digits[:96]
    two_epochs = small(max_iter=2, **params).fit(X, y)
    warm = small(max_iter=1, warm_start=True, **params).fit(X, y)
    warm.fit(X, y)
    assert_same_arrays(two_epochs.coefs_ + two_epochs.intercepts_, warm.coefs_ + warm.intercepts_)
    replayed = small(max_iter=1, warm_start=True, **params).fit(X, y)
    for layer in replayed._network.layers:  # the stream set back: the first epoch's masks
        if hasattr(layer, "step"):
            layer.step = 0
    replayed.fit(X, y)
    assert not np.array_equal(replayed.coefs_[0], warm.coefs_[0])


def test_fit_without_warm_start_starts_afresh():
    clf = small()
    first = [a.copy() for a in clf.fit(X_digits[:100], y_digits[:100]).coefs_]
    clf.fit(X_digits[:100], y_digits[:100])
    assert_same_arrays(first, clf.coefs_)


@pytest.mark.parametrize("Estimator", [DropoutMLPClassifier, DropoutMLPRegressor])
def test_pickle_round_trip_keeps_predictions_and_the_mask_stream(Estimator):
    X, y = (X_digits[:120], y_digits[:120]) if Estimator is DropoutMLPClassifier else \
        (X_reg, y_reg)
    est = small(Estimator).fit(X, y)
    copy = pickle.loads(pickle.dumps(est))
    method = "predict_proba" if Estimator is DropoutMLPClassifier else "predict"
    np.testing.assert_array_equal(getattr(copy, method)(X), getattr(est, method)(X))
    sample = "sample_proba" if Estimator is DropoutMLPClassifier else "sample_predict"
    np.testing.assert_array_equal(getattr(copy, sample)(X[:7], n_samples=4, random_state=3),
                                  getattr(est, sample)(X[:7], n_samples=4, random_state=3))
    est.partial_fit(X, y)
    copy.partial_fit(X, y)
    assert_same_arrays(est.coefs_ + est.intercepts_, copy.coefs_ + copy.intercepts_)


def test_clone_round_trip():
    est = small(dropout=[0.2, 0.4], max_norm=3.0).fit(X_digits[:100], y_digits[:100])
    fresh = clone(est)
    assert fresh.get_params() == est.get_params()
    assert not hasattr(fresh, "coefs_")
    fresh.fit(X_digits[:100], y_digits[:100])
    assert_same_arrays(est.coefs_ + est.intercepts_, fresh.coefs_ + fresh.intercepts_)


# -- MC dropout ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fitted():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = small(max_iter=30, learning_rate_init=0.01).fit(X_digits[:400], y_digits[:400])
        binary = small(max_iter=5).fit(X_digits[:400], y_digits[:400] % 2)
        reg = small(DropoutMLPRegressor, max_iter=5).fit(X_reg, y_reg)
        multi = small(DropoutMLPRegressor, max_iter=5).fit(X_reg, np.c_[y_reg, -y_reg, y_reg])
    return clf, binary, reg, multi


def test_sample_proba_shapes_and_probabilities(fitted):
    clf, binary, _, _ = fitted
    P = clf.sample_proba(X_digits[:13], n_samples=5, random_state=0)
    assert P.shape == (5, 13, 10) and P.dtype == np.float64
    np.testing.assert_allclose(P.sum(axis=2), 1.0, rtol=1e-12)
    assert (P >= 0).all()
    B = binary.sample_proba(X_digits[:13], n_samples=4, random_state=0)
    assert B.shape == (4, 13, 2)
    np.testing.assert_allclose(B.sum(axis=2), 1.0, rtol=1e-12)
    with pytest.raises(ValueError, match="minimum of 1 is required"):
        clf.sample_proba(X_digits[:0], n_samples=3)


def test_sample_proba_members_are_thinned_networks(fitted):
    # member t drops, at affine layer i, the units of elements [t*n, (t+1)*n) of stream i
    # under the key drawn from random_state, the same units for every row
    clf, _, _, _ = fitted
    X = X_digits[:9]
    T = 3
    P = clf.sample_proba(X, n_samples=T, random_state=7)
    words = np.random.RandomState(7).randint(0, 2**32, size=2, dtype=np.uint64)
    key = int(words[0]) | (int(words[1]) << 32)
    rates = [0.2, 0.5, 0.5]
    for t in range(T):
        h = X
        for i, (W, b) in enumerate(zip(clf.coefs_, clf.intercepts_)):
            keep = 1 - rates[i]
            kept = fastdrop.sample_mask((W.shape[0],), keep_prob=keep, seed=key, stream=i,
                                        offset=t * W.shape[0]).to_bool()
            h = (h * kept / keep) @ W + b
            if i < 2:
                h = np.maximum(h, 0)
        expected = np.exp(h - h.max(axis=1, keepdims=True))
        expected /= expected.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(P[t], expected, rtol=1e-9, atol=1e-15)
    assert not np.allclose(P[0], P[1])


@pytest.mark.parametrize("block", [1, 3, 5, 17, 65, 129])
def test_sample_proba_is_identical_for_any_row_batching(fitted, block):
    clf, _, _, _ = fitted
    X = X_digits[:300]
    T = 4  # 1200 slots: several products of MC_BLOCK_ROWS rows, the last one partial
    assert T * X.shape[0] > 2 * MC_BLOCK_ROWS
    whole = clf.sample_proba(X, n_samples=T, random_state=11)
    pieces = np.concatenate([clf.sample_proba(X[i:i + block], n_samples=T, random_state=11)
                             for i in range(0, X.shape[0], block)], axis=1)
    np.testing.assert_array_equal(pieces, whole)
    order = np.random.RandomState(block).permutation(X.shape[0])
    np.testing.assert_array_equal(clf.sample_proba(X[order], n_samples=T, random_state=11),
                                  whole[:, order])


def test_sample_proba_random_state(fitted):
    clf, _, _, _ = fitted
    X = X_digits[:20]
    a = clf.sample_proba(X, n_samples=6, random_state=3)
    np.testing.assert_array_equal(a, clf.sample_proba(X, n_samples=6, random_state=3))
    np.testing.assert_array_equal(a[:4], clf.sample_proba(X, n_samples=4, random_state=3))
    assert not np.array_equal(a, clf.sample_proba(X, n_samples=6, random_state=4))
    np.random.seed(0)
    b = clf.sample_proba(X, n_samples=6)
    np.random.seed(0)
    np.testing.assert_array_equal(b, clf.sample_proba(X, n_samples=6))
    rs = np.random.RandomState(5)
    assert not np.array_equal(clf.sample_proba(X, n_samples=2, random_state=rs),
                              clf.sample_proba(X, n_samples=2, random_state=rs))


def test_sample_proba_mean_approaches_the_deterministic_net():
    clf = small(hidden_layer_sizes=(64,), max_iter=30, learning_rate_init=0.01)
    clf.fit(X_digits[:400], y_digits[:400])
    X = X_digits[400:500]
    mean = clf.sample_proba(X, n_samples=200, random_state=0).mean(axis=0)
    agreement = np.mean(mean.argmax(axis=1) == clf.predict_proba(X).argmax(axis=1))
    assert agreement >= 0.9


def test_sample_predict_shapes(fitted):
    _, _, reg, multi = fitted
    S = reg.sample_predict(X_reg[:11], n_samples=6, random_state=0)
    assert S.shape == (6, 11)
    assert S.std(axis=0).min() > 0
    M = multi.sample_predict(X_reg[:11], n_samples=6, random_state=0)
    assert M.shape == (6, 11, 3)
    np.testing.assert_array_equal(S[:, 3:5], reg.sample_predict(X_reg[3:5], n_samples=6,
                                                                random_state=0))


def test_float32_network_samples_in_float32():
    clf = small().fit(X_digits[:100].astype(np.float32), y_digits[:100])
    assert clf.sample_proba(X_digits[:5], n_samples=2).dtype == np.float32
    assert clf.predict_proba(X_digits[:5]).dtype == np.float32


def test_bald_from_sample_proba(fitted):
    clf, _, _, _ = fitted
    P = clf.sample_proba(X_digits[400:500], n_samples=30, random_state=0)
    mean = P.mean(axis=0)
    predictive = -(mean * np.log(np.clip(mean, 1e-300, None))).sum(axis=1)
    expected = -(P * np.log(np.clip(P, 1e-300, None))).sum(axis=2).mean(axis=0)
    bald = predictive - expected
    assert bald.shape == (100,)
    assert (bald >= -1e-12).all() and bald.max() > 0


def test_scikit_activeml_bald_takes_sample_proba_by_name(fitted):
    skactiveml = pytest.importorskip("skactiveml")
    from skactiveml.classifier import SklearnClassifier
    from skactiveml.pool import GreedyBALD
    X = X_digits[:200]
    y = y_digits[:200].astype(float)
    y[100:] = np.nan  # unlabeled pool
    ensemble = SklearnClassifier(small(max_iter=5), classes=np.arange(10), random_state=0)
    query = GreedyBALD(sample_predictions_method_name="sample_proba",
                       sample_predictions_dict={"n_samples": 20, "random_state": 3},
                       random_state=0)
    indices, utilities = query.query(X, y, ensemble=ensemble, batch_size=3,
                                     return_utilities=True)
    assert indices.shape == (3,) and np.isnan(y[indices]).all()
    fitted_clf = small(max_iter=5).fit(X[:100], y_digits[:100])
    P = fitted_clf.sample_proba(X[100:], n_samples=20, random_state=3)
    mean = P.mean(axis=0)
    bald = -(mean * np.log(mean)).sum(axis=1) + (P * np.log(P)).sum(axis=2).mean(axis=0)
    np.testing.assert_allclose(utilities[0][100:], bald, rtol=1e-6, atol=1e-9)
    assert indices[0] == 100 + int(np.argmax(bald))


# -- errors: scikit-learn's own -----------------------------------------------------------

@pytest.mark.parametrize("method", ["predict", "predict_proba", "sample_proba", "score"])
def test_not_fitted(method):
    args = (X_digits[:3], y_digits[:3]) if method == "score" else (X_digits[:3],)
    with pytest.raises(NotFittedError):
        getattr(DropoutMLPClassifier(), method)(*args)
    if method in ("predict", "score"):
        with pytest.raises(NotFittedError):
            getattr(DropoutMLPRegressor(), method)(*args)
    with pytest.raises(NotFittedError):
        DropoutMLPRegressor().sample_predict(X_digits[:3])


def test_bad_input_gets_scikit_learns_errors(fitted):
    clf, _, reg, _ = fitted
    with pytest.raises(ValueError, match="X has 5 features, but DropoutMLPClassifier is "
                                         "expecting 64 features as input"):
        clf.predict(X_digits[:3, :5])
    with pytest.raises(ValueError, match="expecting 64 features"):
        clf.sample_proba(X_digits[:3, :5])
    bad = X_digits[:4].copy()
    bad[1, 2] = np.nan
    for call in (clf.predict, clf.predict_proba, clf.sample_proba):
        with pytest.raises(ValueError, match="Input X contains NaN"):
            call(bad)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        DropoutMLPClassifier().fit(bad, y_digits[:4])
    with pytest.raises(ValueError, match="Unknown label type"):
        DropoutMLPClassifier().fit(X_iris, y_iris + 0.5)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        DropoutMLPClassifier().fit(X_iris, y_iris[:-1])
    with pytest.raises(ValueError, match="sample_weight.shape"):
        DropoutMLPClassifier().fit(X_iris, y_iris, sample_weight=np.ones(3))
    for n_samples in (0, -1, 2.5, True, None):
        with pytest.raises(ValueError, match="n_samples must be a positive int"):
            clf.sample_proba(X_digits[:3], n_samples=n_samples)
    with pytest.raises(ValueError, match="cannot be used to seed"):
        clf.sample_proba(X_digits[:3], random_state="seed")
    with pytest.raises(InvalidParameterError, match="solver"):
        DropoutMLPRegressor(solver="lbfgs").fit(X_reg, y_reg)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be > 0"):
        DropoutMLPRegressor(hidden_layer_sizes=(4, 0)).fit(X_reg, y_reg)


def test_unseen_class_errors():
    clf = small()
    clf.partial_fit(X_iris[:100], y_iris[:100], classes=[0, 1])
    with pytest.raises(ValueError, match="`y` has classes not in `self.classes_`"):
        clf.partial_fit(X_iris[100:], y_iris[100:])
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        small().partial_fit(X_iris, y_iris)
    warm = small(warm_start=True).fit(X_iris[:100], y_iris[:100])
    with pytest.raises(ValueError, match="warm_start can only be used"):
        warm.fit(X_iris, y_iris)


def test_warm_start_refuses_a_changed_network():
    clf = small(warm_start=True).fit(X_iris, y_iris)
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        clf.set_params(hidden_layer_sizes=(4,)).fit(X_iris, y_iris)
    clf.set_params(hidden_layer_sizes=(17, 5), dropout=0.1)
    with pytest.raises(ValueError, match="dropout and input_dropout cannot change"):
        clf.fit(X_iris, y_iris)


# -- the scikit-learn machinery -----------------------------------------------------------

def test_pipeline():
    pipe = make_pipeline(StandardScaler(), small(max_iter=50, hidden_layer_sizes=(32,),
                                                 learning_rate_init=0.01))
    pipe.fit(X_iris, y_iris)
    assert pipe.score(X_iris, y_iris) > 0.8
    assert pipe.predict_proba(X_iris).shape == (150, 3)


def test_grid_search_on_loky_processes():
    search = GridSearchCV(small(max_iter=10, hidden_layer_sizes=(16,)),
                          {"dropout": [0.0, 0.5]}, cv=2, n_jobs=2)
    search.fit(X_iris, y_iris)
    assert len(search.cv_results_["params"]) == 2
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    # the refitted best estimator equals a fit in this process, bit for bit
    local = small(max_iter=10, hidden_layer_sizes=(16,), **search.best_params_).fit(X_iris, y_iris)
    assert_same_arrays(search.best_estimator_.coefs_, local.coefs_)


def test_set_output_pandas_through_a_pipeline():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X_iris, columns=[f"f{i}" for i in range(4)])
    pipe = make_pipeline(StandardScaler(), small(max_iter=10)).set_output(transform="pandas")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no feature-name warnings
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(frame, y_iris)
        proba = pipe.predict_proba(frame)
    assert list(pipe[-1].feature_names_in_) == ["f0", "f1", "f2", "f3"]
    samples = pipe[-1].sample_proba(pipe[0].transform(frame), n_samples=2, random_state=0)
    assert samples.shape == (2,) + proba.shape
    with pytest.warns(UserWarning, match="feature names"):
        pipe[-1].predict(np.asarray(pipe[0].transform(frame)))


def test_a_minibatch_of_zero_weight_changes_nothing_but_takes_its_stream_step():
    weights = np.r_[np.zeros(10), np.ones(10)]
    fits = []
    for first in (X_digits[:10], X_digits[40:50]):  # what the zero-weight minibatch holds
        est = small(batch_size=10, shuffle=False, alpha=0.1)
        X = np.concatenate([first, X_digits[10:20]])
        est.partial_fit(X, y_digits[:20], classes=np.arange(10), sample_weight=weights)
        fits.append(est)
        assert [layer.step for layer in est._network.layers if hasattr(layer, "step")] == [2] * 3
    assert_same_arrays(fits[0].coefs_ + fits[0].intercepts_, fits[1].coefs_ + fits[1].intercepts_)
