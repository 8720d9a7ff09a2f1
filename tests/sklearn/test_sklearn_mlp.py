"""The cases of scikit-learn's own MLP tests (sklearn/neural_network/tests/test_mlp.py) that
apply to the dropout MLPs, with the same data and tolerances.  Where a case needs the
'lbfgs' solver, which these estimators do not have, it runs with 'adam'; scikit-learn's
learning-rate schedules, multilabel targets and sparse input are refused instead."""
import re
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

import joblib  # noqa: E402
from sklearn.datasets import (load_digits, load_iris, make_classification,  # noqa: E402
                              make_multilabel_classification, make_regression)
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.preprocessing import MinMaxScaler, scale  # noqa: E402
from sklearn.utils._testing import assert_allclose, assert_almost_equal  # noqa: E402
from sklearn.utils._testing import assert_array_equal, ignore_warnings  # noqa: E402

from fastdrop.sklearn import DropoutMLPClassifier, DropoutMLPRegressor  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_blas_thread")

X_digits, y_digits = load_digits(n_class=3, return_X_y=True)
X_digits_multi = MinMaxScaler().fit_transform(X_digits[:200])
y_digits_multi = y_digits[:200]
X_digits, y_digits = load_digits(n_class=2, return_X_y=True)
X_digits_binary = MinMaxScaler().fit_transform(X_digits[:200])
y_digits_binary = y_digits[:200]
classification_datasets = [(X_digits_multi, y_digits_multi), (X_digits_binary, y_digits_binary)]

X_reg, y_reg = make_regression(n_samples=200, n_features=10, bias=20.0, noise=100.0,
                               random_state=7)
y_reg = scale(y_reg)

iris = load_iris()
X_iris, y_iris = iris.data, iris.target

BOTH = [DropoutMLPClassifier, DropoutMLPRegressor]


def test_alpha():
    # larger alpha gives weights closer to zero
    X, y = X_digits_binary[:100], y_digits_binary[:100]
    sums = []
    for alpha in (0, 1):
        mlp = DropoutMLPClassifier(hidden_layer_sizes=10, alpha=alpha, random_state=1)
        with ignore_warnings(category=ConvergenceWarning):
            mlp.fit(X, y)
        sums.append(np.array([np.abs(mlp.coefs_[0]).sum(), np.abs(mlp.coefs_[1]).sum()]))
    assert (sums[0] > sums[1]).all()


def test_fit_worked_example():
    # scikit-learn's hand-computed sgd step: one sample, logistic units, alpha = 0.1
    X = np.array([[0.6, 0.8, 0.7]])
    y = np.array([0])
    mlp = DropoutMLPClassifier(solver="sgd", learning_rate_init=0.1, alpha=0.1,
                               activation="logistic", random_state=1, max_iter=1,
                               hidden_layer_sizes=2, momentum=0, dropout=0.0)
    mlp.partial_fit(X, y, classes=[0, 1])  # builds the network; its weights are replaced
    given = ([np.array([[0.1, 0.2], [0.3, 0.1], [0.5, 0]]), np.array([[0.1], [0.2]])],
             [np.array([0.1, 0.1]), np.array([1.0])])
    for target, value in zip(mlp.coefs_ + mlp.intercepts_, given[0] + given[1]):
        np.copyto(target, value)
    mlp.partial_fit(X, y)
    assert_almost_equal(mlp.coefs_[0], np.array([[0.098, 0.195756], [0.2956664, 0.096008],
                                                 [0.4939998, -0.002244]]), decimal=3)
    assert_almost_equal(mlp.coefs_[1], np.array([[0.04706], [0.154089]]), decimal=3)
    assert_almost_equal(mlp.intercepts_[0], np.array([0.098333, 0.09626]), decimal=3)
    assert_almost_equal(mlp.intercepts_[1], np.array(0.9235), decimal=3)
    assert_almost_equal(mlp.predict_proba(X)[0, 1], 0.739, decimal=3)


