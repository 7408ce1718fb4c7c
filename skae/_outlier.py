"""Anomaly detection with an autoencoder: distances off and inside the learned manifold."""

import math
import warnings
from numbers import Real

import numpy as np
import torch
from scipy.stats import chi2
from sklearn.base import BaseEstimator, OutlierMixin, _fit_context, clone
from sklearn.ensemble import IsolationForest
from sklearn.model_selection import KFold
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions, validate_params
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from skae._ae import AE
from skae._base import BaseAutoencoder
from skae._docs import fill_doc, format_number
from skae._inference import current_cache, forward, scorer
from skae._plan import (
    CALIBRATION_FOLDS,
    CALIBRATION_MAX_ROWS,
    CALIBRATION_MIN_ROWS,
    ENSEMBLE_QUANTILES,
    detector_plan,
)
from skae._utils import make_seed

#: ``contamination="auto"``: the offset is this many robust standard deviations
#: (scaled lower MAD) below the median training score: the 3.5 cut-off of
#: Iglewicz and Hoaglin's modified z-score.
AUTO_N_MAD = 3.5

#: Scales the median absolute deviation to a standard deviation under normality.
MAD_TO_STD = 1.4826

#: ``residual_scale="feature"``: each feature's residual scale is at least this
#: fraction of the root mean square of all the features' scales, so that a
#: feature the model reconstructs (almost) exactly on the training data cannot
#: dominate the score.
SCALE_FLOOR = 0.1

#: The robust code covariance is estimated on this fraction of the training
#: codes closest to the centre, after TRIM_STEPS concentration steps.
TRIM_FRACTION = 0.75
TRIM_STEPS = 3

#: ``fit`` warns when the lower MAD of the training scores is at most this
#: fraction of ``1 + |median|``: the scores then have no spread.
NO_SPREAD = 1e-9

SCORES = ("combined", "reconstruction", "density", "estimator", "ensemble")


def default_estimator(n_samples, n_features):
    """The autoencoder used when ``estimator=None``, for data of this shape.

    Sized and trained as :func:`skae._plan.detector_plan` says, from random
    weights, with no early stopping.

    Parameters
    ----------
    n_samples : int
        Number of training rows; the epoch budget is sized from it.
    n_features : int
        Number of features; the code size is sized from it.

    Returns
    -------
    estimator : AE
        The unfitted autoencoder.

    Examples
    --------
    >>> from skae._outlier import default_estimator
    >>> ae = default_estimator(1000, 20)
    >>> ae.n_components, ae.hidden_layer_sizes, ae.max_epochs, ae.init
    (5, (128,), 94, 'random')
    >>> default_estimator(200, 20).max_epochs  # 3,000 steps would be 429 epochs
    100
    """
    return AE(
        **detector_plan(n_samples, n_features),
        early_stopping=False,
        tol=0.0,
        # Not AE's default PCA start: with it, the off-manifold term behaves more
        # like PCA's reconstruction error, which ranks anomalies worse on ADBench.
        init="random",
    )


def robust_scale(residuals, kind="global", floor=SCALE_FLOOR):
    """Robust scale of the residuals ``x - xhat`` of the training rows, per feature.

    - ``kind="global"``: one scale for every feature, the square root of the
      median over rows of the mean squared residual (the median row MSE);
    - ``kind="feature"``: each column's ``1.4826 * median(|r|)`` (a robust
      standard deviation of a residual centred on zero), at least ``floor``
      times the root mean square of the columns' scales.

    A tiny absolute floor keeps every scale positive.
    """
    n_features = residuals.shape[1]
    squares = np.square(residuals)
    tiny = 1e-12 * (1.0 + math.sqrt(float(squares.mean()))) if squares.size else 1e-12
    if kind == "global":
        scale = np.full(n_features, math.sqrt(float(np.median(squares.mean(axis=1)))))
        return np.maximum(scale, tiny)
    scale = MAD_TO_STD * np.median(np.abs(residuals), axis=0)
    low = floor * math.sqrt(float(np.mean(np.square(scale))))
    return np.maximum(scale, max(low, tiny))


