"""Tests of AEOutlierDetector: sklearn conventions, scores, thresholds, composition."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.decomposition import KernelPCA
from sklearn.ensemble import IsolationForest
from sklearn.exceptions import NotFittedError
from sklearn.metrics import make_scorer, roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from skae import AE, VAE, AEOutlierDetector, ConvAE, SparseAE
from skae._outlier import (
    AUTO_N_MAD,
    DEFAULT_EPOCHS,
    DEFAULT_HIDDEN,
    MAD_TO_STD,
    default_estimator,
)

FAST = {"max_epochs": 5}


@parametrize_with_checks(
    [
        AEOutlierDetector(AE(**FAST)),
        AEOutlierDetector(VAE(**FAST)),
        AEOutlierDetector(SparseAE(**FAST), contamination=0.1),
    ]
)
def test_sklearn_compatible_detector(estimator, check):
    check(estimator)


def make_data(n_inliers=300, n_outliers=15, n_features=10, seed=0):
    """Inliers near a 3-dimensional subspace, then gross outliers off it.

    Returns ``X`` with the outliers last, and ``y`` = +1 (inlier) / -1 (outlier).
    """
    rng = np.random.RandomState(seed)
    basis = rng.normal(size=(3, n_features))
    inliers = rng.normal(size=(n_inliers, 3)) @ basis + 0.05 * rng.normal(
        size=(n_inliers, n_features)
    )
    outliers = rng.normal(size=(n_outliers, 3)) @ basis + rng.choice(
        [-4.0, 4.0], size=(n_outliers, n_features)
    )
    X = np.vstack([inliers, outliers])
    y = np.r_[np.ones(n_inliers, dtype=int), -np.ones(n_outliers, dtype=int)]
    return X, y


@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.fixture(scope="module")
def fitted(data):
    X, _ = data
    detector = AEOutlierDetector(AE(n_components=3, max_epochs=60), random_state=0)
    return detector.fit(X)


INNER = {
    "AE": AE(n_components=3, max_epochs=5),
    "AE-bce": AE(n_components=3, max_epochs=5, loss="bce", output_activation="sigmoid"),
    "AE-denoising": AE(n_components=3, max_epochs=5, noise="gaussian", noise_level=0.5),
    "SparseAE": SparseAE(n_components=3, max_epochs=5, sparsity="kl"),
    "ConvAE": ConvAE(n_components=3, max_epochs=5, channels=(4,)),
    "VAE": VAE(n_components=3, max_epochs=5),
    "VAE-bce": VAE(n_components=3, max_epochs=5, loss="bce", output_activation="sigmoid"),
}


@pytest.mark.parametrize("name", list(INNER))
def test_scores_are_deterministic(name):
    X, _ = make_data(n_inliers=120, n_outliers=6)
    X = (X - X.min()) / (X.max() - X.min())  # [0, 1], so BCE applies
    first = AEOutlierDetector(INNER[name], random_state=0).fit(X)
    second = AEOutlierDetector(INNER[name], random_state=0).fit(X)
    scores = first.score_samples(X)
    assert np.isfinite(scores).all()
    # Same seed, same fit; scoring twice, or row by row, changes nothing.
    assert_array_equal(scores, second.score_samples(X))
    assert_array_equal(scores, first.score_samples(X))
    by_chunks = [first.score_samples(X[i : i + 7]) for i in range(0, len(X), 7)]
    assert_allclose(np.concatenate(by_chunks), scores, rtol=1e-12)
    assert_array_equal(
        first.reconstruction_error(X, per_feature=True),
        first.reconstruction_error(X, per_feature=True),
    )
    assert first.offset_ == second.offset_


def test_random_state_is_passed_to_the_inner_estimator(data):
    X, _ = data
    inner = AE(n_components=2, max_epochs=2)
    detector = AEOutlierDetector(inner, random_state=0).fit(X)
    seed = detector.estimator_.random_state
    assert isinstance(seed, int)
    assert inner.random_state is None  # the user's estimator is left alone
    assert detector.estimator is inner
    # The same detector seed gives the same inner seed; another one does not.
    assert AEOutlierDetector(inner, random_state=0).fit(X).estimator_.random_state == seed
    assert AEOutlierDetector(inner, random_state=1).fit(X).estimator_.random_state != seed
    # An inner seed set by the user wins; no detector seed leaves None alone.
    own = AEOutlierDetector(AE(max_epochs=2, random_state=7), random_state=0).fit(X)
    assert own.estimator_.random_state == 7
    assert AEOutlierDetector(inner).fit(X).estimator_.random_state is None


def test_default_estimator(data):
    X, y = data
    detector = AEOutlierDetector(random_state=0).fit(X)
    assert isinstance(detector.estimator_, AE)
    assert detector.estimator_.hidden_layer_sizes == DEFAULT_HIDDEN
    assert detector.estimator_.max_epochs == DEFAULT_EPOCHS
    assert detector.estimator_.n_components == 2  # 10 features // 4
    assert roc_auc_score(y, detector.score_samples(X)) > 0.95


@pytest.mark.parametrize(("n_features", "n_components"), [(1, 1), (7, 1), (64, 16), (784, 16)])
def test_default_code_size(n_features, n_components):
    assert default_estimator(n_features).n_components == n_components


def test_decision_function_and_predict(fitted, data):
    X, y = data
    scores = fitted.score_samples(X)
    decision = fitted.decision_function(X)
    assert_allclose(decision, scores - fitted.offset_)
    assert_array_equal(fitted.predict(X), np.where(decision < 0, -1, 1))
    again = AEOutlierDetector(AE(n_components=3, max_epochs=60), random_state=0)
    assert_array_equal(fitted.predict(X), again.fit_predict(X))
    # Higher score = more normal: the planted outliers score lowest.
    assert roc_auc_score(y, scores) > 0.95
    assert (decision[y == -1] < 0).all()


def test_auto_contamination_is_a_robust_z_score_cut(fitted, data):
    X, y = data
    scores = fitted.score_samples(X)
    median = np.median(scores)
    lower_mad = np.median(median - scores[scores <= median])
    assert_allclose(fitted.offset_, median - AUTO_N_MAD * MAD_TO_STD * lower_mad)
    # Every gross outlier is flagged, and only a few percent of the inliers.
    flagged = fitted.predict(X) == -1
    assert flagged[y == -1].all()
    assert flagged[y == 1].mean() < 0.05


@pytest.mark.parametrize("n_outliers", [0, 10, 30])
def test_auto_contamination_adapts_to_the_number_of_outliers(n_outliers):
    X, y = make_data(n_inliers=240, n_outliers=n_outliers, seed=1)
    detector = AEOutlierDetector(AE(n_components=3, max_epochs=60), random_state=0).fit(X)
    flagged = detector.predict(X) == -1
    assert flagged[y == -1].all()  # contamination=0.05 would miss some of 30
    assert flagged[y == 1].mean() < 0.07


@pytest.mark.parametrize("contamination", [0.01, 0.05, 0.2, 0.5])
def test_float_contamination_sets_the_training_fraction(fitted, data, contamination):
    X, _ = data
    detector = AEOutlierDetector(fitted.estimator, contamination=contamination, random_state=0)
    detector.fit(X)
    assert_allclose(detector.offset_, np.percentile(detector.score_samples(X), 100 * contamination))
    flagged = np.mean(detector.predict(X) == -1)
    assert abs(flagged - contamination) <= 1 / len(X)


def test_per_feature_reconstruction_error(fitted, data):
    X, _ = data
    per_feature = fitted.reconstruction_error(X, per_feature=True)
    per_sample = fitted.reconstruction_error(X)
    assert per_feature.shape == X.shape
    assert per_sample.shape == (X.shape[0],)
    assert (per_feature >= 0).all()
    assert_allclose(per_feature.sum(axis=1), per_sample * X.shape[1])
    inner = fitted.estimator_
    assert_allclose(per_feature, (X - inner.inverse_transform(inner.transform(X))) ** 2)
    # For an MSE autoencoder the score is exactly minus the per-sample error.
    assert_allclose(fitted.score_samples(X), -per_sample, rtol=1e-10)


def test_per_feature_error_points_at_the_corrupted_feature(fitted, data):
    X, y = data
    corrupted = X[y == 1][:20].copy()
    columns = np.arange(20) % X.shape[1]
    corrupted[np.arange(20), columns] += 5.0
    per_feature = fitted.reconstruction_error(corrupted, per_feature=True)
    assert_array_equal(per_feature.argmax(axis=1), columns)


def test_estimator_without_score_samples_uses_the_reconstruction_error(data):
    X, _ = data
    inner = KernelPCA(n_components=3, kernel="rbf", fit_inverse_transform=True)
    detector = AEOutlierDetector(inner, contamination=0.05).fit(X)
    assert_allclose(detector.score_samples(X), -detector.reconstruction_error(X))
    assert np.mean(detector.predict(X) == -1) == pytest.approx(0.05, abs=1 / len(X))


def test_float32_input_gives_float64_scores(fitted, data):
    X, _ = data
    scores = fitted.score_samples(X.astype(np.float32))
    assert scores.dtype == np.float64
    assert_allclose(scores, fitted.score_samples(X), rtol=1e-3, atol=1e-6)


def test_in_a_pipeline(data):
    X, y = data
    X = X * np.arange(1, X.shape[1] + 1) + 100  # features on different scales
    pipe = make_pipeline(
        StandardScaler(), AEOutlierDetector(AE(n_components=3, max_epochs=60), random_state=0)
    ).fit(X)
    scaler, detector = pipe[0], pipe[-1]
    Z = scaler.transform(X)
    assert_allclose(pipe.score_samples(X), detector.score_samples(Z))
    assert_allclose(pipe.decision_function(X), detector.decision_function(Z))
    assert_array_equal(pipe.predict(X), detector.predict(Z))
    assert_array_equal(pipe.fit_predict(X), pipe.predict(X))
    assert roc_auc_score(y, pipe.decision_function(X)) > 0.95


@pytest.mark.parametrize(
    "scoring",
    ["roc_auc", make_scorer(roc_auc_score, response_method="decision_function")],
    ids=["roc_auc", "make_scorer"],
)
def test_grid_search_with_a_scorer(data, scoring):
    X, y = data
    grid = {"estimator__n_components": [1, 3], "contamination": ["auto", 0.05]}
    search = GridSearchCV(
        AEOutlierDetector(AE(max_epochs=20), random_state=0),
        grid,
        scoring=scoring,
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
    ).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert scores.shape == (4,) and np.isfinite(scores).all()
    assert search.best_params_["estimator__n_components"] in (1, 3)
    assert search.best_score_ > 0.8
    assert isinstance(search.best_estimator_, AEOutlierDetector)


@pytest.mark.parametrize(
    "params",
    [
        {"contamination": 0.0},
        {"contamination": 0.6},
        {"contamination": -0.1},
        {"contamination": "high"},
        {"estimator": "AE"},
        {"estimator": IsolationForest()},  # no transform / inverse_transform
        {"random_state": "seed"},
    ],
)
def test_invalid_parameters(data, params):
    X, _ = data
    with pytest.raises(InvalidParameterError):
        AEOutlierDetector(**params).fit(X)


def test_invalid_inner_parameters_are_reported(data):
    X, _ = data
    with pytest.raises(InvalidParameterError, match="n_components"):
        AEOutlierDetector(AE(n_components=0)).fit(X)


def test_invalid_per_feature(fitted, data):
    X, _ = data
    with pytest.raises(InvalidParameterError, match="per_feature"):
        fitted.reconstruction_error(X, per_feature="yes")


@pytest.mark.parametrize(
    "method", ["predict", "decision_function", "score_samples", "reconstruction_error"]
)
def test_unfitted_raises_not_fitted_error(data, method):
    X, _ = data
    with pytest.raises(NotFittedError):
        getattr(AEOutlierDetector(), method)(X)


def test_wrong_number_of_features(fitted, data):
    X, _ = data
    with pytest.raises(ValueError, match="features"):
        fitted.reconstruction_error(X[:, :4])
