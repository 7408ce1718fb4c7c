"""Tests of AEOutlierDetector: sklearn conventions, scores, thresholds, composition."""

import copy
import math

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import chi2
from sklearn.base import BaseEstimator
from sklearn.decomposition import KernelPCA
from sklearn.ensemble import IsolationForest
from sklearn.exceptions import NotFittedError
from sklearn.metrics import make_scorer, roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

import skae._plan
from skae import AE, VAE, AEOutlierDetector, ConvAE, SparseAE
from skae._outlier import (
    AUTO_N_MAD,
    MAD_TO_STD,
    SCORES,
    default_estimator,
    log_p_value,
    robust_gaussian,
    robust_scale,
)
from skae._plan import AUTO_EPOCHS, DETECTOR_BATCH, DETECTOR_HIDDEN, DETECTOR_STEPS

MAX_EPOCHS = AUTO_EPOCHS[1]  # the detector's cap is AE's own

FAST = {"max_epochs": 5}


@parametrize_with_checks(
    [
        AEOutlierDetector(),
        AEOutlierDetector(AE(**FAST), residual_scale="feature"),
        AEOutlierDetector(VAE(**FAST), score_type="estimator"),
        AEOutlierDetector(SparseAE(**FAST), contamination=0.1, score_type="density"),
        AEOutlierDetector(AE(**FAST), score_type="reconstruction"),
        AEOutlierDetector(AE(**FAST), score_type="ensemble"),
    ]
)
def test_sklearn_compatible_detector(estimator, check, monkeypatch):
    monkeypatch.setattr(skae._plan, "DETECTOR_STEPS", 20)  # a fast default estimator
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


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("name", list(INNER))
def test_scores_are_deterministic(name, score):
    X, _ = make_data(n_inliers=120, n_outliers=6)
    X = (X - X.min()) / (X.max() - X.min())  # [0, 1], so BCE applies
    first = AEOutlierDetector(INNER[name], score_type=score, random_state=0).fit(X)
    second = AEOutlierDetector(INNER[name], score_type=score, random_state=0).fit(X)
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
    inner = detector.estimator_
    assert isinstance(inner, AE)
    assert inner.hidden_layer_sizes == DETECTOR_HIDDEN
    assert inner.batch_size == DETECTOR_BATCH
    assert inner.early_stopping is False
    assert inner.init == "random"  # not AE's PCA start (see default_estimator)
    assert inner.n_components == 2  # 10 features // 4
    # about DETECTOR_STEPS optimiser steps (ceil(315 / 32) = 10 per epoch), at most MAX_EPOCHS
    assert inner.max_epochs == min(MAX_EPOCHS, math.ceil(DETECTOR_STEPS / 10))
    assert roc_auc_score(y, detector.score_samples(X)) > 0.95
    assert (detector.predict(X)[y == -1] == -1).all()


@pytest.mark.parametrize(("n_features", "n_components"), [(1, 1), (7, 1), (64, 16), (784, 16)])
def test_default_code_size(n_features, n_components):
    assert default_estimator(100, n_features).n_components == n_components


@pytest.mark.parametrize(
    ("n_samples", "max_epochs"),
    [(1, MAX_EPOCHS), (320, MAX_EPOCHS), (3200, 30), (10**5, 1), (10**7, 1)],
)
def test_default_training_is_sized_in_steps(n_samples, max_epochs):
    assert default_estimator(n_samples, 5).max_epochs == max_epochs


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
    # The "reconstruction" part of the score: errors in units of the residual scale.
    reconstruction = AEOutlierDetector(
        fitted.estimator, score_type="reconstruction", random_state=0
    )
    reconstruction.fit(X)
    assert_allclose(
        reconstruction.score_samples(X),
        -(
            reconstruction.reconstruction_error(X, per_feature=True)
            / reconstruction.residual_scale_**2
        ).mean(axis=1),
        rtol=1e-6,  # the module holds the statistics in float32
    )
    # For an MSE autoencoder, score_type="estimator" is exactly minus the per-sample error.
    own = AEOutlierDetector(fitted.estimator, score_type="estimator", random_state=0).fit(X)
    assert_allclose(own.score_samples(X), -own.reconstruction_error(X), rtol=1e-10)


