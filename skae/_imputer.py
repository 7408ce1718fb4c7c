"""Missing-value imputation with a denoising autoencoder.

:class:`AEImputer` composes skae's pieces: the training plan
(:func:`skae._plan.training_plan`), the skorch net builder
(:func:`skae._net.build_net`, whose ``BestWeights`` callback keeps the best
epoch on held-out cells, the untrained model, i.e. the column mean,
included), the whole-batch tensor dataset (:class:`skae._data.TensorDataset`),
a pure-torch module (:class:`skae._modules.MaskedImputer`) and its loss
(:class:`skae._losses.MaskedLoss`), and the guard that the trained model
must beat a reference significantly (:func:`skae._selection.beats_reference`).
"""

import math
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.impute import MissingIndicator
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data
from torch import nn

from skae._data import TensorDataset, n_holdout
from skae._losses import MaskedLoss
from skae._modules import ACTIVATIONS, MaskedImputer
from skae._net import build_net, module_cost
from skae._plan import IMPUTER_GUARD_SE, IMPUTER_HIDDEN, IMPUTER_MIN_VALID_CELLS, training_plan
from skae._selection import lower_mean
from skae._utils import make_seed, resolve_device, seeded

#: Rows per forward pass at transform.
TRANSFORM_ROWS = 4096


class ImputingModule(nn.Module):
    """A fitted :class:`AEImputer`'s ``transform`` as one torch module (for ONNX export).

    Maps a batch ``x`` with missing cells (NaN, or ``missing_value``) to the
    imputed batch, the empty features dropped or zeroed and the indicator's
    columns appended, as ``transform`` does. Missing cells are replaced with
    ``Where`` (never multiplied), so NaN inputs cannot leak into the output.
    """

    def __init__(self, network, imputer):
        super().__init__()
        self.network = network
        self.missing_value = None if imputer._nan_missing() else float(imputer.missing_values)
        self.fallback = bool(imputer.fallback_)
        empty = imputer._empty_
        self.register_buffer("mean", torch.as_tensor(np.where(empty, 0.0, imputer.statistics_)))
        self.register_buffer("scale", torch.as_tensor(imputer.scale_))
        low, high = imputer._z_bounds()
        self.register_buffer("low", torch.as_tensor(low))
        self.register_buffer("high", torch.as_tensor(high))
        self.register_buffer("usable", torch.as_tensor(~empty))
        self.register_buffer("kept", torch.as_tensor(np.flatnonzero(~empty)))
        self.keep_empty = bool(imputer.keep_empty_features)
        indicator = imputer.indicator_
        features = [] if indicator is None else indicator.features_
        self.register_buffer("indicated", torch.as_tensor(np.asarray(features, dtype=np.int64)))
        self.add_indicator = indicator is not None

    def forward(self, x):
        if self.missing_value is None:
            missing = torch.isnan(x)
        else:
            missing = x == self.missing_value
        seen = (~missing) & self.usable
        z = torch.where(seen, (x - self.mean) / self.scale, torch.zeros_like(x))
        if self.fallback:
            filled = self.mean.expand_as(x)
        else:
            predicted = self.network.impute(z, seen.to(x.dtype))
            predicted = torch.minimum(torch.maximum(predicted, self.low), self.high)
            filled = predicted * self.scale + self.mean
        out = torch.where(missing, filled, x)
        if self.keep_empty:
            out = torch.where(self.usable, out, torch.zeros_like(out))
        else:
            out = out.index_select(1, self.kept)
        if self.add_indicator:
            out = torch.cat([out, missing.index_select(1, self.indicated).to(x.dtype)], dim=1)
        return out


def _missing_mask(X, missing_values):
    if isinstance(missing_values, float) and math.isnan(missing_values):
        return np.isnan(X)
    return X == missing_values


