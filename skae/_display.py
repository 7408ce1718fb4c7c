"""Pictures of fitted skae models: scikit-learn style ``Display`` objects.

They follow scikit-learn's plotting API (its developer guide, "Developing
with the Plotting API"): ``from_estimator`` (and ``from_predictions`` where
it fits) computes what is drawn, builds the display and calls ``plot``;
``plot(ax=None, **kwargs)`` draws on ``ax`` (a new figure when ``None``),
passes ``kwargs`` to the main matplotlib call, keeps ``ax_``, ``figure_``
and the artists drawn, and returns the display.

matplotlib is optional: it is imported inside ``plot`` and
``from_estimator`` only, so ``import skae`` never imports it, and a display
used without it raises ``ImportError`` with the install command.
"""

from numbers import Integral

import numpy as np
from sklearn.decomposition import PCA
from sklearn.utils import _safe_indexing, check_consistent_length
from sklearn.utils.validation import check_is_fitted

from skae._base import BaseAutoencoder
from skae._outlier import AEOutlierDetector

#: How to install the optional dependency of the displays.
PLOT_HINT = 'Install it with: pip install "skae[plot]".'

#: Feature names are written under the bars up to this many features.
MAX_TICK_LABELS = 30

#: Integer labels with at most this many distinct values are classes (a legend);
#: more are a continuous quantity (a colour bar).
MAX_CLASSES = 20


def _pyplot(caller):
    """``matplotlib.pyplot``, imported on first use; ImportError with the hint if absent."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(f"{caller} needs matplotlib. {PLOT_HINT}") from exc
    return plt


def _inner(estimator):
    """The fitted autoencoder of ``estimator``: itself, or a detector's ``estimator_``."""
    check_is_fitted(estimator)
    return estimator.estimator_ if isinstance(estimator, AEOutlierDetector) else estimator


def _feature_names(estimator, n_features):
    names = getattr(estimator, "feature_names_in_", None)
    return list(names) if names is not None else [f"x{j}" for j in range(n_features)]


def _label_features(ax, names, n_features):
    """Feature names (or numbers) under the bars, when there are few enough features."""
    names = names if names is not None else range(n_features)
    if len(names) <= MAX_TICK_LABELS:
        ax.set_xticks(np.arange(len(names)), [str(n) for n in names], rotation=90)
    ax.set_xlabel("feature")


class _Display:
    """What every display's ``plot`` does first: the matplotlib import and the Axes."""

    def _start(self, ax, figsize=None):
        plt = _pyplot(f"{type(self).__name__}.plot")
        if ax is None:
            _, ax = plt.subplots(figsize=figsize, layout="constrained")
        self.ax_, self.figure_ = ax, ax.figure
        return ax

    def _title(self, text):
        name = getattr(self, "estimator_name", None)
        self.ax_.set_title(f"{name}: {text}" if name else text[0].upper() + text[1:])


# -- reconstructions ----------------------------------------------------------


def _image_shape(image_shape, n_features):
    """``image_shape`` as ``(channels, height, width)``; ValueError if it does not fit."""
    shape = tuple(image_shape) if np.iterable(image_shape) else ()
    if len(shape) == 2:
        shape = (1, *shape)
    valid = len(shape) == 3 and all(isinstance(s, Integral) and s >= 1 for s in shape)
    if not valid or shape[0] not in (1, 3, 4):
        raise ValueError(
            "image_shape must be (height, width) or (channels, height, width) with 1, 3 or 4 "
            f"channels (channels first, as ConvAE's input_shape), got {image_shape!r}."
        )
    if np.prod(shape) != n_features:
        raise ValueError(
            f"image_shape={tuple(image_shape)} holds {int(np.prod(shape))} values per row, but "
            f"the rows have {n_features} features."
        )
    return tuple(int(s) for s in shape)


def _check_n_samples(n_samples):
    if not isinstance(n_samples, Integral) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
    return n_samples


def _estimator_image_shape(estimator):
    """A ConvAE's ``input_shape`` when it is an image's (1, 3 or 4 channels), else None."""
    shape = getattr(estimator, "input_shape", None)
    is_image = shape is not None and len(shape) == 3 and shape[0] in (1, 3, 4)
    return tuple(shape) if is_image else None