@pytest.mark.parametrize("X,y", classification_datasets)
def test_classification(X, y):
    # scikit-learn's lbfgs case (score > 0.95 on its training data), with adam and dropout
    X_train, y_train, X_test = X[:150], y[:150], X[150:]
    expected_shape_dtype = (X_test.shape[0], y_train.dtype.kind)
    for activation in ("identity", "logistic", "tanh", "relu"):
        mlp = DropoutMLPClassifier(hidden_layer_sizes=50, max_iter=150, learning_rate_init=0.01,
                                   random_state=1, activation=activation, dropout=0.2)
        with ignore_warnings(category=ConvergenceWarning):
            mlp.fit(X_train, y_train)
        y_predict = mlp.predict(X_test)
        assert mlp.score(X_train, y_train) > 0.95
        assert (y_predict.shape[0], y_predict.dtype.kind) == expected_shape_dtype


def test_regression():
    # scikit-learn's lbfgs case: score > 0.84 with relu (0.65 otherwise), with adam
    for activation in ("identity", "logistic", "tanh", "relu"):
        mlp = DropoutMLPRegressor(hidden_layer_sizes=50, max_iter=200, learning_rate_init=0.01,
                                  random_state=1, activation=activation, dropout=0.1)
        with ignore_warnings(category=ConvergenceWarning):
            mlp.fit(X_reg, y_reg)
        assert mlp.score(X_reg, y_reg) > (0.84 if activation == "relu" else 0.65)


def test_multilabel_is_refused():
    X, y = make_multilabel_classification(n_samples=50, random_state=0, return_indicator=True)
    with pytest.raises(ValueError, match="binary and multiclass"):
        DropoutMLPClassifier(max_iter=2).fit(X, y)


def test_multioutput_regression():
    X, y = make_regression(n_samples=200, n_targets=5, random_state=11)
    mlp = DropoutMLPRegressor(hidden_layer_sizes=50, max_iter=200, learning_rate_init=0.05,
                              dropout=0.1, tol=1e-2, random_state=1)
    with ignore_warnings(category=ConvergenceWarning):
        mlp.fit(X, y)
    assert mlp.score(X, y) > 0.9
    assert mlp.predict(X).shape == (200, 5)


def test_partial_fit_classes_error():
    X, y = [[3, 2]], [0]
    clf = DropoutMLPClassifier(solver="sgd")
    clf.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError):
        clf.partial_fit(X, y, classes=[1, 2])


def test_partial_fit_classification():
    # partial_fit gives the predictions of fit for binary and multiclass
    for X, y in classification_datasets:
        mlp = DropoutMLPClassifier(solver="sgd", max_iter=100, random_state=1, tol=0,
                                   alpha=1e-5, learning_rate_init=0.2)
        with ignore_warnings(category=ConvergenceWarning):
            mlp.fit(X, y)
        pred1 = mlp.predict(X)
        mlp = DropoutMLPClassifier(solver="sgd", random_state=1, alpha=1e-5,
                                   learning_rate_init=0.2)
        for _ in range(100):
            mlp.partial_fit(X, y, classes=np.unique(y))
        pred2 = mlp.predict(X)
        assert_array_equal(pred1, pred2)
        assert mlp.score(X, y) > 0.95


def test_partial_fit_unseen_classes():
    clf = DropoutMLPClassifier(random_state=0)
    clf.partial_fit([[1], [2], [3]], ["a", "b", "c"], classes=["a", "b", "c", "d"])
    clf.partial_fit([[4]], ["d"])
    assert clf.score([[1], [2], [3], [4]], ["a", "b", "c", "d"]) > 0