def robust_gaussian(codes, fraction=TRIM_FRACTION, n_steps=TRIM_STEPS):
    """Robust location and whitening matrix of ``codes``.

    Starting from the mean and covariance of all rows, each step re-estimates
    them on the ``fraction`` of rows with the smallest Mahalanobis distance
    (the concentration step of the minimum covariance determinant); the
    covariance is then rescaled so that the median squared distance matches
    the chi-square median (consistency under normality). Deterministic.

    Returns
    -------
    location : ndarray of shape (n_components,)
    whitening : ndarray of shape (n_components, n_components)
        ``W`` such that ``||(z - location) @ W||**2`` is the squared
        Mahalanobis distance of ``z``.
    """
    n, k = codes.shape
    keep = min(n, max(k + 1, math.ceil(fraction * n)))
    rows = codes
    for step in range(n_steps + 1):
        location = rows.mean(axis=0)
        centred = rows - location
        covariance = centred.T @ centred / max(1, len(rows))
        whitening = _whitening(covariance, codes)
        distances = np.square((codes - location) @ whitening).sum(axis=1)
        if step < n_steps:
            rows = codes[np.argsort(distances, kind="stable")[:keep]]
    median = np.median(distances)
    if k and median > 0:  # covariance * (median / chi2 median): distances / that ratio
        whitening = whitening * math.sqrt(chi2.ppf(0.5, k) / median)
    return location, whitening


def _location_spread(scores, floor=True):
    """``(median, lower_MAD)`` of ``scores``: the MAD of the scores below the median.

    With ``floor``, the MAD is at least ``NO_SPREAD * (1 + |median|)``.
    """
    median = float(np.median(scores))
    lower_mad = float(np.median(median - scores[scores <= median]))
    if floor:
        lower_mad = max(lower_mad, NO_SPREAD * (1.0 + abs(median)))
    return median, lower_mad


def quantile_grid(scores, n_quantiles=ENSEMBLE_QUANTILES):
    """Sorted cut points between the training ``scores``, at most ``n_quantiles``.

    The midpoints between consecutive sorted scores (the quantiles at levels
    ``(k + 0.5) / n_quantiles`` on more rows), so that no training score
    lies on a cut point unless tied: float rounding (e.g. in ONNX) cannot
    move a training row across one.
    """
    scores = np.sort(np.asarray(scores, dtype=np.float64))
    if len(scores) <= n_quantiles + 1:
        return (scores[:-1] + scores[1:]) / 2.0
    return np.quantile(scores, (np.arange(n_quantiles) + 0.5) / n_quantiles)


def log_p_value(grid, scores):
    """``log((1 + #{grid <= score}) / (len(grid) + 1))`` for each of ``scores``.

    With ``grid`` the sorted training scores (higher is more normal), this is
    the log of a score's p-value among them (a conformal p-value): the share
    of training rows at least as anomalous, from ``1 / (len(grid) + 1)``
    (more anomalous than every one of them) to 1.
    """
    count = np.searchsorted(grid, scores, side="right")
    return np.log((1.0 + count) / (len(grid) + 1.0))


def _whitening(covariance, codes):
    """``V diag(1 / sqrt(lambda))``, eigenvalues floored relative to the largest."""
    values, vectors = np.linalg.eigh(covariance)
    scale = 1.0 + float(np.mean(np.square(codes))) if codes.size else 1.0
    floor = max(1e-6 * float(values.max(initial=0.0)), 1e-12 * scale)
    return vectors / np.sqrt(np.maximum(values, floor))


class DistanceScore(nn.Module):
    """Minus the distances of ``x`` off and inside an autoencoder's manifold.

    ``off = mean_j ((x_j - xhat_j) * inv_scale_j) ** 2`` (the reconstruction
    error, each feature in units of its robust residual scale) and
    ``inside = mean_l (((z - location) @ whitening)_l) ** 2`` (the squared
    robust Mahalanobis distance of the code, per code unit). The score is
    ``-(off + inside)``, or minus one of them. Inner estimators without a
    torch module are scored with the same formulas in numpy
    (:meth:`AEOutlierDetector._score_samples`).
    """

    def __init__(self, module, inv_scale, location, whitening, off=True, inside=True):
        super().__init__()
        self.module = module
        self.register_buffer("inv_scale", inv_scale)
        self.register_buffer("location", location)
        self.register_buffer("whitening", whitening)
        self.off = bool(off)
        self.inside = bool(inside)

    def forward(self, x):
        z = self.module.encode(x)
        terms = []
        if self.off:
            residual = (x - self.module.decode(z)) * self.inv_scale
            terms.append(residual.square().mean(dim=1))
        if self.inside:
            whitened = (z - self.location) @ self.whitening
            terms.append(whitened.square().mean(dim=1))
        total = terms[0]  # not torch.zeros(len(x)): keeps the batch size symbolic
        for term in terms[1:]:
            total = total + term
        return -total


