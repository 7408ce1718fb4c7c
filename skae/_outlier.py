"""Anomaly detection with an autoencoder's reconstruction error."""

from numbers import Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, OutlierMixin, _fit_context, clone
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions, validate_params
from sklearn.utils.validation import check_is_fitted, validate_data

from skae._ae import AE
from skae._base import BaseAutoencoder
from skae._inference import InferenceCache, forward, run_inference, scorer
from skae._utils import make_seed

#: ``contamination="auto"``: the offset is this many robust standard deviations
#: (scaled lower MAD) below the median training score: the 3.5 cut-off of
#: Iglewicz and Hoaglin's modified z-score.
AUTO_N_MAD = 3.5

#: Scales the median absolute deviation to a standard deviation under normality.
MAD_TO_STD = 1.4826

#: ``estimator=None``: an AE with this hidden layer, trained for DEFAULT_EPOCHS,
#: with a code of ``n_features // CODE_RATIO`` units, within 1..MAX_CODE.
DEFAULT_HIDDEN = (128,)
DEFAULT_EPOCHS = 50
CODE_RATIO = 4
MAX_CODE = 16


def default_estimator(n_features):
    """The autoencoder used when ``estimator=None``, for ``n_features`` inputs."""
    n_components = int(min(MAX_CODE, max(1, n_features // CODE_RATIO)))
    return AE(
        n_components=n_components, hidden_layer_sizes=DEFAULT_HIDDEN, max_epochs=DEFAULT_EPOCHS
    )


class AEOutlierDetector(OutlierMixin, BaseEstimator):
    """Outlier detection by the reconstruction error of an autoencoder.

    The wrapped estimator is trained on ``X`` to reconstruct it; samples it
    reconstructs badly are anomalous. The API follows
    :class:`~sklearn.ensemble.IsolationForest`: :meth:`score_samples` is
    higher for more normal samples, :meth:`decision_function` is
    ``score_samples(X) - offset_`` and is negative for outliers, and
    :meth:`predict` returns +1 for inliers and -1 for outliers.
    :meth:`reconstruction_error` shows which features make a sample
    anomalous.

    Parameters
    ----------
    estimator : estimator object, default=None
        The autoencoder to train: any skae estimator, or any estimator with
        ``fit``, ``transform`` and ``inverse_transform``. It is cloned, and
        the clone is fitted. ``None`` uses ``AE(n_components=k,
        hidden_layer_sizes=(128,), max_epochs=50)`` with
        ``k = n_features // 4`` clipped to 1..16: a code at least four times
        narrower than the input (so it cannot copy unusual inputs through)
        and of at most 16 units (wide enough to reconstruct the normal ones;
        16 for MNIST and the 8x8 digits). 50 epochs, rather than the AE's
        ``"auto"`` budget, because an autoencoder trained longer memorises
        its training rows: the threshold set on their scores then flags
        many more new inliers. On MNIST it beats
        :class:`~sklearn.ensemble.IsolationForest` (see the user guide's
        benchmark). Scale the data first (e.g. with
        :class:`~sklearn.preprocessing.StandardScaler`) when features have
        different units.

    contamination : "auto" or float, default="auto"
        The expected proportion of outliers in the training data; it sets
        :attr:`offset_`.

        - a float in (0, 0.5]: ``offset_`` is the ``contamination``
          quantile of the training scores, so that fraction of the training
          samples is flagged (ties aside), as in
          :class:`~sklearn.ensemble.IsolationForest`;
        - ``"auto"``: ``offset_ = median - 3.5 * 1.4826 * lower_MAD``,
          where ``median`` is the median training score and ``lower_MAD``
          the median of ``median - score`` over the training scores below
          it: the 3.5 cut-off of Iglewicz and Hoaglin's robust (modified)
          z-score, with the spread measured on the low-score side, where
          outliers lie, because reconstruction errors are right-skewed. The
          rule adapts to the data: gross outliers in the training set are
          flagged however many they are (up to about a tenth of the data,
          they shift the median and the MAD little), and on clean data only
          the far tail is flagged, typically 0 to 5 percent.

    random_state : int, RandomState instance or None, default=None
        Seeds the inner estimator when it has a ``random_state`` parameter
        that is left to ``None``: it is set to an integer drawn from
        ``random_state``, so an int makes fits reproducible. A
        ``random_state`` set on the inner estimator itself takes precedence.
        Global random states are never changed.

    Attributes
    ----------
    estimator_ : estimator object
        The fitted clone of ``estimator`` (or of the default autoencoder).

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
    AE : The default inner estimator.
    VAE : Scores samples by their evidence lower bound.

    Notes
    -----
    :meth:`score_samples` is the inner estimator's own ``score_samples``
    when it has one: the negative per-sample reconstruction error (mean
    squared error, or binary cross-entropy for ``loss="bce"``) for
    :class:`AE`, :class:`SparseAE` and :class:`ConvAE`, and the evidence
    lower bound for :class:`VAE` (computed with fixed draws, so it is
    deterministic). Other estimators are scored by the negative mean squared
    error of ``inverse_transform(transform(X))``. Every score is
    deterministic: training noise is never applied at inference.

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

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "transform", "inverse_transform"]), None],
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "random_state": ["random_state"],
    }

    def __init__(self, estimator=None, *, contamination="auto", random_state=None):
        self.estimator = estimator
        self.contamination = contamination
        self.random_state = random_state

    def _make_estimator(self, n_features):
        if self.estimator is None:
            estimator = default_estimator(n_features)
        else:
            estimator = clone(self.estimator)
        params = estimator.get_params(deep=False)
        if (
            self.random_state is not None
            and "random_state" in params
            and params["random_state"] is None
        ):
            estimator.set_params(random_state=make_seed(self.random_state))
        return estimator

    def _validate(self, X, reset):
        return validate_data(self, X, reset=reset, dtype=[np.float64, np.float32])

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit the inner autoencoder and set the threshold :attr:`offset_`.

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
        >>> bool(detector.offset_ < 0)
        True
        """
        X = self._validate(X, reset=True)
        self.estimator_ = self._make_estimator(X.shape[1]).fit(X)
        self._inference_cache = None  # created on first use, from _scoring_module()
        scores = self._score_samples(X)
        if self.contamination == "auto":
            median = np.median(scores)
            lower_mad = np.median(median - scores[scores <= median])
            self.offset_ = float(median - AUTO_N_MAD * MAD_TO_STD * lower_mad)
        else:
            self.offset_ = float(np.percentile(scores, 100.0 * self.contamination))
        return self

    def _squared_errors(self, X):
        estimator = self.estimator_
        reconstruction = np.asarray(estimator.inverse_transform(estimator.transform(X)))
        return np.square(np.asarray(X, dtype=np.float64) - reconstruction.reshape(X.shape))

    def _scoring_module(self):
        """The fitted detector's :meth:`score_samples` as a torch module.

        It maps a batch tensor of shape (n, `n_features_in_`) to the scores,
        of shape (n,), before the offset; every fitted array is a parameter
        or a buffer of it, so ``.to(dtype)`` converts the whole computation.
        :meth:`score_samples` runs exactly this module (a float64 copy of
        it for float64 input) and :func:`skae.to_onnx` exports it. It is in
        the inner estimator's (float32) dtype, on its device.

        Raises
        ------
        TypeError
            If the inner estimator is not a skae estimator (it then has no
            torch module; :meth:`score_samples` scores it with numpy).
        """
        check_is_fitted(self)
        if not isinstance(self.estimator_, BaseAutoencoder):
            raise TypeError(
                f"{type(self.estimator_).__name__} is not a skae estimator, so the detector "
                "has no torch scoring module (it is scored with numpy, and cannot be "
                "exported to ONNX)."
            )
        return scorer(self.estimator_)

    def _score_with_module(self, X):
        cache = self.__dict__.get("_inference_cache")
        # None after fit (which scores the training set) or unpickling; another
        # module once the inner estimator was refitted or loaded on its own.
        if cache is None or cache.module.module is not self.estimator_.net_.module_:
            cache = self._inference_cache = InferenceCache(self._scoring_module())
        module = cache.get(torch.float64 if X.dtype == np.float64 else torch.float32)
        return run_inference(module, forward, X, 1, cache.device)[:, 0]

    def _score_samples(self, X):
        if isinstance(self.estimator_, BaseAutoencoder):
            scores = self._score_with_module(X)
        elif hasattr(self.estimator_, "score_samples"):
            scores = self.estimator_.score_samples(X)
        else:
            scores = -self._squared_errors(X).mean(axis=1)
        return np.asarray(scores, dtype=np.float64).reshape(X.shape[0])

    def score_samples(self, X):
        """Normality score: the negative reconstruction error (higher is more normal).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            The inner estimator's ``score_samples`` (see Notes); the lower,
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

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_inference_cache", None)  # module copies: rebuilt on use
        return state

    @validate_params(
        {"X": ["array-like"], "per_feature": ["boolean"]},
        prefer_skip_nested_validation=True,
    )
    def reconstruction_error(self, X, per_feature=False):
        """Squared error of ``inverse_transform(transform(X))``, per sample or per feature.

        Shows which features make a sample anomalous. The reconstruction is
        the deterministic one (for :class:`VAE`, the decoded posterior
        mean), in the space the detector sees (after any preprocessing in a
        pipeline).

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