class ReconstructionDisplay(_Display):
    """Rows beside their reconstructions by an autoencoder.

    For images, a grid of the originals (top row) over their
    reconstructions (bottom row); for tables, the reconstruction error of
    each feature, or the reconstructed values against the true ones. Build
    it with :meth:`from_estimator` (or :meth:`from_predictions`) rather than
    directly.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The original rows.
    X_reconstructed : ndarray of shape (n_samples, n_features)
        Their reconstructions, ``inverse_transform(transform(X))``.
    image_shape : tuple of int, default=None
        The shape of an image row, ``(height, width)`` or, as
        :class:`ConvAE`'s ``input_shape``, channels first ``(channels,
        height, width)`` with 1, 3 or 4 channels. ``None`` for tables.
    feature_names : list of str, default=None
        Names of the features, for the axis of ``kind="feature_error"``.
    estimator_name : str, default=None
        Name of the estimator, for the title.

    Attributes
    ----------
    images_ : ndarray of matplotlib AxesImage of shape (2, n_shown) or None
        ``kind="images"``: the originals (first row) and reconstructions.
    bars_ : matplotlib BarContainer or None
        ``kind="feature_error"``: one bar per feature.
    scatter_ : matplotlib PathCollection or None
        ``kind="actual_vs_reconstructed"``: one point per value.
    line_ : matplotlib Line2D or None
        ``kind="actual_vs_reconstructed"``: the diagonal, a perfect
        reconstruction.
    ax_ : matplotlib Axes
        The Axes drawn on.
    figure_ : matplotlib Figure
        The figure of ``ax_``.

    See Also
    --------
    LatentSpaceDisplay : The codes of the rows.
    AnomalyScoreDisplay : Anomaly scores and per-feature contributions.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AE, ReconstructionDisplay
    >>> X = load_digits().data[:200] / 16
    >>> ae = AE(n_components=4, max_epochs=2, random_state=0).fit(X)
    >>> display = ReconstructionDisplay.from_estimator(ae, X, image_shape=(8, 8))
    >>> display.images_.shape
    (2, 10)
    """

    _KINDS = ("auto", "images", "feature_error", "actual_vs_reconstructed")

    def __init__(
        self, X, X_reconstructed, *, image_shape=None, feature_names=None, estimator_name=None
    ):
        self.X = X
        self.X_reconstructed = X_reconstructed
        self.image_shape = image_shape
        self.feature_names = feature_names
        self.estimator_name = estimator_name

    @classmethod
    def _kind(cls, kind, image_shape):
        if kind not in cls._KINDS:
            raise ValueError(f"kind must be one of {cls._KINDS}, got {kind!r}.")
        if kind == "auto":
            return "images" if image_shape is not None else "feature_error"
        if kind == "images" and image_shape is None:
            raise ValueError("kind='images' needs image_shape (or a ConvAE with images).")
        return kind

    @classmethod
    def from_estimator(
        cls, estimator, X, *, n_samples=10, image_shape=None, kind="auto", ax=None, **kwargs
    ):
        """Reconstruct rows of ``X`` with a fitted autoencoder and draw them.

        Parameters
        ----------
        estimator : estimator object
            A fitted estimator with ``transform`` and ``inverse_transform``
            (any skae autoencoder, a pipeline of them, PCA, ...), or a fitted
            :class:`AEOutlierDetector` (its ``estimator_`` is used).
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The rows to reconstruct.
        n_samples : int, default=10
            ``kind="images"``: how many rows to draw, the first ones of
            ``X`` (only those are reconstructed). The other kinds use every
            row.
        image_shape : tuple of int, default=None
            ``(height, width)`` or ``(channels, height, width)``; ``None``
            takes a :class:`ConvAE`'s ``input_shape`` when it is an image's.
        kind : {"auto", "images", "feature_error", "actual_vs_reconstructed"}, \
default="auto"
            What to draw (``"auto"``: images when there is an image shape,
            else the per-feature error):

            - ``"images"``: the originals over their reconstructions;
            - ``"feature_error"``: each feature's mean squared
              reconstruction error over the rows, as bars;
            - ``"actual_vs_reconstructed"``: every reconstructed value
              against its true value, with the diagonal.
        ax : matplotlib Axes, default=None
            Axes to draw on; ``None`` creates a figure.
        **kwargs : dict
            Passed to matplotlib's ``imshow``, ``bar`` or ``scatter``.

        Returns
        -------
        display : ReconstructionDisplay
            The display, drawn.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skae import AE, ReconstructionDisplay
        >>> X = load_digits().data[:200] / 16
        >>> ae = AE(n_components=4, max_epochs=2, random_state=0).fit(X)
        >>> display = ReconstructionDisplay.from_estimator(ae, X)  # a table: errors
        >>> len(display.bars_)
        64
        """
        _pyplot(f"{cls.__name__}.from_estimator")
        inner = _inner(estimator)
        if image_shape is None:
            image_shape = _estimator_image_shape(inner)
        kind = cls._kind(kind, image_shape)
        if kind == "images":
            X = _safe_indexing(X, slice(0, _check_n_samples(n_samples)))
        reconstructed = inner.inverse_transform(inner.transform(X))
        X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
        return cls(
            X,
            np.asarray(reconstructed),
            image_shape=image_shape,
            feature_names=_feature_names(inner, X.shape[1]),
            estimator_name=type(estimator).__name__,
        ).plot(ax=ax, kind=kind, n_samples=n_samples, **kwargs)

    @classmethod
    def from_predictions(
        cls,
        X,
        X_reconstructed,
        *,
        n_samples=10,
        image_shape=None,
        kind="auto",
        estimator_name=None,
        ax=None,
        **kwargs,
    ):
        """Draw rows beside reconstructions computed beforehand.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The original rows.
        X_reconstructed : array-like of shape (n_samples, n_features)
            Their reconstructions (or any images to compare with them, e.g.
            denoised rows).
        n_samples : int, default=10
            ``kind="images"``: how many rows to draw, the first ones.
        image_shape : tuple of int, default=None
            ``(height, width)`` or ``(channels, height, width)``.
        kind : {"auto", "images", "feature_error", "actual_vs_reconstructed"}, \
default="auto"
            What to draw, as in :meth:`from_estimator`.
        estimator_name : str, default=None
            Name of the model, for the title.
        ax : matplotlib Axes, default=None
            Axes to draw on; ``None`` creates a figure.
        **kwargs : dict
            Passed to matplotlib's ``imshow``, ``bar`` or ``scatter``.

        Returns
        -------
        display : ReconstructionDisplay
            The display, drawn.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from sklearn.decomposition import PCA
        >>> from skae import ReconstructionDisplay
        >>> X = load_digits().data / 16
        >>> pca = PCA(n_components=8).fit(X)
        >>> display = ReconstructionDisplay.from_predictions(
        ...     X, pca.inverse_transform(pca.transform(X)), image_shape=(8, 8),
        ...     estimator_name="PCA")
        >>> display.images_.shape
        (2, 10)
        """
        _pyplot(f"{cls.__name__}.from_predictions")
        names = list(X.columns) if hasattr(X, "columns") else None
        X, X_reconstructed = np.asarray(X), np.asarray(X_reconstructed)
        return cls(
            X,
            X_reconstructed,
            image_shape=image_shape,
            feature_names=names,
            estimator_name=estimator_name,
        ).plot(ax=ax, kind=cls._kind(kind, image_shape), n_samples=n_samples, **kwargs)

    def plot(self, ax=None, *, kind="auto", n_samples=10, **kwargs):
        """Draw the rows and their reconstructions.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; ``None`` creates a figure.
        kind : {"auto", "images", "feature_error", "actual_vs_reconstructed"}, \
default="auto"
            What to draw, as in :meth:`from_estimator`.
        n_samples : int, default=10
            ``kind="images"``: how many rows to draw, the first ones.
        **kwargs : dict
            Passed to matplotlib's ``imshow``, ``bar`` or ``scatter``.

        Returns
        -------
        display : ReconstructionDisplay
            The display, with ``ax_``, ``figure_`` and the artists drawn.

        Examples
        --------
        >>> import numpy as np
        >>> from skae import ReconstructionDisplay
        >>> X = np.random.RandomState(0).rand(20, 6)
        >>> display = ReconstructionDisplay(X, 0.9 * X)
        >>> display = display.plot(kind="actual_vs_reconstructed", alpha=0.5)
        >>> display.scatter_.get_offsets().shape
        (120, 2)
        """
        X, X_reconstructed = np.asarray(self.X), np.asarray(self.X_reconstructed)
        if X.ndim != 2 or X.shape != X_reconstructed.shape:
            raise ValueError(
                "X and X_reconstructed must be 2-D arrays of one shape, got shapes "
                f"{X.shape} and {X_reconstructed.shape}."
            )
        kind = self._kind(kind, self.image_shape)
        figsize = None
        if kind == "images":
            shape = _image_shape(self.image_shape, X.shape[1])
            n_shown = min(_check_n_samples(n_samples), len(X))
            figsize = (1.5 + 0.75 * n_shown * shape[2] / shape[1], 2.3)
        ax = self._start(ax, figsize)
        self.images_ = self.bars_ = self.scatter_ = self.line_ = None
        if kind == "images":
            self._plot_images(ax, X[:n_samples], X_reconstructed[:n_samples], shape, kwargs)
            self._title("originals and reconstructions")
        elif kind == "feature_error":
            error = np.mean(np.square(X - X_reconstructed), axis=0)
            self.bars_ = ax.bar(np.arange(X.shape[1]), error, **kwargs)
            _label_features(ax, self.feature_names, X.shape[1])
            ax.set_ylabel("mean squared error")
            self._title(f"reconstruction error per feature ({len(X)} rows)")
        else:
            self.scatter_ = ax.scatter(
                X.ravel(), X_reconstructed.ravel(), **{"s": 8, "alpha": 0.4, **kwargs}
            )
            low, high = float(np.min(X)), float(np.max(X))
            (self.line_,) = ax.plot([low, high], [low, high], "k--", lw=1)
            ax.set_xlabel("true value")
            ax.set_ylabel("reconstructed value")
            self._title("reconstructed against true values")
        return self

    def _plot_images(self, ax, originals, reconstructions, shape, kwargs):
        """One AxesImage per row and image, tiled on ``ax`` with a gap between them."""
        channels, height, width = shape
        gap = max(height, width) / 8
        low, high = float(np.min(originals)), float(np.max(originals))
        high = high if high > low else low + 1.0
        style = {"cmap": "gray_r", "vmin": low, "vmax": high, "interpolation": "nearest", **kwargs}
        images = np.empty((2, len(originals)), dtype=object)
        for r, rows in enumerate((originals, reconstructions)):
            for c, row in enumerate(rows):
                image = row.reshape(shape)
                if channels == 1:
                    image = image[0]
                else:  # RGB(A): channels last, scaled as the originals to [0, 1]
                    image = np.clip((np.moveaxis(image, 0, -1) - low) / (high - low), 0, 1)
                left, top = c * (width + gap), r * (height + gap)
                extent = (left, left + width, top + height, top)
                images[r, c] = ax.imshow(image, extent=extent, **style)
        ax.set_xlim(-gap / 2, len(originals) * (width + gap) - gap / 2)
        ax.set_ylim(2 * height + 1.5 * gap, -gap / 2)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([height / 2, 1.5 * height + gap], ["original", "reconstructed"])
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        self.images_ = images