@fill_doc(ensemble_quantiles=format_number(ENSEMBLE_QUANTILES))
class AEOutlierDetector(OutlierMixin, BaseEstimator):
    """Outlier detection with an autoencoder: distances off and inside its manifold.

    The wrapped autoencoder is trained on ``X``. A sample is anomalous when
    it lies far *off* the manifold the autoencoder learned (it is
    reconstructed badly) or far from the bulk of the data *inside* it (its
    code is unusual). The default ``score_type="combined"`` adds both distances,
    each in units of its robust spread on the training data, as
    probabilistic PCA's likelihood adds a residual term to a Mahalanobis
    term (see Notes). The API follows
    :class:`~sklearn.ensemble.IsolationForest`: :meth:`score_samples` is
    higher for more normal samples, :meth:`decision_function` is
    ``score_samples(X) - offset_`` and is negative for outliers, and
    :meth:`predict` returns +1 for inliers and -1 for outliers.
    :meth:`reconstruction_error` shows which features make a sample
    anomalous.

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    estimator_ : estimator object
        The fitted clone of ``estimator`` (or of the default autoencoder).

    residual_scale_ : ndarray of shape (`n_features_in_`,)
        The scale of each feature's reconstruction residual (see
        ``residual_scale``; all equal for ``"global"``).

    code_location_ : ndarray of shape (n_components,)
        Robust centre of the training codes.

    code_whitening_ : ndarray of shape (n_components, n_components)
        ``W`` such that ``||(transform(x) - code_location_) @ W||**2`` is the
        squared robust Mahalanobis distance of a code.

    isolation_forest_ : IsolationForest
        ``score_type="ensemble"`` only: the isolation forest fitted on ``X``.

    ensemble_grid_ : ndarray of shape (2, n_cuts)
        ``score_type="ensemble"`` only: the sorted cut points between the
        training scores of ``combined`` (row 0) and of the isolation forest
        (row 1) that the p-values count (the midpoints between consecutive
        scores, or {ensemble_quantiles} quantiles on more rows).

    offset_ : float
        Threshold on :meth:`score_samples`: ``decision_function(X) =
        score_samples(X) - offset_``, and samples below it are outliers.

    n_features_in_ : int
        Number of features seen during :meth:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :meth:`fit`. Defined only when `X`
        has feature names that are all strings.

    See Also
    --------
    sklearn.ensemble.IsolationForest : Isolation-based outlier detection.
    sklearn.neighbors.LocalOutlierFactor : Density-based outlier detection.
    sklearn.decomposition.PCA : Its ``score_samples`` (probabilistic PCA's
        likelihood) is the linear analogue of ``score_type="combined"``.
    AE : The default inner estimator.
    VAE : Scores samples by their evidence lower bound (``score_type="estimator"``).

    Notes
    -----
    For a code ``z = transform(x)`` and a reconstruction
    ``xhat = inverse_transform(z)``, with ``d`` features and ``k`` code
    units::

        off(x)    = mean_j ((x_j - xhat_j) / residual_scale_[j]) ** 2
        inside(x) = ||(z - code_location_) @ code_whitening_|| ** 2 / k

    For a linear autoencoder (PCA) and an isotropic residual scale,
    ``d * off + k * inside`` is, up to constants, minus twice probabilistic
    PCA's log-likelihood. Dividing each term by its dimension weighs the two
    equally, whatever the ratio of ``d`` to ``k``: each is about 1 for a
    typical training row. Both spreads are estimated robustly on the
    training rows, so that outliers in the training data do not hide
    themselves: the residual scale is a median, and the code's Gaussian is
    fitted on the 75 % of codes closest to its centre (three concentration
    steps, as in the minimum covariance determinant), then rescaled so that
    the median squared distance is the chi-square median. On 17 ADBench
    tables, the combined score beats either term alone, IsolationForest and
    pyod's AutoEncoder (see the user guide's anomaly detection page).

    For skae estimators, :meth:`score_samples` runs one torch module, the
    inner estimator's module followed by the distances, with the fitted
    statistics as buffers (in the module's float32, so float64 scores use
    them rounded to float32); float32 input runs it as it is, float64 input
    a float64 copy of it. :func:`skae.to_onnx` exports the same module.
    Other estimators are scored with numpy. Every score is deterministic:
    training noise is never applied at inference, and the VAE's ELBO uses
    fixed draws.

    Examples
    --------
    >>> import numpy as np
    >>> from skae import AE, AEOutlierDetector
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(300, 2)) @ rng.normal(size=(2, 8))  # a 2-d subspace
    >>> X += 0.05 * rng.normal(size=X.shape)
    >>> X[:5] += 3 * rng.choice([-1, 1], size=(5, 8))  # five gross outliers
    >>> detector = AEOutlierDetector(AE(n_components=2, max_epochs=40),
    ...                              random_state=0).fit(X)
    >>> detector.predict(X[:8])
    array([-1, -1, -1, -1, -1,  1,  1,  1])
    >>> detector.reconstruction_error(X[:2], per_feature=True).shape
    (2, 8)
    """

    _parameter_docs = {
        "estimator": """
        estimator : estimator object, default={default}
            The autoencoder to train: any skae estimator, or any estimator with
            ``fit``, ``transform`` and ``inverse_transform``. It is cloned, and
            the clone is fitted. ``None`` uses an :class:`AE` sized to the data:
            a code of ``n_features // {detector_code_ratio}`` units clipped to
            1..{detector_max_code} (narrow, so that it cannot copy unusual inputs
            through), ``hidden_layer_sizes={detector_hidden}``, random initial weights
            (``init="random"``), and about {detector_steps} Adam steps on batches
            of {detector_batch} rows (learning rate {detector_lr}, no early stopping), at
            most {epochs_max} epochs, i.e. ``max_epochs = min({epochs_max}, ceil({detector_steps} /
            ceil(n_samples / {detector_batch})))``: {epochs_max} epochs up to
            {detector_rows_capped} rows, one pass from {detector_rows_one_pass} rows. A
            budget in steps keeps training time bounded on large data and enough
            on small data; the cap of {epochs_max} epochs (:class:`AE`'s own for
            ``max_epochs="auto"``) keeps it from
            memorising small training sets, whose threshold would then flag
            most new inliers. These settings differ from
            :class:`AE`'s defaults (a PCA start and an ``"auto"`` budget with
            early stopping), which ranked anomalies worse and less stably
            across seeds on ADBench's tables (see the user guide). Scale the
            data first (e.g. with
            :class:`~sklearn.preprocessing.StandardScaler`) when features have
            different units.
        """,
        "score_type": """
        score_type : {"combined", "reconstruction", "density", "estimator", "ensemble"}, \
default={default}
            What :meth:`score_samples` measures (higher is more normal), with
            ``off`` and ``inside`` as defined in Notes:

            - ``"combined"``: ``-(off + inside)``;
            - ``"reconstruction"``: ``-off``, the squared reconstruction error
              in units of the training residuals' robust scale;
            - ``"density"``: ``-inside``, the squared robust Mahalanobis
              distance of the code ``transform(x)`` per code unit;
            - ``"estimator"``: the inner estimator's own ``score_samples`` when
              it has one (the negative mean squared error, or binary
              cross-entropy, for :class:`AE`, :class:`SparseAE` and
              :class:`ConvAE`; the evidence lower bound for :class:`VAE`),
              else the negative mean squared error of
              ``inverse_transform(transform(X))``. This was the only score in
              skae 0.1;
            - ``"ensemble"``: ``combined`` and an
              :class:`~sklearn.ensemble.IsolationForest` fitted on the input
              (its defaults, seeded from ``random_state``), each calibrated on
              its training scores and combined by Fisher's method: the mean of
              the two log p-values ``log((1 + #{training scores <= s}) /
              (n + 1))`` (``n`` at most {ensemble_quantiles} cut points, see
              ``ensemble_grid_``), from ``log(1 / (n + 1))`` (more anomalous
              than every training row) to 0. Axis-parallel isolation finds the
              anomalies that a few features give away, which the autoencoder's
              distances may miss. It did not beat ``"combined"`` on the 17
              ADBench tables skae's defaults are measured on (see the user
              guide's anomaly detection page); with ``contamination="auto"`` it
              flags little beyond the far tail, so set a float there.
        """,
        "residual_scale": """
        residual_scale : {"global", "feature"}, default={default}
            How the reconstruction residuals are scaled in ``off``:

            - ``"global"``: one scale for all features, the square root of the
              median over the training rows of their mean squared residual;
            - ``"feature"``: each feature's robust residual scale,
              ``1.4826 * median(|x_j - xhat_j|)`` over the training rows, at
              least a tenth of the features' root mean square scale. Features
              the model reconstructs poorly weigh less, and those it
              reconstructs well weigh more (up to 100 times the others).

            The global scale suits features on a common scale (standardised
            tables, pixels); per-feature scales help when a few features are
            rare indicators (e.g. sparse binary features), and hurt on images,
            where they up-weight background pixels (see the user guide's
            benchmark).
        """,
        "contamination": """
        contamination : "auto" or float, default={default}
            The expected proportion of outliers in the training data; it sets
            :attr:`offset_`, on the training scores or on cross-fitted ones
            (see ``calibration``).

            - a float in (0, 0.5]: ``offset_`` is the ``contamination``
              quantile of the training scores, so that fraction of the training
              samples is flagged (ties aside), as in
              :class:`~sklearn.ensemble.IsolationForest`;
            - ``"auto"``: ``offset_ = median - 3.5 * 1.4826 * lower_MAD``,
              where ``median`` is the median training score and ``lower_MAD``
              the median of ``median - score`` over the training scores below
              it: the 3.5 cut-off of Iglewicz and Hoaglin's robust (modified)
              z-score, with the spread measured on the low-score side, where
              outliers lie, because distances are right-skewed. The rule adapts
              to the data: gross outliers in the training set are flagged
              however many they are (up to about a tenth of the data, they
              shift the median and the MAD little), and on clean data only the
              far tail is flagged.
        """,
        "calibration": """
        calibration : {"auto", "cross-fit", "training"}, default={default}
            Which scores ``contamination`` sets :attr:`offset_` on:

            - ``"training"``: the training rows' scores. An autoencoder
              reconstructs its training rows better than new rows, the more
              so the fewer they are, so on small training sets this threshold
              flags more new inliers than ``contamination`` says (16 % on
              average, up to 25 % per data set, at ``contamination=0.1`` on
              150 rows; 11 % cross-fitted: see the user guide);
            - ``"cross-fit"``: cross-fitted scores. The rows are split into
              {calibration_folds} folds; each fold is scored by a detector with
              the same parameters trained on the other folds, as new rows
              are, in units of that detector's training scores (``(score -
              median) / lower_MAD``, with ``lower_MAD`` as for ``"auto"``
              below). ``contamination`` sets the threshold on these pooled
              units, and ``offset_`` is that many units of the final
              detector's training scores from their median. The fold
              detectors are then discarded: it costs {calibration_folds} more,
              smaller, fits;
            - ``"auto"``: ``"cross-fit"`` from {calibration_min_rows} to
              {calibration_max_rows} training rows, else ``"training"``. Above
              {calibration_max_rows} rows, a float ``contamination`` flags
              exactly that fraction of the training rows (ties aside), as
              scikit-learn's detectors do; cross-fitted, it flags about that
              fraction of *new* inliers instead.
        """,
        "random_state": """
        random_state : int, RandomState instance or None, default={default}
            Seeds the inner estimator when it has a ``random_state`` parameter
            that is left to ``None``: it is set to an integer drawn from
            ``random_state``, so an int makes fits reproducible. A
            ``random_state`` set on the inner estimator itself takes precedence.
            Global random states are never changed.
        """,
    }

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "transform", "inverse_transform"]), None],
        "score_type": [StrOptions(set(SCORES))],
        "residual_scale": [StrOptions({"global", "feature"})],
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "calibration": [StrOptions({"auto", "cross-fit", "training"})],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        estimator=None,
        *,
        score_type="combined",
        residual_scale="global",
        contamination="auto",
        calibration="auto",
        random_state=None,
    ):
        self.estimator = estimator
        self.score_type = score_type
        self.residual_scale = residual_scale
        self.contamination = contamination
        self.calibration = calibration
        self.random_state = random_state

    def _make_estimator(self, n_samples, n_features, seed):
        if self.estimator is None:
            estimator = default_estimator(n_samples, n_features)
        else:
            estimator = clone(self.estimator)
        params = estimator.get_params(deep=False)
        if seed is not None and "random_state" in params and params["random_state"] is None:
            estimator.set_params(random_state=seed)
        return estimator

    def _cross_fits(self, n_samples):
        if self.calibration == "auto":
            return CALIBRATION_MIN_ROWS <= n_samples <= CALIBRATION_MAX_ROWS
        return self.calibration == "cross-fit" and n_samples >= CALIBRATION_FOLDS

    def _cross_fitted_threshold(self, X, seed):
        """The threshold in robust units of the training scores, learned by cross-fitting.

        Each fold of ``X`` is scored by a detector trained on the other folds,
        in units of that detector's own training scores, ``(score - median) /
        lower_MAD``; returns the threshold that ``contamination`` sets on
        these pooled held-out units.
        """
        rng = np.random.default_rng(seed if seed is not None else make_seed(None))
        folds = KFold(CALIBRATION_FOLDS, shuffle=True, random_state=int(rng.integers(2**31 - 1)))
        units = np.empty(X.shape[0])
        for train, test in folds.split(X):
            detector = clone(self).set_params(
                calibration="training", random_state=int(rng.integers(2**31 - 1))
            )
            with warnings.catch_warnings():
                # the detector trained on all rows warns about the scores, once
                warnings.simplefilter("ignore", UserWarning)
                detector.fit(X[train])
            median, spread = _location_spread(detector._score_samples(X[train]))
            units[test] = (detector._score_samples(X[test]) - median) / spread
        return self._threshold(units)

    def _threshold(self, scores):
        """The threshold that ``contamination`` sets on ``scores``."""
        if self.contamination == "auto":
            median, lower_mad = _location_spread(scores, floor=False)
            return float(median - AUTO_N_MAD * MAD_TO_STD * lower_mad)
        return float(np.percentile(scores, 100.0 * self.contamination))

    def _validate(self, X, reset):
        return validate_data(self, X, reset=reset, dtype=[np.float64, np.float32])

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit the inner autoencoder, the robust scales and the threshold :attr:`offset_`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, possibly contaminated by outliers.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The fitted detector.

        Examples
        --------
        >>> import numpy as np
        >>> from skae import AE, AEOutlierDetector
        >>> X = np.random.RandomState(0).normal(size=(200, 8))
        >>> detector = AEOutlierDetector(AE(n_components=2, max_epochs=3),
        ...                              random_state=0).fit(X)
        >>> detector.residual_scale_.shape, detector.code_whitening_.shape
        ((8,), (2, 2))
        """
        X = self._validate(X, reset=True)
        # one draw from random_state: the inner estimator's seed, and the cross-fit's
        seed = None if self.random_state is None else make_seed(self.random_state)
        self.estimator_ = self._make_estimator(*X.shape, seed).fit(X)
        self._inference_cache = None  # created on first use, from _scoring_module()
        X64 = np.asarray(X, dtype=np.float64)
        codes, reconstruction = self._encode_decode(X64)
        self.residual_scale_ = robust_scale(X64 - reconstruction, self.residual_scale)
        self.code_location_, self.code_whitening_ = robust_gaussian(codes)
        if self.score_type == "ensemble":
            iforest_seed = None
            if seed is not None:
                iforest_seed = int(np.random.default_rng([seed, 1]).integers(2**31 - 1))
            self.isolation_forest_ = IsolationForest(random_state=iforest_seed).fit(X)
            self.ensemble_grid_ = np.stack([quantile_grid(p) for p in self._ensemble_parts(X64)])
        scores = self._score_samples(X64)
        median, lower_mad = _location_spread(scores, floor=False)
        if self._cross_fits(X.shape[0]):
            units = self._cross_fitted_threshold(X, seed)
            self.offset_ = float(median + units * _location_spread(scores, floor=True)[1])
        else:
            self.offset_ = self._threshold(scores)
        if not lower_mad > NO_SPREAD * (1.0 + abs(median)):
            warnings.warn(
                "The training scores of AEOutlierDetector have no spread below their median "
                f"(lower MAD {lower_mad:.3g}): the detector cannot tell the training rows "
                "apart, e.g. because many rows are identical or constant, or because the inner "
                "autoencoder reconstructs them exactly. Check the data (duplicates, constant "
                "features), use a narrower code (n_components), or set a float contamination.",
                UserWarning,
                stacklevel=3,  # the caller of fit (through sklearn's _fit_context)
            )
        return self

    def _encode_decode(self, X):
        """Codes and reconstructions of float64 ``X``, as 2-d float64 arrays."""
        estimator = self.estimator_
        codes = np.asarray(estimator.transform(X), dtype=np.float64)
        reconstruction = np.asarray(estimator.inverse_transform(codes), dtype=np.float64)
        return codes.reshape(X.shape[0], -1), reconstruction.reshape(X.shape)

    def _scoring_module(self):
        """The fitted detector's :meth:`score_samples` as a torch module.

        It maps a batch tensor of shape (n, `n_features_in_`) to the scores,
        of shape (n,), before the offset; every fitted array is a parameter
        or a buffer of it, so ``.to(dtype)`` converts the whole computation.
        :meth:`score_samples` runs exactly this module (a float64 copy of
        it for float64 input) and :func:`skae.to_onnx` exports it. It is in
        the inner estimator's (float32) dtype, on its device, and shares the
        inner estimator's module: a :class:`DistanceScore` for the distance
        scores, the inner estimator's own per-batch score for
        ``score_type="estimator"``. For ``score_type="ensemble"`` it is the
        autoencoder's part (``combined``); the isolation forest and the
        p-values are computed beside it (and exported through skl2onnx).

        Raises
        ------
        TypeError
            If the inner estimator is not a skae estimator (it then has no
            torch module; :meth:`score_samples` scores it with numpy).
        """
        check_is_fitted(self)
        estimator = self.estimator_
        if not isinstance(estimator, BaseAutoencoder):
            raise TypeError(
                f"{type(estimator).__name__} is not a skae estimator, so the detector "
                "has no torch scoring module (it is scored with numpy, and cannot be "
                "exported to ONNX)."
            )
        if self.score_type == "estimator":
            return scorer(estimator)
        module = estimator.net_.module_
        param = next(iter(module.parameters()))

        def buffer(array):
            return torch.as_tensor(np.asarray(array), dtype=param.dtype, device=param.device)

        return DistanceScore(
            module,
            buffer(1.0 / self.residual_scale_),
            buffer(self.code_location_),
            buffer(self.code_whitening_),
            off=self._off,
            inside=self._inside,
        )

    @property
    def _off(self):
        return self.score_type in ("combined", "reconstruction", "ensemble")

    @property
    def _inside(self):
        return self.score_type in ("combined", "density", "ensemble")

    def _score_with_module(self, X):
        # The cache is None after fit (which scores the training set); it is
        # rebuilt for another module once the inner estimator was refitted or
        # loaded on its own.
        cache = current_cache(self, self.estimator_.net_.module_, self._scoring_module)
        return cache.run(forward, X, 1)[:, 0]

    def _score_samples(self, X):
        """Scores of validated ``X`` (float32 or float64), as float64."""
        if self.score_type == "ensemble":
            parts = zip(self.ensemble_grid_, self._ensemble_parts(X))
            return np.mean([log_p_value(grid, part) for grid, part in parts], axis=0)
        return self._model_scores(X)

    def _ensemble_parts(self, X):
        """The parts of ``score_type="ensemble"``: ``combined``, and the isolation forest's."""
        return self._model_scores(X), self.isolation_forest_.score_samples(X)

    def _model_scores(self, X):
        """The autoencoder's scores (``combined`` for the ensemble), as float64."""
        if isinstance(self.estimator_, BaseAutoencoder):
            scores = self._score_with_module(X)
        elif self.score_type == "estimator":
            if hasattr(self.estimator_, "score_samples"):
                scores = self.estimator_.score_samples(X)
            else:
                scores = -self._squared_errors(X).mean(axis=1)
        else:  # numpy, for estimators without a torch module: DistanceScore's formulas
            # (tests/test_outlier.py checks that the two paths agree to rounding)
            X = np.asarray(X, dtype=np.float64)
            codes, reconstruction = self._encode_decode(X)
            scores = np.zeros(X.shape[0])
            if self._off:
                scores -= np.square((X - reconstruction) / self.residual_scale_).mean(axis=1)
            if self._inside:
                whitened = (codes - self.code_location_) @ self.code_whitening_
                scores -= np.square(whitened).mean(axis=1)
        return np.asarray(scores, dtype=np.float64).reshape(X.shape[0])

    def score_samples(self, X):
        """Normality score (higher is more normal): see the ``score_type`` parameter.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            The scores, as float64 (computed in the input's dtype); the lower,
            the more abnormal.

        Examples
        --------
        >>> import numpy as np
        >>> from skae import AE, AEOutlierDetector
        >>> X = np.random.RandomState(0).normal(size=(200, 8))
        >>> detector = AEOutlierDetector(AE(n_components=2, max_epochs=3),
        ...                              random_state=0).fit(X)
        >>> detector.score_samples(X[:4]).shape
        (4,)
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        return self._score_samples(X)

    def decision_function(self, X):
        """Shifted score, ``score_samples(X) - offset_``: negative for outliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Negative for outliers, non-negative for inliers.

        Examples
        --------
        >>> import numpy as np
        >>> from skae import AE, AEOutlierDetector
        >>> X = np.random.RandomState(0).normal(size=(200, 8))
        >>> detector = AEOutlierDetector(AE(n_components=2, max_epochs=3),
        ...                              random_state=0).fit(X)
        >>> scores = detector.decision_function(X[:4])
        >>> bool(np.allclose(scores, detector.score_samples(X[:4]) - detector.offset_))
        True
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """Predict whether each sample is an inlier (+1) or an outlier (-1).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to classify.

        Returns
        -------
        is_inlier : ndarray of shape (n_samples,)
            +1 where ``decision_function(X) >= 0``, -1 elsewhere.

        Examples
        --------
        >>> import numpy as np
        >>> from skae import AE, AEOutlierDetector
        >>> X = np.random.RandomState(0).normal(size=(200, 8))
        >>> detector = AEOutlierDetector(AE(n_components=2, max_epochs=3),
        ...                              random_state=0).fit(X)
        >>> labels = detector.predict(X)
        >>> labels.shape, set(labels.tolist()) <= {-1, 1}
        ((200,), True)
        """
        decision = self.decision_function(X)
        is_inlier = np.ones(decision.shape[0], dtype=int)
        is_inlier[decision < 0] = -1
        return is_inlier

    def _squared_errors(self, X):
        _, reconstruction = self._encode_decode(np.asarray(X, dtype=np.float64))
        return np.square(np.asarray(X, dtype=np.float64) - reconstruction)

    @validate_params(
        {"X": ["array-like"], "per_feature": ["boolean"]},
        prefer_skip_nested_validation=True,
    )
    def reconstruction_error(self, X, per_feature=False):
        """Squared error of ``inverse_transform(transform(X))``, per sample or per feature.

        Shows which features make a sample anomalous. The reconstruction is
        the deterministic one (for :class:`VAE`, the decoded posterior
        mean), in the space the detector sees (after any preprocessing in a
        pipeline). The errors are in the data's units; divided by
        ``residual_scale_ ** 2`` they are the terms whose mean is the
        ``"reconstruction"`` part of the score.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to reconstruct.
        per_feature : bool, default=False
            If True, return every feature's squared error; if False, their
            mean over features.

        Returns
        -------
        errors : ndarray of shape (n_samples,) or (n_samples, n_features)
            Per-sample mean squared error, or the squared errors feature by
            feature (whose row means are the per-sample errors).

        Examples
        --------
        >>> import numpy as np
        >>> from skae import AE, AEOutlierDetector
        >>> X = np.random.RandomState(0).normal(size=(200, 8))
        >>> detector = AEOutlierDetector(AE(n_components=2, max_epochs=3),
        ...                              random_state=0).fit(X)
        >>> detector.reconstruction_error(X[:3]).shape
        (3,)
        >>> detector.reconstruction_error(X[:3], per_feature=True).shape
        (3, 8)
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        errors = self._squared_errors(X)
        return errors if per_feature else errors.mean(axis=1)