def test_per_feature_error_points_at_the_corrupted_feature(fitted, data):
    X, y = data
    corrupted = X[y == 1][:20].copy()
    columns = np.arange(20) % X.shape[1]
    corrupted[np.arange(20), columns] += 5.0
    per_feature = fitted.reconstruction_error(corrupted, per_feature=True)
    assert_array_equal(per_feature.argmax(axis=1), columns)


@pytest.mark.parametrize("score", SCORES)
def test_estimator_without_a_torch_module(data, score):
    X, y = data
    inner = KernelPCA(n_components=3, kernel="rbf", fit_inverse_transform=True)
    detector = AEOutlierDetector(inner, score_type=score, contamination=0.05).fit(X)
    with pytest.raises(TypeError, match="not a skae estimator"):
        detector._scoring_module()
    scores = detector.score_samples(X)
    assert np.isfinite(scores).all()
    assert np.mean(detector.predict(X) == -1) == pytest.approx(0.05, abs=1 / len(X))
    codes = detector.estimator_.transform(X)
    off = (detector.reconstruction_error(X, per_feature=True) / detector.residual_scale_**2).mean(1)
    inside = np.square((codes - detector.code_location_) @ detector.code_whitening_).mean(1)
    expected = {
        "combined": -(off + inside),
        "reconstruction": -off,
        "density": -inside,
        "estimator": -detector.reconstruction_error(X),  # KernelPCA has no score_samples
    }.get(score)
    if score == "ensemble":  # the mean log p-value of combined and the isolation forest's
        parts = (-(off + inside), detector.isolation_forest_.score_samples(X))
        expected = np.mean([log_p_value(g, p) for g, p in zip(detector.ensemble_grid_, parts)], 0)
    assert_allclose(scores, expected, rtol=1e-10)
    if score in ("reconstruction", "estimator"):
        assert roc_auc_score(y, scores) > 0.95


class _WithoutTorchModule(BaseEstimator):
    """A fitted skae estimator seen through ``transform`` and ``inverse_transform`` only."""

    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return self.estimator.transform(X)

    def inverse_transform(self, X):
        return self.estimator.inverse_transform(X)


@pytest.mark.parametrize("score", ["combined", "reconstruction", "density"])
def test_torch_and_numpy_distance_scores_agree(fitted, data, score):
    """DistanceScore (torch) and the numpy path for other estimators are one formula."""
    X, _ = data
    torch_path = copy.copy(fitted)
    torch_path.score_type, torch_path._inference_cache = score, None
    numpy_path = copy.copy(torch_path)
    numpy_path.estimator_ = _WithoutTorchModule(fitted.estimator_)
    # The torch path holds the fitted statistics as float32 buffers: give the
    # numpy path the same values, so that only float64 rounding can differ.
    buffers = {k: v.double().numpy() for k, v in torch_path._scoring_module().named_buffers()}
    numpy_path.residual_scale_ = 1.0 / buffers["inv_scale"]
    numpy_path.code_location_ = buffers["location"]
    numpy_path.code_whitening_ = buffers["whitening"]
    expected = torch_path.score_samples(X)
    assert_allclose(numpy_path.score_samples(X), expected, rtol=1e-12, atol=1e-14)
    # With its own float64 statistics, the numpy path differs by float32 rounding.
    own = copy.copy(numpy_path)
    own.residual_scale_ = fitted.residual_scale_
    own.code_location_, own.code_whitening_ = fitted.code_location_, fitted.code_whitening_
    assert_allclose(own.score_samples(X), expected, rtol=1e-5)


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
        {"score_type": "elbo"},
        {"residual_scale": "robust"},
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


def make_inside_data(n_inliers=300, n_outliers=15, n_features=10, seed=0):
    """Inliers near a 3-dimensional subspace; outliers *on* it, but far from the bulk."""
    rng = np.random.RandomState(seed)
    basis = rng.normal(size=(3, n_features))
    codes = np.vstack([rng.normal(size=(n_inliers, 3)), 6 + rng.normal(size=(n_outliers, 3))])
    X = codes @ basis + 0.05 * rng.normal(size=(n_inliers + n_outliers, n_features))
    y = np.r_[np.ones(n_inliers, dtype=int), -np.ones(n_outliers, dtype=int)]
    return X, y