class AEImputer(TransformerMixin, BaseEstimator):
    """Impute missing values with a denoising autoencoder.

    Each column is standardised on its observed values. A network (an MLP
    plus a linear path) is trained to predict hidden cells from the
    observed cells of the same row and from the mask of which cells are
    observed: in each training step every observed cell is hidden with
    probability ``mask_rate`` and the loss is the squared error on the
    hidden cells only. ``transform`` fills every missing cell with the
    network's prediction from the row's observed cells, within the range of
    values the column had in ``fit``; observed cells are returned unchanged.

    A fraction ``validation_fraction`` of the observed cells is held out of
    training. Training keeps the epoch with the lowest error on them (the
    untrained network, which predicts the column mean, included) and stops
    when it has not improved for ``n_iter_no_change`` epochs. The trained
    network is then used only if it beats the column mean on the held-out
    cells significantly (a mean squared error lower by at least
    {guard_se} standard errors of the per-cell differences); otherwise the
    imputer fills the column means, as
    :class:`~sklearn.impute.SimpleImputer` does, warns, and sets
    ``fallback_``.

    The imputer assumes numeric, continuous features: categorical or
    integer columns are imputed as real numbers (round or one-hot encode
    them yourself). It models missing values as a function of the observed
    values, which suits values missing completely at random or at random
    (given the observed ones).

    Parameters
    ----------
    missing_values : float, default=np.nan
        The placeholder of missing values: every cell equal to it (every
        NaN cell, for ``np.nan``) is imputed.
    hidden_layer_sizes : "auto" or tuple of int, default="auto"
        Widths of the network's hidden layers. ``"auto"``: two layers of
        ``min(max(2 * n_features, {hidden_low}), {hidden_high})`` units.
    activation : str, default="relu"
        Activation of the hidden layers.
    mask_rate : float, default=0.25
        Probability that training hides an observed cell (the denoising
        objective), in (0, 1).
    n_passes : int, default=3
        Passes of the network per imputation: the first reads the observed
        cells (missing ones at the column mean), each later pass also reads
        the previous pass's predictions of the missing cells, as
        :class:`~sklearn.impute.IterativeImputer`'s rounds do. Training
        unrolls the same passes.
    max_epochs : int or "auto", default="auto"
        Maximum number of passes over the rows; ``"auto"`` sizes it from the
        rows and the network's cost as :class:`skae.AE` does.
    batch_size : int or "auto", default="auto"
        Rows per optimiser step; ``"auto"`` as :class:`skae.AE`.
    lr : float or "auto", default="auto"
        Learning rate of Adam; ``"auto"`` as :class:`skae.AE`.
    weight_decay : float, default=0.0
        L2 penalty (Adam's weight decay).
    validation_fraction : float, default=0.1
        Fraction of the observed cells held out to choose the epoch and to
        decide against the column mean.
    n_iter_no_change : int, default=30
        Epochs without improvement on the held-out cells before stopping.
    tol : float, default=1e-4
        Relative improvement that counts as one.
    max_samples : int or None, default=None
        Train on at most this many rows (a random subset; all rows for
        None). The column means are computed on all rows.
    add_indicator : bool, default=False
        If True, append a :class:`~sklearn.impute.MissingIndicator`'s
        columns (one per feature with missing values in ``fit``).
    keep_empty_features : bool, default=False
        If True, features with no observed value in ``fit`` are kept and
        imputed with 0; otherwise they are dropped from the output.
    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``
        or ``"mps"``.
    random_state : int, RandomState instance or None, default=None
        Seeds the held-out cells, the initial weights, the shuffles and
        the masks; an int makes ``fit`` reproducible.
    verbose : int, default=0
        Print one line per epoch when positive.

    Attributes
    ----------
    statistics_ : ndarray of shape (n_features,)
        The column means of the observed values (NaN for empty features).
    scale_ : ndarray of shape (n_features,)
        The columns' standard deviations used to standardise them.
    net_ : skorch.NeuralNet
        The trained network (a private skorch net).
    n_iter_ : int
        Epochs run.
    validation_score_ : float
        Mean squared error of the kept network on the held-out cells, in
        standardised units (NaN when too few cells were held out).
    mean_validation_score_ : float
        The same for the column mean.
    fallback_ : bool
        True when the imputer fills column means because the network did not
        beat them on the held-out cells (or too few cells could be held out).
    indicator_ : sklearn.impute.MissingIndicator or None
        The indicator of missing values, when ``add_indicator``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during fit. Defined only when ``X`` has
        feature names that are all strings.

    See Also
    --------
    sklearn.impute.SimpleImputer : Column means (the fallback).
    sklearn.impute.IterativeImputer : Round-robin regression of each feature.
    sklearn.impute.KNNImputer : Means of the nearest rows.

    Examples
    --------
    >>> import numpy as np
    >>> from skae import AEImputer
    >>> X = np.array([[1.0, 2.0], [np.nan, 4.0], [3.0, 6.0], [4.0, np.nan]])
    >>> imputer = AEImputer(max_epochs=5, random_state=0).fit(X)
    >>> Xt = imputer.transform(X)
    >>> Xt.shape, bool(np.isnan(Xt).any())
    ((4, 2), False)
    """

    _parameter_constraints: dict = {
        "missing_values": [Real],
        "hidden_layer_sizes": [StrOptions({"auto"}), "array-like"],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "mask_rate": [Interval(Real, 0, 1, closed="neither")],
        "n_passes": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "lr": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "max_samples": [None, Interval(Integral, 1, None, closed="left")],
        "add_indicator": ["boolean"],
        "keep_empty_features": ["boolean"],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        missing_values=np.nan,
        *,
        hidden_layer_sizes="auto",
        activation="relu",
        mask_rate=0.25,
        n_passes=3,
        max_epochs="auto",
        batch_size="auto",
        lr="auto",
        weight_decay=0.0,
        validation_fraction=0.1,
        n_iter_no_change=30,
        tol=1e-4,
        max_samples=None,
        add_indicator=False,
        keep_empty_features=False,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.missing_values = missing_values
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.mask_rate = mask_rate
        self.n_passes = n_passes
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.max_samples = max_samples
        self.add_indicator = add_indicator
        self.keep_empty_features = keep_empty_features
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- helpers -------------------------------------------------------------

    def _nan_missing(self):
        return isinstance(self.missing_values, float) and math.isnan(self.missing_values)

    def _validate(self, X, reset):
        X = validate_data(
            self,
            X,
            reset=reset,
            dtype=[np.float64, np.float32],
            ensure_all_finite="allow-nan" if self._nan_missing() else True,
            copy=False,
        )
        if not self._nan_missing() and np.isnan(X).any():
            raise ValueError(
                f"X contains NaN, but missing_values={self.missing_values!r}: set "
                "missing_values=np.nan, or replace the NaN first."
            )
        return X

    def _hidden_layer_sizes(self, n_features):
        if isinstance(self.hidden_layer_sizes, str):
            low, high = IMPUTER_HIDDEN
            width = int(min(max(2 * n_features, low), high))
            return (width, width)
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, Integral) else tuple(sizes)
        if not sizes or not all(isinstance(s, Integral) and s >= 1 for s in sizes):
            raise ValueError(
                f"hidden_layer_sizes must be 'auto' or positive integers, got "
                f"{self.hidden_layer_sizes!r}."
            )
        return tuple(int(s) for s in sizes)

    def _standardize(self, X, missing):
        Z = (X - self.statistics_) / self.scale_
        Z[missing] = 0.0
        Z[:, self._empty_] = 0.0
        return Z

    # -- fit -----------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the imputer on ``X``, which may hold missing values.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; its cells equal to ``missing_values`` are missing.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The fitted imputer.

        Examples
        --------
        >>> import numpy as np
        >>> from skae import AEImputer
        >>> X = np.array([[1.0, 2.0], [np.nan, 4.0], [3.0, 6.0], [4.0, np.nan]])
        >>> AEImputer(max_epochs=5, random_state=0).fit(X).n_features_in_
        2
        """
        X = self._validate(X, reset=True)
        missing = _missing_mask(X, self.missing_values)
        observed = ~missing
        n_samples, n_features = X.shape
        counts = observed.sum(axis=0)
        self._empty_ = counts == 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # empty columns: NaN means
            values = np.where(observed, X, 0.0).astype(np.float64)
            mean = values.sum(axis=0) / np.maximum(counts, 1)
            var = (np.where(observed, X - mean, 0.0) ** 2).sum(axis=0) / np.maximum(counts, 1)
        self.statistics_ = np.where(self._empty_, np.nan, mean)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # empty columns: all-NaN slices
            low = np.where(observed, X, np.inf).min(axis=0)
            high = np.where(observed, X, -np.inf).max(axis=0)
        self._bounds_ = np.where(self._empty_, 0.0, low), np.where(self._empty_, 0.0, high)
        scale = np.sqrt(var)
        self.scale_ = np.where(scale > 1e-12 * max(1.0, np.abs(mean).max()), scale, 1.0)
        if self.add_indicator:
            self.indicator_ = MissingIndicator(
                missing_values=self.missing_values, error_on_new=False
            ).fit(X)
        else:
            self.indicator_ = None

        device = resolve_device(self.device)
        hidden = self._hidden_layer_sizes(n_features)
        with seeded(make_seed(self.random_state), device):
            rows = torch.arange(n_samples)
            if self.max_samples is not None and n_samples > self.max_samples:
                rows = torch.randperm(n_samples)[: self.max_samples].sort().values
            rows = rows.numpy()
            Z = self._standardize(X[rows].astype(np.float64), missing[rows])
            seen = observed[rows] & ~self._empty_
            cells = np.flatnonzero(seen)
            n_valid = n_holdout(self.validation_fraction, len(cells)) if len(cells) else 0
            valid = np.zeros(seen.size, dtype=bool)
            if n_valid >= IMPUTER_MIN_VALID_CELLS and len(cells) - n_valid >= 1:
                valid[cells[torch.randperm(len(cells))[:n_valid].numpy()]] = True
            valid = valid.reshape(seen.shape)
            seen &= ~valid
            packed = np.hstack([Z, seen, valid]).astype(np.float32)
            dataset = TensorDataset(torch.from_numpy(packed).to(device))
            module_kwargs = dict(
                n_features=n_features,
                hidden_layer_sizes=hidden,
                activation=self.activation,
                drop=self.mask_rate,
                train_rate=max(seen.mean(), 1e-12),
                valid_rate=max(valid.mean(), 1e-12),
                n_passes=self.n_passes,
            )
            plan = training_plan(
                len(rows),
                module_cost(MaskedImputer, module_kwargs),
                kind="imputer",
                batch_size=self.batch_size,
                lr=self.lr,
                max_epochs=self.max_epochs,
                optimizer="adam",
                early_stopping=False,
                validation_fraction=self.validation_fraction,
            )
            net = build_net(
                module=MaskedImputer,
                module_kwargs=module_kwargs,
                criterion=MaskedLoss,
                criterion_kwargs={},
                terms=(),
                optimizer="adam",
                lr=plan["lr"],
                weight_decay=self.weight_decay,
                max_epochs=plan["max_epochs"],
                batch_size=plan["batch_size"],
                validation_fraction=None,
                early_stopping=valid.any(),
                n_iter_no_change=self.n_iter_no_change,
                tol=self.tol,
                device=device,
                verbose=self.verbose,
                total_steps=plan["total_steps"],
                warmup_steps=plan["warmup_steps"],
                valid_dataset=dataset if valid.any() else None,
            )
            if valid.any():
                net.set_params(callbacks__best_weights__keep_rows=False)
            net.initialize()
            net.partial_fit(dataset, None)
        net.module_.eval()
        self.net_ = net
        self.n_iter_ = len(net.history)
        self._decide(Z, seen, valid)
        return self

    def _decide(self, Z, seen, valid):
        """Keep the network only if it beats the column mean on the held-out cells."""
        self.validation_score_ = self.mean_validation_score_ = float("nan")
        if not valid.any():
            self.fallback_ = True
            return
        predicted = self._predict(Z, seen)
        errors = torch.from_numpy((predicted - Z)[valid] ** 2)
        reference = torch.from_numpy(Z[valid] ** 2)
        self.validation_score_ = float(errors.mean())
        self.mean_validation_score_ = float(reference.mean())
        self.fallback_ = not lower_mean(errors, reference, IMPUTER_GUARD_SE)
        if self.fallback_:
            warnings.warn(
                f"AEImputer's network did not beat the column means on the held-out cells "
                f"(mean squared error {self.validation_score_:.4g} against "
                f"{self.mean_validation_score_:.4g}, standardised): it imputes the column "
                "means, as SimpleImputer does. With more rows, or columns that predict one "
                "another, the network can do better.",
                UserWarning,
                stacklevel=3,
            )

    def _z_bounds(self):
        """Each column's observed range in ``fit``, standardised (0 for empty columns)."""
        mean = np.where(self._empty_, 0.0, self.statistics_)
        return tuple((bound - mean) / self.scale_ for bound in self._bounds_)

    def _predict(self, Z, seen):
        """The network's standardised predictions of every cell (float64 array).

        Clipped to each column's observed range in ``fit``: a row far outside
        the training rows cannot drive an imputed value beyond any value seen.
        """
        low, high = self._z_bounds()
        module = self.net_.module_
        first = next(module.parameters())
        out = np.empty_like(Z, dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, len(Z), TRANSFORM_ROWS):
                stop = start + TRANSFORM_ROWS
                z = torch.as_tensor(Z[start:stop], dtype=first.dtype, device=first.device)
                s = torch.as_tensor(seen[start:stop], dtype=first.dtype, device=first.device)
                out[start:stop] = module.impute(z, s).double().cpu().numpy()
        return np.clip(out, low, high)

    # -- transform -------------------------------------------------------------

    def transform(self, X):
        """Impute every missing cell of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data with missing values (cells equal to ``missing_values``).

        Returns
        -------
        X_imputed : ndarray of shape (n_samples, n_features_out)
            ``X`` with its missing cells filled, in ``X``'s floating dtype;
            features empty in ``fit`` are dropped unless
            ``keep_empty_features``, and the indicator's columns follow when
            ``add_indicator``.

        Examples
        --------
        >>> import numpy as np
        >>> from skae import AEImputer
        >>> X = np.array([[1.0, 2.0], [np.nan, 4.0], [3.0, 6.0], [4.0, np.nan]])
        >>> imputer = AEImputer(max_epochs=5, random_state=0).fit(X)
        >>> imputer.transform([[np.nan, 5.0]]).shape
        (1, 2)
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        missing = _missing_mask(X, self.missing_values)
        Xt = np.array(X, copy=True)
        rows = np.flatnonzero(missing.any(axis=1))
        if len(rows):
            if self.fallback_:
                filled = np.broadcast_to(self.statistics_, (len(rows), X.shape[1]))
            else:
                Z = self._standardize(X[rows].astype(np.float64), missing[rows])
                seen = ~missing[rows] & ~self._empty_
                filled = self._predict(Z, seen) * self.scale_ + self.statistics_
            block = Xt[rows]
            block[missing[rows]] = filled[missing[rows]]
            Xt[rows] = block
        if self.keep_empty_features:
            Xt[:, self._empty_] = 0.0
        else:
            Xt = Xt[:, ~self._empty_]
        if self.indicator_ is not None:
            indicator = self.indicator_.transform(X).astype(Xt.dtype)
            Xt = np.hstack([Xt, indicator])
        return Xt

    def get_feature_names_out(self, input_features=None):
        """Get the names of the output features.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names; ``feature_names_in_`` (or ``x0``, ``x1``,
            ...) when None.

        Returns
        -------
        feature_names_out : ndarray of str objects
            The kept input features' names, then the indicator's
            (``missingindicator_<name>``) when ``add_indicator``.

        Examples
        --------
        >>> import numpy as np
        >>> from skae import AEImputer
        >>> X = np.array([[1.0, 2.0], [np.nan, 4.0], [3.0, 6.0], [4.0, 8.0]])
        >>> imputer = AEImputer(add_indicator=True, max_epochs=2, random_state=0).fit(X)
        >>> imputer.get_feature_names_out().tolist()
        ['x0', 'x1', 'missingindicator_x0']
        """
        check_is_fitted(self)
        all_names = _check_feature_names_in(self, input_features)
        names = all_names if self.keep_empty_features else all_names[~self._empty_]
        if self.indicator_ is not None:
            names = np.concatenate([names, self.indicator_.get_feature_names_out(all_names)])
        return np.asarray(names, dtype=object)

    def _imputing_module(self):
        """``transform`` as a torch module (:class:`ImputingModule`), for :func:`skae.to_onnx`."""
        check_is_fitted(self)
        return ImputingModule(self.net_.module_, self)

    @property
    def _n_features_out(self):
        n = self.n_features_in_ if self.keep_empty_features else int((~self._empty_).sum())
        return n + (0 if self.indicator_ is None else len(self.indicator_.features_))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


AEImputer.__doc__ = (
    AEImputer.__doc__.replace("{hidden_low}", str(IMPUTER_HIDDEN[0]))
    .replace("{hidden_high}", str(IMPUTER_HIDDEN[1]))
    .replace("{guard_se}", f"{IMPUTER_GUARD_SE:g}")
)