@pytest.mark.parametrize("momentum", [0, 0.9])
def test_partial_fit_regression(momentum):
    # scikit-learn asserts allclose with full batches.  Without shuffling, fit and the
    # partial_fit calls draw the same masks, so here the results are equal bit for bit;
    # dropout makes the training loss noisy, so fit's stopping rule is turned off to run
    # the 100 epochs the partial_fit calls run.
    params = dict(solver="sgd", activation="relu", random_state=1, learning_rate_init=0.01,
                  batch_size=X_reg.shape[0], momentum=momentum, shuffle=False, dropout=0.2)
    mlp = DropoutMLPRegressor(max_iter=100, n_iter_no_change=np.inf, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X_reg, y_reg)
    pred1 = mlp.predict(X_reg)
    mlp = DropoutMLPRegressor(**params)
    for _ in range(100):
        mlp.partial_fit(X_reg, y_reg)
    pred2 = mlp.predict(X_reg)
    assert_array_equal(pred1, pred2)
    assert mlp.score(X_reg, y_reg) > 0.65


def test_partial_fit_errors():
    X, y = [[3, 2], [1, 6]], [1, 0]
    with pytest.raises(ValueError):
        DropoutMLPClassifier(solver="sgd").partial_fit(X, y, classes=[2])


def test_nonfinite_params():
    rng = np.random.RandomState(0)
    fmax = np.finfo(np.float64).max
    X = fmax * rng.uniform(size=(10, 2))
    y = rng.standard_normal(size=10)
    msg = ("Solver produced non-finite parameter weights. The input data may contain large"
           " values and need to be preprocessed.")
    with pytest.raises(ValueError, match=msg):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            DropoutMLPRegressor().fit(X, y)


def test_predict_proba_binary():
    X, y = X_digits_binary[:50], y_digits_binary[:50]
    # five logistic units: the default rate 0.5 leaves too few of them in 200 epochs
    clf = DropoutMLPClassifier(hidden_layer_sizes=5, activation="logistic", random_state=1,
                               dropout=0.1)
    with ignore_warnings(category=ConvergenceWarning):
        clf.fit(X, y)
    y_proba = clf.predict_proba(X)
    y_log_proba = clf.predict_log_proba(X)
    assert y_proba.shape == (50, 2)
    assert_array_equal(y_proba.argmax(axis=1), y_log_proba.argmax(axis=1))
    assert_allclose(y_log_proba, np.log(y_proba))
    assert roc_auc_score(y, y_proba[:, 1]) == 1.0


def test_predict_proba_multiclass():
    X, y = X_digits_multi[:10], y_digits_multi[:10]
    clf = DropoutMLPClassifier(hidden_layer_sizes=5)
    with ignore_warnings(category=ConvergenceWarning):
        clf.fit(X, y)
    y_proba = clf.predict_proba(X)
    y_log_proba = clf.predict_log_proba(X)
    assert y_proba.shape == (10, np.unique(y).size)
    assert_array_equal(y_proba.argmax(axis=1), y_log_proba.argmax(axis=1))
    assert_allclose(y_log_proba, np.log(y_proba))