# -- the latent space ---------------------------------------------------------


def _colours(labels):
    """``scatter``'s colour arguments for ``labels``, and the classes (None if numeric).

    Floats, and integers with more than :data:`MAX_CLASSES` distinct values,
    are a quantity (a colour map); other labels are classes, one colour each.
    """
    import matplotlib

    classes, index = np.unique(labels, return_inverse=True)
    kind = labels.dtype.kind
    if kind in "fc" or (kind in "iu" and len(classes) > MAX_CLASSES):
        return {"c": labels, "cmap": "viridis"}, None
    if len(classes) > MAX_CLASSES:
        cmap = "turbo"
    else:
        palette = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"]
        cmap = matplotlib.colors.ListedColormap(palette.colors[: len(classes)])
    return {"c": index, "cmap": cmap, "vmin": -0.5, "vmax": len(classes) - 0.5}, classes


class LatentSpaceDisplay(_Display):
    """The codes of rows, as a scatter plot coloured by their labels.

    Codes of more than 2 dimensions are projected on their 2 leading
    principal components (a :class:`~sklearn.decomposition.PCA` fitted on
    the codes drawn), and the axis labels and title say so. Build it with
    :meth:`from_estimator` rather than directly.

    Parameters
    ----------
    embedding : ndarray of shape (n_samples, 2) or (n_samples, 1)
        The points drawn: the codes, or their projection.
    y : array-like of shape (n_samples,), default=None
        Labels colouring the points: classes (strings, booleans, or
        integers with at most 20 distinct values) get a legend, other
        numbers a colour bar.
    projection : PCA, default=None
        The fitted PCA that projected the codes to ``embedding``, or
        ``None`` when ``embedding`` holds the codes.
    estimator_name : str, default=None
        Name of the estimator, for the title.

    Attributes
    ----------
    scatter_ : matplotlib PathCollection
        The points, one per row (``scatter_.get_offsets()`` is the
        embedding; a 1-D code is drawn at height 0).
    colorbar_ : matplotlib Colorbar or None
        The colour bar of numeric, non-class labels.
    ax_ : matplotlib Axes
        The Axes drawn on.
    figure_ : matplotlib Figure
        The figure of ``ax_``.

    See Also
    --------
    ReconstructionDisplay : Rows beside their reconstructions.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AE, LatentSpaceDisplay
    >>> X, y = load_digits(return_X_y=True)
    >>> ae = AE(n_components=4, max_epochs=2, random_state=0).fit(X[:200] / 16)
    >>> display = LatentSpaceDisplay.from_estimator(ae, X[:200] / 16, y[:200])
    >>> display.embedding.shape
    (200, 2)
    >>> display.ax_.get_xlabel().startswith("PC 1 of the 4-d codes")
    True
    """

    def __init__(self, embedding, *, y=None, projection=None, estimator_name=None):
        self.embedding = embedding
        self.y = y
        self.projection = projection
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(cls, estimator, X, y=None, *, ax=None, **kwargs):
        """Encode ``X`` with a fitted autoencoder and draw the codes.

        Parameters
        ----------
        estimator : estimator object
            A fitted estimator with ``transform`` (any skae autoencoder, a
            pipeline ending with one, PCA, ...), or a fitted
            :class:`AEOutlierDetector` (its ``estimator_`` is used).
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The rows to encode.
        y : array-like of shape (n_samples,), default=None
            Labels colouring the points (see the class's ``y``).
        ax : matplotlib Axes, default=None
            Axes to draw on; ``None`` creates a figure.
        **kwargs : dict
            Passed to matplotlib's ``scatter``.

        Returns
        -------
        display : LatentSpaceDisplay
            The display, drawn.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skae import AE, LatentSpaceDisplay
        >>> X, y = load_digits(return_X_y=True)
        >>> ae = AE(n_components=2, max_epochs=2, random_state=0).fit(X[:200] / 16)
        >>> display = LatentSpaceDisplay.from_estimator(ae, X[:200] / 16, y[:200], s=5)
        >>> display.scatter_.get_offsets().shape
        (200, 2)
        """
        _pyplot(f"{cls.__name__}.from_estimator")
        codes = np.asarray(_inner(estimator).transform(X), dtype=np.float64)
        codes = codes.reshape(len(codes), -1)
        if y is not None:
            check_consistent_length(codes, y)
        projection = None
        if codes.shape[1] > 2:
            projection = PCA(n_components=2).fit(codes)
            codes = projection.transform(codes)
        return cls(codes, y=y, projection=projection, estimator_name=type(estimator).__name__).plot(
            ax=ax, **kwargs
        )

    def _axis_labels(self, n_dims):
        if self.projection is None:
            return ("code", None) if n_dims == 1 else ("code 1", "code 2")
        k, ratios = self.projection.n_features_in_, self.projection.explained_variance_ratio_
        return tuple(
            f"PC {i + 1} of the {k}-d codes ({ratio:.0%} of their variance)"
            for i, ratio in enumerate(ratios)
        )

    def plot(self, ax=None, **kwargs):
        """Draw the codes.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; ``None`` creates a figure.
        **kwargs : dict
            Passed to matplotlib's ``scatter`` (e.g. ``s``, ``alpha``,
            ``cmap``).

        Returns
        -------
        display : LatentSpaceDisplay
            The display, with ``ax_``, ``figure_`` and ``scatter_``.

        Examples
        --------
        >>> import numpy as np
        >>> from skae import LatentSpaceDisplay
        >>> codes = np.random.RandomState(0).normal(size=(50, 2))
        >>> display = LatentSpaceDisplay(codes, y=codes[:, 0] > 0).plot(marker="x")
        >>> len(display.ax_.get_legend().get_texts())
        2
        """
        embedding = np.asarray(self.embedding, dtype=np.float64)
        embedding = embedding.reshape(len(embedding), -1)
        if embedding.shape[1] not in (1, 2):
            raise ValueError(f"embedding must have 1 or 2 columns, got {embedding.shape[1]}.")
        ax = self._start(ax)
        x = embedding[:, 0]
        y_points = embedding[:, 1] if embedding.shape[1] == 2 else np.zeros(len(x))
        style, classes = {"s": 12, "alpha": 0.8}, None
        if self.y is not None:
            check_consistent_length(x, self.y)
            colours, classes = _colours(np.asarray(self.y))
            style.update(colours)
        self.scatter_ = ax.scatter(x, y_points, **{**style, **kwargs})
        self.colorbar_ = None
        if classes is not None and len(classes) <= MAX_CLASSES:
            handles, _ = self.scatter_.legend_elements(num=None)
            ax.legend(
                handles,
                [str(c) for c in classes],
                title="y",
                fontsize="small",
                loc="center left",
                bbox_to_anchor=(1.0, 0.5),
            )
        elif self.y is not None and classes is None:
            self.colorbar_ = self.figure_.colorbar(self.scatter_, ax=ax, label="y")
        xlabel, ylabel = self._axis_labels(embedding.shape[1])
        ax.set_xlabel(xlabel)
        if ylabel is None:
            ax.set_yticks([])
        else:
            ax.set_ylabel(ylabel)
        where = "" if self.projection is None else ", projected on 2 principal components"
        self._title(f"latent space{where}")
        return self