@pytest.mark.parametrize(
    ("score", "off_auc", "inside_auc"),
    [
        ("combined", 0.95, 0.95),  # finds both kinds
        ("reconstruction", 0.95, None),
        ("density", None, 0.95),
        ("estimator", 0.95, None),
    ],
)
def test_each_score_finds_its_outliers(score, off_auc, inside_auc):
    inner = AE(n_components=3, max_epochs=60)
    for make, low in ((make_data, off_auc), (make_inside_data, inside_auc)):
        X, y = make()
        detector = AEOutlierDetector(inner, score_type=score, random_state=0).fit(X)
        if low is not None:
            assert roc_auc_score(y, detector.score_samples(X)) > low


def test_combined_score_is_the_sum_of_its_parts(fitted, data):
    X, _ = data
    inner = fitted.estimator_
    codes = inner.transform(X)
    residuals = X - inner.inverse_transform(codes)
    off = np.square(residuals / fitted.residual_scale_).mean(axis=1)
    whitened = (codes - fitted.code_location_) @ fitted.code_whitening_
    inside = np.square(whitened).mean(axis=1)
    assert_allclose(
        fitted.score_samples(X), -(off + inside), rtol=1e-6
    )  # statistics held in float32
    # The training rows' parts are about 1 for a typical sample, by construction.
    assert 0.5 < np.median(off) < 2 and 0.5 < np.median(inside) < 2
    # The global residual scale is the square root of the median row MSE.
    train_mse = np.square(residuals).mean(axis=1)
    assert_allclose(fitted.residual_scale_, np.sqrt(np.median(train_mse)))


def test_residual_scale_per_feature():
    X, y = make_data()
    X[:, 0] = 0.0  # a feature the model reconstructs (almost) exactly
    detector = AEOutlierDetector(
        AE(n_components=3, max_epochs=60), residual_scale="feature", random_state=0
    ).fit(X)
    scale = detector.residual_scale_
    residuals = X - detector.estimator_.inverse_transform(detector.estimator_.transform(X))
    robust = MAD_TO_STD * np.median(np.abs(residuals), axis=0)
    floor = 0.1 * np.sqrt(np.mean(robust**2))
    assert_allclose(scale, np.maximum(robust, floor))
    assert scale[0] == scale.min() < np.median(scale) / 5
    assert len(np.unique(scale)) == X.shape[1]
    assert roc_auc_score(y, detector.score_samples(X)) > 0.95


def test_robust_scale_and_gaussian_helpers():
    rng = np.random.RandomState(0)
    # global: one value; feature: per column; never zero
    residuals = rng.normal(size=(1000, 4)) * [1.0, 2.0, 3.0, 0.0]
    assert_allclose(robust_scale(residuals), np.sqrt(np.median((residuals**2).mean(1))))
    assert_allclose(robust_scale(residuals, "feature")[:3], [1, 2, 3], rtol=0.1)
    assert robust_scale(residuals, "feature")[3] == pytest.approx(0.1 * np.sqrt(14 / 4), rel=0.1)
    assert (robust_scale(np.zeros((5, 3))) > 0).all()
    assert (robust_scale(np.zeros((5, 3)), "feature") > 0).all()
    # robust_gaussian: consistent on clean data, unmoved by 10 % of gross outliers
    cov = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]])
    codes = rng.multivariate_normal([1.0, -1.0, 0.0], cov, size=2000)
    codes[:200] += 20.0
    location, whitening = robust_gaussian(codes)
    assert_allclose(location, [1.0, -1.0, 0.0], atol=0.15)
    distances = np.square((codes - location) @ whitening).sum(axis=1)
    assert np.median(distances) == pytest.approx(chi2.ppf(0.5, 3), rel=1e-6)
    assert distances[:200].min() > 10 * np.quantile(distances[200:], 0.99)
    assert_allclose(np.linalg.inv(whitening @ whitening.T), cov, rtol=0.2, atol=0.1)
    # degenerate codes (all equal) give finite distances
    location, whitening = robust_gaussian(np.ones((10, 2)))
    assert np.isfinite(whitening).all()