def test_shuffle():
    X, y = make_regression(n_samples=50, n_features=5, n_targets=1, random_state=0)
    for shuffle in (True, False):
        mlps = [DropoutMLPRegressor(hidden_layer_sizes=1, max_iter=1, batch_size=1,
                                    random_state=0, shuffle=shuffle) for _ in range(2)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for mlp in mlps:
                mlp.fit(X, y)
        assert np.array_equal(mlps[0].coefs_[0], mlps[1].coefs_[0])
    mlp1 = DropoutMLPRegressor(hidden_layer_sizes=1, max_iter=1, batch_size=1, random_state=0,
                               shuffle=True)
    mlp2 = DropoutMLPRegressor(hidden_layer_sizes=1, max_iter=1, batch_size=1, random_state=0,
                               shuffle=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp1.fit(X, y)
        mlp2.fit(X, y)
    assert not np.array_equal(mlp1.coefs_[0], mlp2.coefs_[0])


def test_sparse_input_is_refused():
    from scipy.sparse import csr_matrix
    with pytest.raises(TypeError, match="dense data is required"):
        DropoutMLPClassifier(max_iter=2).fit(csr_matrix(X_digits_binary[:50]),
                                             y_digits_binary[:50])


def test_tolerance():
    clf = DropoutMLPClassifier(tol=0.5, max_iter=3000, solver="sgd")
    clf.fit([[3, 2], [1, 6]], [1, 0])
    assert clf.max_iter > clf.n_iter_


def test_verbose_sgd(capsys):
    X, y = [[3, 2], [1, 6]], [1, 0]
    clf = DropoutMLPClassifier(solver="sgd", max_iter=2, verbose=10, hidden_layer_sizes=2)
    with ignore_warnings(category=ConvergenceWarning):
        clf.fit(X, y)
    clf.partial_fit(X, y)
    out, _ = capsys.readouterr()
    assert "Iteration" in out


@pytest.mark.parametrize("Estimator", BOTH)
def test_early_stopping(Estimator):
    X, y = X_digits_binary[:100], y_digits_binary[:100]
    tol = 0.2
    mlp = Estimator(tol=tol, max_iter=3000, solver="sgd", early_stopping=True)
    mlp.fit(X, y)
    assert mlp.max_iter > mlp.n_iter_
    assert mlp.best_loss_ is None
    assert isinstance(mlp.validation_scores_, list)
    valid_scores = mlp.validation_scores_
    best = mlp.best_validation_score_
    assert max(valid_scores) == best
    assert best + tol > valid_scores[-2]
    assert best + tol > valid_scores[-1]
    mlp = Estimator(tol=tol, max_iter=3000, solver="sgd", early_stopping=False)
    mlp.fit(X, y)
    assert mlp.validation_scores_ is None
    assert mlp.best_validation_score_ is None
    assert mlp.best_loss_ is not None


def test_early_stopping_restores_the_best_weights():
    X, y = X_digits_binary[:100], y_digits_binary[:100]
    mlp = DropoutMLPClassifier(max_iter=30, early_stopping=True, n_iter_no_change=30,
                               random_state=0, validation_fraction=0.3)
    with ignore_warnings(category=ConvergenceWarning):
        mlp.fit(X, y)
    # the validation split of scikit-learn's train_test_split with the same RandomState
    from sklearn.model_selection import train_test_split
    rs = np.random.RandomState(0)
    sizes = [64, 100, 1]
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        rs.uniform(size=(fan_in, fan_out))
        rs.uniform(size=fan_out)
    rs.randint(0, 2**32, size=2, dtype=np.uint64)  # the mask key
    _, X_val, _, y_val = train_test_split(X, y, random_state=rs, test_size=0.3, stratify=y)
    assert mlp.score(X_val, y_val) == mlp.best_validation_score_


def test_warm_start():
    X, y = X_iris, y_iris
    y_2classes = np.array([0] * 75 + [1] * 75)
    y_3classes = np.array([0] * 40 + [1] * 40 + [2] * 70)
    y_3classes_alt = np.array([0] * 50 + [1] * 50 + [3] * 50)
    y_4classes = np.array([0] * 37 + [1] * 37 + [2] * 38 + [3] * 38)
    y_5classes = np.array([0] * 30 + [1] * 30 + [2] * 30 + [3] * 30 + [4] * 30)
    params = dict(hidden_layer_sizes=2, warm_start=True, random_state=42, tol=1e-2, max_iter=5)
    with ignore_warnings(category=ConvergenceWarning):
        clf = DropoutMLPClassifier(**params).fit(X, y)
        clf.fit(X, y)
        clf.fit(X, y_3classes)
        for y_i in (y_2classes, y_3classes_alt, y_4classes, y_5classes):
            clf = DropoutMLPClassifier(**params).fit(X, y)
            message = ("warm_start can only be used where `y` has the same classes as in the "
                       "previous call to fit. Previously got [0 1 2], `y` has %s" % np.unique(y_i))
            with pytest.raises(ValueError, match=re.escape(message)):
                clf.fit(X, y_i)


@pytest.mark.parametrize("Estimator", BOTH)
def test_warm_start_full_iteration(Estimator):
    clf = Estimator(hidden_layer_sizes=2, solver="sgd", warm_start=True, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_iris, y_iris)
        assert clf.n_iter_ == 3
        clf.fit(X_iris, y_iris)
        assert clf.n_iter_ == 3


def test_n_iter_no_change():
    X, y = X_digits_binary[:100], y_digits_binary[:100]
    for n_iter_no_change in (2, 5, 10, 50, 100):
        clf = DropoutMLPClassifier(tol=0.01, max_iter=3000, solver="sgd",
                                   n_iter_no_change=n_iter_no_change)
        clf.fit(X, y)
        assert clf._no_improvement_count == n_iter_no_change + 1
        assert 3000 > clf.n_iter_


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_n_iter_no_change_inf():
    X, y = X_digits_binary[:100], y_digits_binary[:100]
    clf = DropoutMLPClassifier(tol=1e9, max_iter=3000, solver="sgd", n_iter_no_change=np.inf,
                               hidden_layer_sizes=10)
    clf.fit(X, y)
    assert clf.n_iter_ == 3000
    assert clf._no_improvement_count == clf.n_iter_ - 1


def test_early_stopping_stratified():
    mlp = DropoutMLPClassifier(early_stopping=True)
    with pytest.raises(ValueError, match=(r"The least populated classes in y have only 1 "
                                          r"member.*Classes with too few members are: "
                                          r"\['True'\]")):
        mlp.fit([[1, 2], [2, 3], [3, 4], [4, 5]], [0, 0, 0, 1])


def test_early_stopping_string_labels():
    X, y = make_classification(n_samples=200, n_features=10, n_classes=3, n_informative=5,
                               random_state=42)
    y = np.array(["class_a", "class_b", "class_c"], dtype=object)[y]
    mlp = DropoutMLPClassifier(early_stopping=True, max_iter=50, random_state=42)
    with ignore_warnings(category=ConvergenceWarning):
        mlp.fit(X, y)
    assert mlp.validation_scores_ is not None
    assert len(mlp.validation_scores_) == mlp.n_iter_
    assert np.isfinite(mlp.validation_scores_).all()


def test_classifier_dtypes_casting():
    params = dict(alpha=1e-5, hidden_layer_sizes=(5, 3), random_state=1, max_iter=100, tol=1e-1)
    mlp_64 = DropoutMLPClassifier(**params).fit(X_digits[:300], y_digits[:300])
    mlp_32 = DropoutMLPClassifier(**params).fit(X_digits[:300].astype(np.float32),
                                                y_digits[:300])
    assert_array_equal(mlp_64.predict(X_digits[300:]),
                       mlp_32.predict(X_digits[300:].astype(np.float32)))
    assert_allclose(mlp_64.predict_proba(X_digits[300:]),
                    mlp_32.predict_proba(X_digits[300:].astype(np.float32)), rtol=1e-02)


def test_regressor_dtypes_casting():
    params = dict(alpha=1e-5, hidden_layer_sizes=(5, 3), random_state=1, max_iter=150, tol=1e-3)
    with ignore_warnings(category=ConvergenceWarning):
        mlp_64 = DropoutMLPRegressor(**params).fit(X_digits[:300], y_digits[:300])
        mlp_32 = DropoutMLPRegressor(**params).fit(X_digits[:300].astype(np.float32),
                                                   y_digits[:300])
    assert_allclose(mlp_64.predict(X_digits[300:]),
                    mlp_32.predict(X_digits[300:].astype(np.float32)), rtol=5e-04)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("Estimator", BOTH)
def test_param_dtypes(dtype, Estimator):
    X, y = X_digits.astype(dtype), y_digits
    mlp = Estimator(alpha=1e-5, hidden_layer_sizes=(5, 3), random_state=1, max_iter=50, tol=1e-1)
    with ignore_warnings(category=ConvergenceWarning):
        mlp.fit(X[:300], y[:300])
    pred = mlp.predict(X[300:])
    assert all(intercept.dtype == dtype for intercept in mlp.intercepts_)
    assert all(coef.dtype == dtype for coef in mlp.coefs_)
    if Estimator is DropoutMLPRegressor:
        assert pred.dtype == dtype


def test_loading_from_joblib_partial_fit(tmp_path):
    # scikit-learn's case, without dropout: a net trained with dropout does not fit one
    # point to rtol 1e-4 in 200 steps, which is what this case measures
    estimator = DropoutMLPRegressor(hidden_layer_sizes=(42,), random_state=42,
                                    learning_rate_init=0.01, max_iter=200, dropout=0.0)
    with ignore_warnings(category=ConvergenceWarning):
        estimator.fit([[2]], [4])
    path = tmp_path / "mlp.pkl"
    joblib.dump(estimator, path)
    loaded = joblib.load(path)
    for _ in range(200):
        loaded.partial_fit([[2]], [1])
    assert_allclose(loaded.predict([[2]]), [1], rtol=1e-4)


@pytest.mark.parametrize("Estimator", BOTH)
def test_preserve_feature_names(Estimator):
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    X = pd.DataFrame(data=rng.randn(10, 2), columns=["colname_a", "colname_b"])
    y = pd.Series(data=np.full(10, 1), name="colname_y")
    model = Estimator(early_stopping=True, validation_fraction=0.2, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    assert list(model.feature_names_in_) == ["colname_a", "colname_b"]


@pytest.mark.parametrize("Estimator", BOTH)
def test_warm_start_with_early_stopping(Estimator):
    mlp = Estimator(max_iter=10, random_state=0, warm_start=True, early_stopping=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X_iris, y_iris)
        n_validation_scores = len(mlp.validation_scores_)
        mlp.set_params(max_iter=20)
        mlp.fit(X_iris, y_iris)
    assert len(mlp.validation_scores_) > n_validation_scores


@pytest.mark.parametrize("Estimator", BOTH)
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_warm_start_no_convergence(Estimator, solver):
    model = Estimator(solver=solver, warm_start=True, early_stopping=False, max_iter=10,
                      n_iter_no_change=np.inf, random_state=0)
    with pytest.warns(ConvergenceWarning):
        model.fit(X_iris, y_iris)
    assert model.n_iter_ == 10
    model.set_params(max_iter=20)
    with pytest.warns(ConvergenceWarning):
        model.fit(X_iris, y_iris)
    assert model.n_iter_ == 20


@pytest.mark.parametrize("Estimator", BOTH)
def test_partial_fit_after_fit(Estimator):
    mlp = Estimator(early_stopping=True, random_state=0, max_iter=20)
    with ignore_warnings(category=ConvergenceWarning):
        mlp.fit(X_iris, y_iris)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        mlp.partial_fit(X_iris, y_iris)


def test_diverging_loss():
    mlp = DropoutMLPRegressor(hidden_layer_sizes=100, activation="identity", solver="sgd",
                              alpha=0.0001, learning_rate_init=1, shuffle=True, max_iter=20,
                              early_stopping=True, n_iter_no_change=10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X_iris, y_iris)
    assert str(mlp.validation_scores_[-1]) == str(np.nan)
    assert isinstance(mlp.validation_scores_[-1], float)


def test_sample_weight_with_early_stopping():
    X, y = make_regression(n_samples=100, n_features=2, n_informative=2, random_state=42)
    params = dict(hidden_layer_sizes=10, solver="adam", early_stopping=True, tol=1e-2,
                  learning_rate_init=0.01, batch_size=10, random_state=42)
    with ignore_warnings(category=ConvergenceWarning):
        m1 = DropoutMLPRegressor(**params).fit(X, y, sample_weight=np.ones_like(y))
        m2 = DropoutMLPRegressor(**params).fit(X, y, sample_weight=None)
    assert_allclose(m1.predict(X), m2.predict(X))


def test_minimum_input_sample_size():
    X, y = make_regression(n_samples=2, n_features=5, random_state=0)
    with pytest.raises(ValueError, match="The validation set is too small"):
        DropoutMLPRegressor(early_stopping=True, random_state=0).fit(X, y)