# -- training -----------------------------------------------------------------


def _learning_rates(estimator):
    """The per-epoch learning rates in the estimator's history, or None."""
    history = getattr(getattr(estimator, "net_", None), "history", None) or []
    rates = np.array([row.get("lr", np.nan) for row in history], dtype=float)
    return rates if np.isfinite(rates).any() else None


class TrainingCurveDisplay(_Display):
    """The training history of an autoencoder: losses, epoch kept and learning rate.

    The training loss of each epoch (``loss_curve_``), the validation loss
    (``-validation_scores_``, with early stopping), the epoch whose weights
    were kept (``best_epoch_``; 0 means the initial weights) and, on a
    second y axis, the learning rate of each epoch's last step. Build it
    with :meth:`from_estimator` rather than directly.

    Parameters
    ----------
    loss_curve : array-like of shape (n_epochs,)
        The training loss of each epoch.
    validation_scores : array-like of shape (n_valid_epochs,), default=None
        The negative validation loss of each epoch (skae's
        ``validation_scores_``); drawn as the validation loss.
    best_epoch : int, default=None
        The epoch kept, from 1 (0: the initial weights).
    learning_rate : array-like of shape (n_epochs,), default=None
        The learning rate of each epoch.
    estimator_name : str, default=None
        Name of the estimator, for the title.

    Attributes
    ----------
    loss_line_ : matplotlib Line2D
        The training loss.
    validation_line_ : matplotlib Line2D or None
        The validation loss.
    best_epoch_line_ : matplotlib Line2D or None
        A vertical line at the epoch kept.
    lr_line_ : matplotlib Line2D or None
        The learning rate, on ``ax_lr_``.
    ax_lr_ : matplotlib Axes or None
        The second y axis (``ax_.twinx()``) of the learning rate.
    ax_ : matplotlib Axes
        The Axes drawn on.
    figure_ : matplotlib Figure
        The figure of ``ax_``.

    See Also
    --------
    sklearn.model_selection.ValidationCurveDisplay : Scores against a
        parameter, e.g. ``n_components``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AE, TrainingCurveDisplay
    >>> X = load_digits().data[:200] / 16
    >>> ae = AE(n_components=4, max_epochs=3, early_stopping=False, random_state=0).fit(X)
    >>> display = TrainingCurveDisplay.from_estimator(ae)
    >>> display.loss_line_.get_ydata().shape
    (3,)
    """

    def __init__(
        self,
        loss_curve,
        *,
        validation_scores=None,
        best_epoch=None,
        learning_rate=None,
        estimator_name=None,
    ):
        self.loss_curve = loss_curve
        self.validation_scores = validation_scores
        self.best_epoch = best_epoch
        self.learning_rate = learning_rate
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, **kwargs):
        """Draw the training history of a fitted autoencoder.

        Parameters
        ----------
        estimator : estimator object
            A fitted skae autoencoder, or a fitted :class:`AEOutlierDetector`
            (the history of its ``estimator_`` is drawn).
        ax : matplotlib Axes, default=None
            Axes to draw on; ``None`` creates a figure.
        **kwargs : dict
            Passed to matplotlib's ``plot`` for the loss curves.

        Returns
        -------
        display : TrainingCurveDisplay
            The display, drawn.

        Examples
        --------
        >>> import numpy as np
        >>> from skae import AE, AEOutlierDetector, TrainingCurveDisplay
        >>> X = np.random.RandomState(0).normal(size=(200, 8))
        >>> detector = AEOutlierDetector(AE(n_components=2, max_epochs=3, early_stopping=False),
        ...                              random_state=0).fit(X)
        >>> display = TrainingCurveDisplay.from_estimator(detector)
        >>> display.lr_line_.get_ydata().shape
        (3,)
        """
        _pyplot(f"{cls.__name__}.from_estimator")
        inner = _inner(estimator)
        if not isinstance(inner, BaseAutoencoder):
            raise TypeError(
                f"{type(inner).__name__} is not a skae autoencoder: it has no training history "
                "to draw. Pass the fitted autoencoder (e.g. the step of a pipeline)."
            )
        return cls(
            inner.loss_curve_,
            validation_scores=getattr(inner, "validation_scores_", None),
            best_epoch=getattr(inner, "best_epoch_", None),
            learning_rate=_learning_rates(inner),
            estimator_name=type(estimator).__name__,
        ).plot(ax=ax, **kwargs)

    def plot(self, ax=None, **kwargs):
        """Draw the training history.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; ``None`` creates a figure.
        **kwargs : dict
            Passed to matplotlib's ``plot`` for the loss curves.

        Returns
        -------
        display : TrainingCurveDisplay
            The display, with ``ax_``, ``figure_`` and the lines.

        Examples
        --------
        >>> from skae import TrainingCurveDisplay
        >>> display = TrainingCurveDisplay([1.0, 0.6, 0.5], validation_scores=[-0.9, -0.7, -0.8],
        ...                                best_epoch=2).plot(marker="o")
        >>> display.validation_line_.get_ydata()
        array([0.9, 0.7, 0.8])
        """
        ax = self._start(ax)
        loss = np.asarray(self.loss_curve, dtype=float)
        (self.loss_line_,) = ax.plot(
            np.arange(1, len(loss) + 1), loss, **{"label": "training loss", **kwargs}
        )
        self.validation_line_ = self.best_epoch_line_ = self.lr_line_ = self.ax_lr_ = None
        if self.validation_scores is not None:
            valid = -np.asarray(self.validation_scores, dtype=float)
            (self.validation_line_,) = ax.plot(
                np.arange(1, len(valid) + 1), valid, **{"label": "validation loss", **kwargs}
            )
        if self.best_epoch is not None:
            label = f"epoch kept ({self.best_epoch}{': initial weights' * (self.best_epoch == 0)})"
            self.best_epoch_line_ = ax.axvline(
                self.best_epoch, color="k", linestyle="--", lw=1, label=label
            )
        lines = [line for line in (self.loss_line_, self.validation_line_) if line is not None]
        lines += [self.best_epoch_line_] if self.best_epoch_line_ is not None else []
        if self.learning_rate is not None:
            rate = np.asarray(self.learning_rate, dtype=float)
            self.ax_lr_ = ax.twinx()
            (self.lr_line_,) = self.ax_lr_.plot(
                np.arange(1, len(rate) + 1), rate, color="0.5", linestyle=":", label="learning rate"
            )
            self.ax_lr_.set_ylabel("learning rate")
            self.ax_lr_.set_ylim(bottom=0)
            lines.append(self.lr_line_)
        ax.legend(lines, [line.get_label() for line in lines], fontsize="small")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        self._title("training curve")
        return self


