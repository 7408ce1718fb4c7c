"""The displays (skae._display) and ``interpolate``: the data drawn, not the pixels.

Every drawing test runs under matplotlib's Agg backend (the ``plt`` fixture).
Models are small and trained for a few epochs; results of different batch
shapes are compared to floating point rounding, never bit for bit.
"""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from _helpers import BASE, ESTIMATORS
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import ValidationCurveDisplay

import skae
from skae import (
    AE,
    AEOutlierDetector,
    AnomalyScoreDisplay,
    ConvAE,
    LatentSpaceDisplay,
    ReconstructionDisplay,
    TrainingCurveDisplay,
)

ROOT = Path(__file__).resolve().parents[1]
DISPLAYS = [AnomalyScoreDisplay, LatentSpaceDisplay, ReconstructionDisplay, TrainingCurveDisplay]


@pytest.fixture
def plt():
    """``matplotlib.pyplot`` on the Agg backend; closes the test's figures."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:150] / 16, y[:150]


@pytest.fixture(scope="module")
def ae(digits):
    """An AE with early stopping (a validation curve and an epoch kept), 4-d codes."""
    return AE(n_components=4, hidden_layer_sizes=(16,), max_epochs=3, random_state=0).fit(digits[0])


@pytest.fixture(scope="module")
def detector():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 6))
    X[:6] += 5  # six gross outliers
    est = AE(n_components=2, hidden_layer_sizes=(8,), max_epochs=3, early_stopping=False)
    return AEOutlierDetector(est, score_type="reconstruction", random_state=0).fit(X), X


def _reconstruct(estimator, X):
    return estimator.inverse_transform(estimator.transform(X))


# -- matplotlib stays optional ------------------------------------------------


def test_import_skae_does_not_import_matplotlib():
    code = (
        "import sys, skae; "
        "assert skae.ReconstructionDisplay and skae.TrainingCurveDisplay; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'; "
        "print(skae.__file__)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).resolve() == ROOT / "skae" / "__init__.py"


def test_displays_without_matplotlib_raise_with_the_install_hint(monkeypatch, ae, detector):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    calls = [
        lambda: ReconstructionDisplay.from_estimator(ae, BASE),
        lambda: ReconstructionDisplay(BASE, BASE).plot(),
        lambda: LatentSpaceDisplay.from_estimator(ae, BASE),
        lambda: TrainingCurveDisplay.from_estimator(ae),
        lambda: TrainingCurveDisplay([1.0, 0.5]).plot(),
        lambda: AnomalyScoreDisplay.from_estimator(detector[0], detector[1]),
    ]
    for call in calls:
        with pytest.raises(ImportError, match=r'pip install "skae\[plot\]"'):
            call()


def test_the_plot_extra_holds_matplotlib():
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = extras["optional-dependencies"]
    assert any(r.startswith("matplotlib") for r in extras["plot"])


@pytest.mark.parametrize("display", DISPLAYS, ids=lambda d: d.__name__)
def test_displays_are_exported(display):
    assert getattr(skae, display.__name__) is display
    assert display.__name__ in skae.__all__


# -- ReconstructionDisplay ----------------------------------------------------


def test_reconstruction_images(plt, ae, digits):
    X = digits[0]
    display = ReconstructionDisplay.from_estimator(ae, X, n_samples=5, image_shape=(8, 8))
    assert display.images_.shape == (2, 5)
    assert len(display.ax_.images) == 10
    assert display.figure_ is display.ax_.figure
    expected = _reconstruct(ae, X[:5])
    for i in range(5):
        np.testing.assert_array_equal(display.images_[0, i].get_array(), X[i].reshape(8, 8))
        np.testing.assert_allclose(
            display.images_[1, i].get_array(), expected[i].reshape(8, 8), rtol=1e-6, atol=1e-9
        )
    assert display.bars_ is None and display.scatter_ is None


def test_reconstruction_images_of_a_conv_ae(plt, digits):
    X = digits[0]
    cae = ConvAE(n_components=4, input_shape=(1, 8, 8), channels=(4,), max_epochs=1)
    cae.fit(X)
    display = ReconstructionDisplay.from_estimator(cae, X, n_samples=3)
    assert display.images_.shape == (2, 3)
    assert display.image_shape == (1, 8, 8)


def test_reconstruction_respects_ax_and_kwargs(plt, ae, digits):
    fig, (left, right) = plt.subplots(1, 2)
    display = ReconstructionDisplay.from_estimator(
        ae, digits[0], n_samples=4, image_shape=(8, 8), ax=right, cmap="viridis"
    )
    assert display.ax_ is right and display.figure_ is fig
    assert not left.images and len(right.images) == 8
    assert display.images_[1, 3].get_cmap().name == "viridis"


def test_reconstruction_of_rgb_images(plt):
    X = np.random.RandomState(0).rand(3, 12)
    display = ReconstructionDisplay.from_predictions(X, X, image_shape=(3, 2, 2))
    assert display.images_.shape == (2, 3)
    assert display.images_[0, 0].get_array().shape == (2, 2, 3)


def test_reconstruction_feature_error(plt, ae, digits):
    X = digits[0]
    display = ReconstructionDisplay.from_estimator(ae, X, color="C3")
    error = np.mean((X - _reconstruct(ae, X)) ** 2, axis=0)
    heights = [bar.get_height() for bar in display.bars_]
    np.testing.assert_allclose(heights, error, rtol=1e-6, atol=1e-12)
    assert display.images_ is None
    colour = plt.matplotlib.colors.to_rgba("C3")
    assert display.bars_[0].get_facecolor() == pytest.approx(colour)


def test_reconstruction_feature_names(plt):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(BASE, columns=["a", "b", "c", "d"])
    ae = ESTIMATORS["AE"]().fit(X)
    display = ReconstructionDisplay.from_estimator(ae, X)
    assert [t.get_text() for t in display.ax_.get_xticklabels()] == ["a", "b", "c", "d"]


def test_reconstruction_actual_against_reconstructed(plt, fitted):
    ae = fitted["AE"]
    display = ReconstructionDisplay.from_estimator(ae, BASE, kind="actual_vs_reconstructed")
    offsets = display.scatter_.get_offsets()
    assert offsets.shape == (BASE.size, 2)
    np.testing.assert_allclose(offsets[:, 0], BASE.ravel())
    np.testing.assert_allclose(offsets[:, 1], _reconstruct(ae, BASE).ravel(), rtol=1e-6)
    assert display.line_ is not None


def test_reconstruction_of_a_detector_uses_its_estimator(plt, detector):
    model, X = detector
    display = ReconstructionDisplay.from_estimator(model, X)
    error = np.mean((X - _reconstruct(model.estimator_, X)) ** 2, axis=0)
    np.testing.assert_allclose([b.get_height() for b in display.bars_], error, rtol=1e-6)


def test_reconstruction_bad_input(plt, ae, digits):
    X = digits[0]
    with pytest.raises(NotFittedError):
        ReconstructionDisplay.from_estimator(AE(), X)
    with pytest.raises(ValueError, match="holds 49 values per row"):
        ReconstructionDisplay.from_estimator(ae, X, image_shape=(7, 7))
    with pytest.raises(ValueError, match="1, 3 or 4 channels"):
        ReconstructionDisplay.from_estimator(ae, X, image_shape=(2, 4, 8))
    with pytest.raises(ValueError, match="kind='images' needs image_shape"):
        ReconstructionDisplay.from_estimator(ae, X, kind="images")
    with pytest.raises(ValueError, match="kind must be one of"):
        ReconstructionDisplay.from_estimator(ae, X, kind="pixels")
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        ReconstructionDisplay.from_estimator(ae, X, image_shape=(8, 8), n_samples=0)
    with pytest.raises(ValueError, match="of one shape"):
        ReconstructionDisplay(X, X[:, :5]).plot()
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        ReconstructionDisplay(X, X, image_shape=(8, 8)).plot(n_samples=0)
    with pytest.raises(ValueError, match="image_shape must be"):
        ReconstructionDisplay(X, X, image_shape=64).plot(kind="images")


# -- LatentSpaceDisplay ---------------------------------------------------------


def test_latent_space_of_2d_codes(plt, fitted):
    vae = fitted["VAE"]
    y = np.arange(len(BASE)) % 3
    display = LatentSpaceDisplay.from_estimator(vae, BASE, y, s=7)
    np.testing.assert_allclose(display.scatter_.get_offsets(), vae.transform(BASE), rtol=1e-6)
    assert display.projection is None
    assert display.ax_.get_xlabel() == "code 1"
    assert len(display.ax_.get_legend().get_texts()) == 3  # one entry per class
    assert display.scatter_.get_sizes()[0] == 7
    assert display.colorbar_ is None


def test_latent_space_projects_wider_codes(plt, ae, digits):
    X, y = digits
    display = LatentSpaceDisplay.from_estimator(ae, X, y)
    expected = PCA(n_components=2).fit_transform(ae.transform(X))
    offsets = np.asarray(display.scatter_.get_offsets())
    assert offsets.shape == (len(X), 2)
    # the principal axes' signs are a convention: compare up to a sign per axis
    signs = np.sign(np.sum(offsets * expected, axis=0))
    np.testing.assert_allclose(offsets, expected * signs, rtol=1e-6, atol=1e-9)
    assert display.ax_.get_xlabel().startswith("PC 1 of the 4-d codes")
    assert display.ax_.get_ylabel().startswith("PC 2 of the 4-d codes")
    assert "principal components" in display.ax_.get_title()
    assert len(display.ax_.get_legend().get_texts()) == len(np.unique(y))


def test_latent_space_of_1d_codes_and_continuous_labels(plt):
    ae = AE(n_components=1, max_epochs=2, random_state=0).fit(BASE)
    fig, ax = plt.subplots()
    display = LatentSpaceDisplay.from_estimator(ae, BASE, BASE[:, 0], ax=ax)
    offsets = display.scatter_.get_offsets()
    np.testing.assert_allclose(offsets[:, 0], ae.transform(BASE)[:, 0], rtol=1e-6)
    np.testing.assert_array_equal(offsets[:, 1], 0.0)
    assert display.ax_ is ax and display.figure_ is fig
    assert display.colorbar_ is not None and ax.get_legend() is None


def test_latent_space_bad_input(plt, fitted):
    with pytest.raises(NotFittedError):
        LatentSpaceDisplay.from_estimator(AE(), BASE)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        LatentSpaceDisplay.from_estimator(fitted["AE"], BASE, np.zeros(3))
    with pytest.raises(ValueError, match="1 or 2 columns"):
        LatentSpaceDisplay(np.zeros((4, 3))).plot()


# -- TrainingCurveDisplay -------------------------------------------------------


def test_training_curve(plt, ae):
    display = TrainingCurveDisplay.from_estimator(ae)
    np.testing.assert_array_equal(display.loss_line_.get_ydata(), ae.loss_curve_)
    np.testing.assert_array_equal(display.loss_line_.get_xdata(), np.arange(1, ae.n_iter_ + 1))
    np.testing.assert_array_equal(display.validation_line_.get_ydata(), -ae.validation_scores_)
    assert list(display.best_epoch_line_.get_xdata()) == [ae.best_epoch_] * 2
    assert len(display.ax_.get_lines()) == 3  # training, validation, epoch kept
    rates = ae.net_.history[:, "lr"]
    np.testing.assert_array_equal(display.lr_line_.get_ydata(), rates)
    assert display.ax_lr_.get_lines() == [display.lr_line_]
    assert len(display.ax_.get_legend().get_texts()) == 4


def test_training_curve_kwargs_and_ax(plt, ae):
    fig, ax = plt.subplots()
    display = TrainingCurveDisplay.from_estimator(ae, ax=ax, linewidth=3)
    assert display.ax_ is ax and display.figure_ is fig
    assert display.loss_line_.get_linewidth() == 3
    assert display.validation_line_.get_linewidth() == 3


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_training_curve_of_every_estimator(plt, fitted, name):
    est = fitted[name]
    display = TrainingCurveDisplay.from_estimator(est)
    np.testing.assert_array_equal(display.loss_line_.get_ydata(), est.loss_curve_)
    if est.n_iter_:
        assert len(display.lr_line_.get_ydata()) == est.n_iter_
    else:  # AE on 30 rows cross-fits and keeps PCA's solution, untrained
        assert display.lr_line_ is None
        np.testing.assert_array_equal(display.validation_line_.get_ydata(), -est.validation_scores_)


def test_training_curve_of_a_detector(plt, detector):
    model, _ = detector
    display = TrainingCurveDisplay.from_estimator(model)
    np.testing.assert_array_equal(display.loss_line_.get_ydata(), model.estimator_.loss_curve_)
    assert display.validation_line_ is None and display.best_epoch_line_ is None
    assert len(display.ax_.get_lines()) == 1


def test_training_curve_bad_input(plt):
    with pytest.raises(NotFittedError):
        TrainingCurveDisplay.from_estimator(AE())
    with pytest.raises(TypeError, match="not a skae autoencoder"):
        TrainingCurveDisplay.from_estimator(PCA(2).fit(BASE))


def test_history_records_the_learning_rate(tmp_path):
    ae = AE(n_components=2, max_epochs=4, early_stopping=False, random_state=0).fit(BASE)
    rates = np.asarray(ae.net_.history[:, "lr"])
    assert rates.shape == (4,) and np.all(rates >= 0) and np.all(rates <= ae.lr_)
    assert np.all(np.diff(rates[1:]) < 0)  # the cosine decay, after the warm-up
    path = tmp_path / "ae.skae"
    skae.save(ae, path)
    loaded = skae.load(path)
    np.testing.assert_array_equal(loaded.net_.history[:, "lr"], rates)
    loaded.partial_fit(BASE)  # continued training: a constant rate
    assert loaded.net_.history[-1, "lr"] == pytest.approx(loaded.lr_)


# -- AnomalyScoreDisplay --------------------------------------------------------


def test_anomaly_scores(plt, detector):
    model, X = detector
    display = AnomalyScoreDisplay.from_estimator(model, X, bins=12)
    assert list(display.threshold_line_.get_xdata()) == [model.offset_] * 2
    assert len(display.hist_) == 1 and len(display.hist_[0]) == 12
    assert sum(bar.get_height() for bar in display.hist_[0]) == len(X)
    np.testing.assert_allclose(display.scores, model.score_samples(X))
    assert display.bars_ is None and display.ax_contributions_ is None


def test_anomaly_scores_split_by_labels(plt, detector):
    model, X = detector
    y = np.where(np.arange(len(X)) < 6, -1, 1)
    display = AnomalyScoreDisplay.from_estimator(model, X, y, density=False)
    counts = [sum(bar.get_height() for bar in bars) for bars in display.hist_]
    assert counts == [len(X) - 6, 6]  # inliers, then outliers
    texts = [t.get_text() for t in display.ax_.get_legend().get_texts()]
    assert texts[:2] == [f"inliers ({len(X) - 6})", "outliers (6)"]
    # 0/1 labels where 1 marks an anomaly
    display = AnomalyScoreDisplay.from_estimator(model, X, (y == -1).astype(int), outlier_label=1)
    assert display.is_outlier.sum() == 6


def test_anomaly_contributions(plt, detector):
    model, X = detector
    rows = [0, 10, -1]
    fig, axes = plt.subplots(1, 2)
    display = AnomalyScoreDisplay.from_estimator(model, X, rows=rows, ax=axes)
    assert display.ax_ is axes[0] and display.ax_contributions_ is axes[1]
    assert display.figure_ is fig
    expected = model.reconstruction_error(X[rows], per_feature=True)
    expected = expected / model.residual_scale_**2 / X.shape[1]
    assert len(display.bars_) == 3
    for bars, values in zip(display.bars_, expected):
        np.testing.assert_allclose([b.get_height() for b in bars], values, rtol=1e-9)
    # With score_type="reconstruction", the contributions add up to minus the score.
    np.testing.assert_allclose(expected.sum(axis=1), -model.score_samples(X[rows]), rtol=1e-5)


def test_anomaly_scores_of_another_detector(plt, detector):
    _, X = detector
    forest = IsolationForest(n_estimators=10, random_state=0).fit(X)
    display = AnomalyScoreDisplay.from_estimator(forest, X)
    assert display.threshold_line_.get_xdata()[0] == forest.offset_
    with pytest.raises(TypeError, match="rows needs an AEOutlierDetector"):
        AnomalyScoreDisplay.from_estimator(forest, X, rows=[0])


def test_anomaly_scores_bad_input(plt, detector):
    model, X = detector
    with pytest.raises(NotFittedError):
        AnomalyScoreDisplay.from_estimator(AEOutlierDetector(), X)
    with pytest.raises(ValueError, match="pass outlier_label=1"):
        AnomalyScoreDisplay.from_estimator(model, X, np.arange(len(X)) % 2)
    with pytest.raises(ValueError, match="indices of X's 120 rows"):
        AnomalyScoreDisplay.from_estimator(model, X, rows=[120])
    with pytest.raises(ValueError, match="rows must be indices"):
        AnomalyScoreDisplay.from_estimator(model, X, rows=[0.5])
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="two"):
        AnomalyScoreDisplay.from_estimator(model, X, rows=[0], ax=ax)


# -- interpolate ------------------------------------------------------------


@pytest.mark.parametrize("name", list(ESTIMATORS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_interpolate_ends_are_the_reconstructions(fitted, name, dtype):
    est = fitted[name]
    X = BASE.astype(dtype)
    path = est.interpolate(X[0], X[1:2], n_steps=6)
    assert path.shape == (6, X.shape[1]) and path.dtype == dtype
    ends = _reconstruct(est, X[:2])
    rtol = 1e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(path[[0, -1]], ends, rtol=rtol, atol=rtol)
    # the points between decode the straight line between the two codes
    a, b = est.transform(X[:2])
    t = np.linspace(0, 1, 6)[:, None]
    line = est.inverse_transform(((1 - t) * a + t * b).astype(dtype))
    np.testing.assert_allclose(path, line, rtol=rtol, atol=rtol)


def test_interpolate_takes_rows_of_dataframes(fitted):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(BASE, columns=["a", "b", "c", "d"])
    ae = ESTIMATORS["AE"]().fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "X does not have valid feature names"
        path = ae.interpolate(X.iloc[0], X.iloc[[1]], n_steps=2)
    np.testing.assert_allclose(path, _reconstruct(ae, X.iloc[:2]), rtol=1e-10)


def test_interpolate_bad_input(fitted):
    ae = fitted["AE"]
    with pytest.raises(ValueError, match="x_start must be one row"):
        ae.interpolate(BASE[:2], BASE[0])
    with pytest.raises(ValueError, match="x_end must be one row"):
        ae.interpolate(BASE[0], np.zeros((1, 2, 4)))
    with pytest.raises(ValueError, match="x_end must be one row"):
        ae.interpolate(BASE[0], 3.0)
    with pytest.raises(ValueError, match="is expecting 4 features"):
        ae.interpolate(BASE[0], BASE[1, :3])
    for n_steps in (1, 2.5, True):
        with pytest.raises(ValueError, match="n_steps must be an integer >= 2"):
            ae.interpolate(BASE[0], BASE[1], n_steps=n_steps)
    with pytest.raises(NotFittedError):
        AE().interpolate(BASE[0], BASE[1])


# -- the bottleneck sweep ----------------------------------------------------


def test_validation_curve_over_n_components_without_labels(plt):
    display = ValidationCurveDisplay.from_estimator(
        AE(hidden_layer_sizes=(8,), max_epochs=2, random_state=0),
        BASE,
        y=None,
        param_name="n_components",
        param_range=[1, 2],
        cv=2,
    )
    assert display.test_scores.shape == (2, 2)
    assert np.all(np.isfinite(display.test_scores)) and np.all(display.test_scores <= 0)
    assert list(display.param_range) == [1, 2]