def test_constant_data_gives_finite_scores_and_a_warning():
    X = np.ones((50, 4))
    with pytest.warns(UserWarning, match="no spread below their median"):
        detector = AEOutlierDetector(AE(n_components=2, max_epochs=3), random_state=0).fit(X)
    assert np.isfinite(detector.score_samples(X)).all()
    assert np.isfinite(detector.offset_)


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("name", ["AE", "AE-bce", "SparseAE", "ConvAE", "VAE", "VAE-bce"])
def test_scoring_module_is_score_samples(name, score):
    X, _ = make_data(n_inliers=60, n_outliers=4)
    X = (X - X.min()) / (X.max() - X.min())
    detector = AEOutlierDetector(INNER[name], score_type=score, random_state=0).fit(X)
    module = detector._scoring_module()
    assert isinstance(module, torch.nn.Module)
    buffers = dict(module.named_buffers())
    if score != "estimator":
        assert {"inv_scale", "location", "whitening"} <= set(buffers)
        assert buffers["inv_scale"].dtype == torch.float32  # the inner module's dtype
        assert_allclose(buffers["inv_scale"].numpy(), 1 / detector.residual_scale_, rtol=1e-6)
    # float32 input runs the module itself; float64 input a float64 copy of it
    module64 = copy.deepcopy(module).double()
    with torch.inference_mode():
        out32 = module(torch.tensor(X, dtype=torch.float32))
        out64 = module64(torch.from_numpy(X))
    assert out32.shape == (len(X),) and out32.dtype == torch.float32
    # score_type="ensemble": the module is the autoencoder's part, "combined"
    scores = detector._model_scores if score == "ensemble" else detector.score_samples
    assert_array_equal(out32.numpy(), scores(X.astype(np.float32)))
    assert_allclose(out64.numpy(), scores(X), rtol=1e-12, atol=1e-12)
    # The module is exportable: no numpy, no data-dependent control flow.
    x = torch.from_numpy(X)
    exported = torch.export.export(module64, (x,)).module()
    other = torch.from_numpy(X[::-1].copy() + 0.1)
    with torch.inference_mode():
        assert_allclose(exported(other).numpy(), module64(other).numpy(), rtol=1e-12)
        assert_allclose(exported(other).numpy(), scores(other.numpy()), rtol=1e-12)


def test_vae_inner_estimator_scores():
    X, y = make_data()
    vae = VAE(n_components=3, max_epochs=40)
    own = AEOutlierDetector(vae, score_type="estimator", random_state=0).fit(X)
    # score_type="estimator" is the VAE's ELBO, exactly
    assert_allclose(own.score_samples(X), own.estimator_.score_samples(X), rtol=1e-12)
    for score in SCORES:
        detector = AEOutlierDetector(vae, score_type=score, random_state=0).fit(X)
        scores = detector.score_samples(X)
        assert np.isfinite(scores).all()
        if score != "density":
            assert roc_auc_score(y, scores) > 0.9


def _digit_splits(n_train=150, digits=range(10), seed=0):
    """``(train, new)`` images (/16) of each digit: ``n_train`` rows to fit, the rest new."""
    from sklearn.datasets import load_digits

    data = load_digits()
    for digit in digits:
        rows = data.data[data.target == digit] / 16.0
        order = np.random.RandomState(seed).permutation(len(rows))
        yield rows[order[:n_train]], rows[order[n_train:]]


def test_cross_fitted_threshold_flags_about_contamination_of_new_inliers():
    # 150 training images of one digit: the training scores are optimistic, and
    # a threshold set on them flags too many new images of the digit.
    flagged = {"training": [], "cross-fit": []}
    for train, new in _digit_splits():
        for calibration, fractions in flagged.items():
            detector = AEOutlierDetector(
                contamination=0.1, calibration=calibration, random_state=0
            ).fit(train)
            fractions.extend(detector.predict(new) == -1)
    cross_fitted, training = np.mean(flagged["cross-fit"]), np.mean(flagged["training"])
    assert 0.05 <= cross_fitted <= 0.2  # within 2x contamination
    assert abs(math.log(cross_fitted / 0.1)) < abs(math.log(training / 0.1))


def test_auto_calibration_cross_fits_small_training_sets_only(data):
    X, _ = data
    small = X[:150]
    params = {"estimator": AE(n_components=3, max_epochs=5), "random_state": 0}
    auto = AEOutlierDetector(**params).fit(small)
    cross_fitted = AEOutlierDetector(calibration="cross-fit", **params).fit(small)
    training = AEOutlierDetector(calibration="training", **params).fit(small)
    assert auto.offset_ == cross_fitted.offset_  # deterministic, and "auto" cross-fits
    assert auto.offset_ != training.offset_
    # the model and its scores are the same: only the threshold moves
    assert_allclose(auto.score_samples(X), training.score_samples(X))
    assert skae._plan.CALIBRATION_MAX_ROWS < len(X)
    big = AEOutlierDetector(**params).fit(X)
    assert big.offset_ == AEOutlierDetector(calibration="training", **params).fit(X).offset_