# -- anomaly scores -----------------------------------------------------------


class AnomalyScoreDisplay(_Display):
    """Anomaly scores with the threshold, and what makes chosen rows anomalous.

    A histogram of the scores (``score_samples``, higher is more normal)
    with the threshold ``offset_`` as a vertical line, split into inliers
    and outliers when labels are given (then as densities, so that groups of
    any sizes compare); and, for chosen rows, each
    feature's contribution to the reconstruction term of their scores, as
    bars. Build it with :meth:`from_estimator` rather than directly.

    Parameters
    ----------
    scores : array-like of shape (n_samples,)
        The scores, ``score_samples(X)``.
    offset : float
        The threshold on the scores, ``offset_``.
    is_outlier : array-like of bool of shape (n_samples,), default=None
        Which rows are known outliers; ``None`` draws one histogram.
    contributions : ndarray of shape (n_rows, n_features), default=None
        The per-feature contributions of the chosen rows (see
        :meth:`from_estimator`).
    rows : array-like of int of shape (n_rows,), default=None
        The indices of the chosen rows, for the legend.
    feature_names : list of str, default=None
        Names of the features, for the bars' axis.
    estimator_name : str, default=None
        Name of the detector, for the title.

    Attributes
    ----------
    hist_ : list of matplotlib BarContainer
        The histogram's bars: one container, or the inliers' and then the
        outliers' when ``is_outlier`` is given.
    threshold_line_ : matplotlib Line2D
        The vertical line at ``offset``.
    bars_ : list of matplotlib BarContainer or None
        One container per chosen row, one bar per feature.
    ax_ : matplotlib Axes
        The histogram's Axes.
    ax_contributions_ : matplotlib Axes or None
        The Axes of the contributions.
    figure_ : matplotlib Figure
        The figure of ``ax_``.

    See Also
    --------
    AEOutlierDetector : The detector whose scores are drawn.
    TrainingCurveDisplay : The training history of its inner autoencoder.

    Examples
    --------
    >>> import numpy as np
    >>> from skae import AE, AEOutlierDetector, AnomalyScoreDisplay
    >>> X = np.random.RandomState(0).normal(size=(200, 8))
    >>> detector = AEOutlierDetector(AE(n_components=2, max_epochs=3, early_stopping=False),
    ...                              random_state=0).fit(X)
    >>> display = AnomalyScoreDisplay.from_estimator(detector, X, rows=[0, 1])
    >>> display.threshold_line_.get_xdata()[0] == detector.offset_, len(display.bars_)
    (True, 2)
    """

    def __init__(
        self,
        scores,
        offset,
        *,
        is_outlier=None,
        contributions=None,
        rows=None,
        feature_names=None,
        estimator_name=None,
    ):
        self.scores = scores
        self.offset = offset
        self.is_outlier = is_outlier
        self.contributions = contributions
        self.rows = rows
        self.feature_names = feature_names
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(
        cls, estimator, X, y=None, *, rows=None, outlier_label=-1, ax=None, **kwargs
    ):
        """Score ``X`` with a fitted detector and draw the scores.

        The contributions of the chosen ``rows`` are those of the
        reconstruction term of :class:`AEOutlierDetector`'s score: feature
        ``j`` of row ``x`` contributes ``(x_j - xhat_j) ** 2 /
        residual_scale_[j] ** 2 / n_features_in_``, i.e.
        ``reconstruction_error(X, per_feature=True)`` in units of the
        residual scale, divided by the number of features. They sum to the
        term ``off`` that the score subtracts (``score_type="combined"`` or
        ``"reconstruction"``); the code's term (``inside``) is not per feature
        and is not drawn.

        Parameters
        ----------
        estimator : estimator object
            A fitted outlier detector with ``score_samples`` and ``offset_``
            (:class:`AEOutlierDetector`, or e.g. scikit-learn's
            :class:`~sklearn.ensemble.IsolationForest`). ``rows`` needs an
            :class:`AEOutlierDetector`.
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The rows to score.
        y : array-like of shape (n_samples,), default=None
            True labels: rows equal to ``outlier_label`` are outliers, the
            others inliers; ``None`` draws one histogram.
        rows : int or array-like of int, default=None
            Indices of rows of ``X`` whose per-feature contributions to draw,
            beside the histogram.
        outlier_label : int or str, default=-1
            The label of the outliers in ``y``: -1 as the detectors'
            ``predict`` (whose inliers are +1); 1 for 0/1 labels where 1
            marks an anomaly.
        ax : matplotlib Axes or sequence of two Axes, default=None
            Axes to draw on: one for the histogram, or, with ``rows``, two
            (the histogram's and the contributions'). ``None`` creates a
            figure.
        **kwargs : dict
            Passed to matplotlib's ``hist``.

        Returns
        -------
        display : AnomalyScoreDisplay
            The display, drawn.

        Examples
        --------
        >>> import numpy as np
        >>> from skae import AE, AEOutlierDetector, AnomalyScoreDisplay
        >>> X = np.random.RandomState(0).normal(size=(200, 8))
        >>> X[:10] += 4  # ten outliers
        >>> y = np.where(np.arange(200) < 10, -1, 1)
        >>> detector = AEOutlierDetector(AE(n_components=2, max_epochs=3, early_stopping=False),
        ...                              random_state=0).fit(X)
        >>> display = AnomalyScoreDisplay.from_estimator(detector, X, y, bins=20)
        >>> [len(bars) for bars in display.hist_]  # inliers, outliers
        [20, 20]
        """
        _pyplot(f"{cls.__name__}.from_estimator")
        check_is_fitted(estimator)
        scores = np.asarray(estimator.score_samples(X), dtype=np.float64)
        is_outlier = None
        if y is not None:
            labels = np.asarray(y)
            check_consistent_length(scores, labels)
            values = set(np.unique(labels).tolist())
            if len(values) > 2 or (len(values) == 2 and outlier_label not in values):
                raise ValueError(
                    f"y must hold two labels, one of them outlier_label={outlier_label!r}; "
                    f"got {sorted(values, key=str)!r}. For 0/1 labels with 1 marking "
                    "anomalies, pass outlier_label=1."
                )
            is_outlier = labels == outlier_label
        contributions = names = None
        if rows is not None:
            rows = np.atleast_1d(np.asarray(rows))
            if rows.dtype.kind not in "iu" or rows.ndim != 1 or not len(rows):
                raise ValueError(f"rows must be indices of rows of X, got {rows!r}.")
            if rows.min() < -len(scores) or rows.max() >= len(scores):
                raise ValueError(f"rows must be indices of X's {len(scores)} rows, got {rows}.")
            if not hasattr(estimator, "reconstruction_error"):
                raise TypeError(
                    f"rows needs an AEOutlierDetector (per-feature errors), not "
                    f"{type(estimator).__name__}."
                )
            errors = estimator.reconstruction_error(_safe_indexing(X, rows), per_feature=True)
            contributions = errors / np.square(estimator.residual_scale_) / errors.shape[1]
            names = _feature_names(estimator, errors.shape[1])
        return cls(
            scores,
            float(estimator.offset_),
            is_outlier=is_outlier,
            contributions=contributions,
            rows=rows,
            feature_names=names,
            estimator_name=type(estimator).__name__,
        ).plot(ax=ax, **kwargs)

    def plot(self, ax=None, **kwargs):
        """Draw the histogram of scores and, with contributions, their bars.

        Parameters
        ----------
        ax : matplotlib Axes or sequence of two Axes, default=None
            Axes to draw on: one for the histogram, or, with
            ``contributions``, two (the histogram's and the contributions').
            ``None`` creates a figure.
        **kwargs : dict
            Passed to matplotlib's ``hist`` (e.g. ``bins``).

        Returns
        -------
        display : AnomalyScoreDisplay
            The display, with ``ax_``, ``figure_`` and the artists.

        Examples
        --------
        >>> import numpy as np
        >>> from skae import AnomalyScoreDisplay
        >>> scores = np.random.RandomState(0).normal(size=100)
        >>> display = AnomalyScoreDisplay(scores, offset=-2.0).plot(bins=10)
        >>> len(display.hist_[0])
        10
        """
        with_bars = self.contributions is not None
        if ax is None and with_bars:
            _, ax = _pyplot(f"{type(self).__name__}.plot").subplots(
                1, 2, figsize=(11, 4), layout="constrained"
            )
        if with_bars != (np.ndim(ax) == 1):
            raise ValueError(
                "ax must be one matplotlib Axes, or two (the histogram's and the "
                "contributions') when there are contributions to draw."
            )
        ax, self.ax_contributions_ = ax if with_bars else (ax, None)
        ax = self._start(ax)
        scores = np.asarray(self.scores, dtype=np.float64)
        style = {"bins": np.histogram_bin_edges(scores, bins="auto"), "alpha": 0.6}
        if self.is_outlier is None:
            groups = [(scores, "scores")]
        else:
            outlier = np.asarray(self.is_outlier, dtype=bool)
            style["density"] = True
            groups = [
                (scores[~outlier], f"inliers ({int((~outlier).sum())})"),
                (scores[outlier], f"outliers ({int(outlier.sum())})"),
            ]
        style.update(kwargs)
        style.pop("label", None)  # one label per group
        self.hist_ = [ax.hist(values, **{"label": label, **style})[2] for values, label in groups]
        self.threshold_line_ = ax.axvline(
            self.offset, color="k", linestyle="--", label=f"threshold (offset_ = {self.offset:.3g})"
        )
        ax.set_xlabel("score_samples (lower is more abnormal)")
        ax.set_ylabel("density" if style.get("density") else "rows")
        ax.legend(fontsize="small")
        self._title("anomaly scores")
        self.bars_ = self._plot_contributions() if with_bars else None
        return self

    def _plot_contributions(self):
        ax = self.ax_contributions_
        contributions = np.atleast_2d(np.asarray(self.contributions, dtype=np.float64))
        n_rows, n_features = contributions.shape
        rows = self.rows if self.rows is not None else range(n_rows)
        scores = np.asarray(self.scores, dtype=np.float64)
        width = 0.8 / n_rows
        bars = []
        for i, (row, values) in enumerate(zip(rows, contributions)):
            x = np.arange(n_features) + (i - (n_rows - 1) / 2) * width
            label = f"row {row} (score {scores[row]:.3g})" if self.rows is not None else None
            bars.append(ax.bar(x, values, width=width, label=label))
        _label_features(ax, self.feature_names, n_features)
        ax.set_ylabel("contribution to -score_samples")
        ax.set_title("Reconstruction term of the score, per feature")
        if self.rows is not None:
            ax.legend(fontsize="small")
        return bars
