"""The shared scikit-learn base of every skae estimator.

It holds parameter validation, the fit / partial_fit / transform /
inverse_transform / score_samples / score logic, the checks of parameters
against the data, the warnings on degenerate outcomes, the hooks of the
fitted state for :func:`skae.save` and the tags. Subclasses implement hooks
only: ``_module`` and ``_criterion`` (and ``_check_data``,
``_score_samples`` where they differ).

What it calls lives elsewhere: the ``"auto"`` training plan in
:mod:`skae._plan`, the choice of training dataset in
:func:`skae._data.as_dataset`, the skorch net in :mod:`skae._net` (its
callbacks in :mod:`skae._callbacks`), inference in :mod:`skae._inference`
and the saved state in :mod:`skae._state`.
"""

import functools
import math
from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import assert_all_finite
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from skae._checks import check_against_data, constant_units, warn_code_size, warn_outcome
from skae._data import as_dataset, summarize
from skae._inference import InferenceCache, current_cache, decode, encode
from skae._losses import reconstruction_error
from skae._modules import ACTIVATIONS, OUTPUT_ACTIVATIONS
from skae._net import OPTIMIZERS, build_net, module_cost, print_line
from skae._plan import CROSSFIT, LINEAR_PATH_LR_SCALE, training_plan
from skae._selection import cross_fitted_epoch, hopeless
from skae._state import fitted_state, from_fitted_state
from skae._utils import device_for_loading, interpolation_inputs, make_seed, resolve_device, seeded


class BaseAutoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Base class for skae's autoencoders. Not for direct use."""

    #: Whether ``n_components >= n_features`` is a legitimate (overcomplete) code;
    #: if not, fitting warns.
    _overcomplete = False

    #: Fitting warns when the reconstructions keep less than this fraction of the
    #: training data's variance (None: never; see :func:`skae._checks.warn_outcome`).
    _min_kept_variance = None

    #: The estimator's kind in :mod:`skae._plan`'s per-kind tables (the
    #: ``max_epochs="auto"`` budget, the linear path's learning-rate scale).
    _plan_kind = "dense"

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "output_activation": [None, StrOptions({k for k in OUTPUT_ACTIVATIONS if k})],
        "loss": [StrOptions({"mse", "bce"})],
        "noise": [None, StrOptions({"gaussian", "mask"})],
        "noise_level": [Interval(Real, 0, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "lr": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components=2,
        *,
        hidden_layer_sizes=(256,),
        activation="relu",
        output_activation=None,
        loss="mse",
        noise=None,
        noise_level=0.1,
        max_epochs="auto",
        batch_size="auto",
        lr="auto",
        optimizer="adam",
        weight_decay=0.0,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.output_activation = output_activation
        self.loss = loss
        self.noise = noise
        self.noise_level = noise_level
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- hooks -------------------------------------------------------------

    def _module(self, n_features):
        """Return ``(module_class, kwargs)``: the ``nn.Module`` for ``n_features`` inputs.

        skorch instantiates it when the net is initialised, inside the
        caller's seeded RNG state; the net keeps the class and its arguments
        (``net_.module``, ``net_.module__*``) and the one instance
        (``net_.module_``).
        """
        raise NotImplementedError

    def _criterion(self):
        """Return ``(criterion_class, kwargs, logged_term_names)``."""
        raise NotImplementedError

    def _check_data(self, n_features):
        """Estimator-specific checks of the validated training data's ``n_features``."""

    def _before_training(self):
        """Called by ``fit`` and ``partial_fit`` after the parameters are validated.

        E.g. the ``skae.distributed`` estimators join the launcher's process
        group here, before the device is resolved.
        """

    def _init_module(self, net, summary):
        """Fit the initialised module to the data (normalisation, PCA's solution).

        ``summary`` is a :class:`skae._data.DataSummary` of the training rows.
        Subclasses whose net wraps the module (e.g. in DDP) unwrap it here.
        """
        net.module_.init_from_data(summary)

    def _make_net(self, **kwargs):
        """Build the skorch net from :func:`skae._net.build_net`'s arguments.

        Subclasses (e.g. distributed variants) override it to pass
        ``net_class`` / ``net_kwargs``.
        """
        return build_net(**kwargs)

    # -- helpers -----------------------------------------------------------

    def _hidden_layer_sizes(self):
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, Integral) else tuple(sizes)
        if not all(isinstance(s, Integral) and s >= 1 for s in sizes):
            raise ValueError(
                f"hidden_layer_sizes must be positive integers, got {self.hidden_layer_sizes!r}."
            )
        return tuple(int(s) for s in sizes)

    def _training_data(self, X, device, reset):
        """Validate ``X`` for training and return it as a dataset on ``device``.

        See :func:`skae._data.as_dataset`: a ``numpy.memmap`` is validated
        and read chunk by chunk from its file, never loaded whole.
        """
        dataset, low, high = as_dataset(
            X,
            device,
            validate=functools.partial(self._validate, reset=reset),
            check_finite=functools.partial(assert_all_finite, input_name="X"),
        )
        check_against_data(self, len(dataset), low, high)
        self._check_data(self.n_features_in_)
        if reset:
            warn_code_size(self)
        return dataset

    def _plan(self, n_samples, cost, crossfit=False):
        """Resolve the ``"auto"`` training parameters for ``n_samples`` rows.

        ``cost`` is the module's multiply-adds per row; see
        :func:`skae._plan.training_plan` for the dict returned.
        """
        return training_plan(
            n_samples,
            cost,
            kind=self._plan_kind,
            batch_size=self.batch_size,
            lr=self.lr,
            max_epochs=self.max_epochs,
            optimizer=self.optimizer,
            early_stopping=self.early_stopping,
            validation_fraction=self.validation_fraction,
            crossfit=crossfit,
        )

    def _validate(self, X, reset):
        return validate_data(
            self,
            X,
            reset=reset,
            accept_sparse="csr",
            dtype=[np.float64, np.float32],
            ensure_min_features=1,
        )

    # -- fit -----------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the autoencoder to ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. float32 and float64 are accepted; training runs
            in float32. A ``numpy.memmap`` is read in chunks from its file
            (never loaded whole) and a sparse matrix is densified per chunk.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The fitted estimator.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skae import AE
        >>> X = load_digits().data[:200] / 16
        >>> ae = AE(n_components=4, max_epochs=3, early_stopping=False, random_state=0).fit(X)
        >>> ae.n_iter_, ae.loss_curve_.shape
        (3, (3,))
        """
        self._before_training()
        device = resolve_device(self.device)
        dataset = self._training_data(X, device, reset=True)
        module, module_kwargs = self._module(self.n_features_in_)
        crossfit = bool(module_kwargs.get("linear_path")) and CROSSFIT[self._plan_kind]
        plan = self._plan(len(dataset), module_cost(module, module_kwargs), crossfit)
        with seeded(make_seed(self.random_state), device):
            if plan["folds"]:
                net, scores = self._cross_fit(dataset, device, plan)
            else:
                net, scores = self._new_net(device, plan), None
                net.initialize()
                self._init_module(net, summarize(dataset))
                net.partial_fit(dataset, None)
        self.net_ = net
        self.n_samples_seen_ = len(dataset)
        self._set_plan_attributes(plan)
        self._after_training(scores)
        warn_outcome(self, dataset)
        return self

    def _cross_fit(self, dataset, device, plan):
        """Cross-fit (see :data:`skae._plan.CROSSFIT_BELOW`), then train on all rows.

        One net per fold, validated on its fold; the epoch and the guard's
        decision are taken on all rows' out-of-fold losses
        (:func:`skae._selection.cross_fitted_epoch`), unless the folds run
        so far show no hint of a gain (:func:`skae._selection.hopeless`).
        Returns the net trained on all rows for as many optimiser steps
        (none: PCA's solution is kept) and the out-of-fold mean losses
        ``(the epoch kept's, each epoch's)`` (``None`` when interrupted).
        """
        curves, references, n_train = [], [], len(dataset) - plan["n_valid"]
        for fold, (train, valid) in enumerate(dataset.folds(plan["folds"]), 1):
            net = self._new_net(device, plan, valid=valid)
            net.initialize()
            print_line(net, f"Cross-fitting: fold {fold} of {plan['folds']}, {len(train)} rows")
            self._init_module(net, summarize(train))
            net.partial_fit(train, None)
            callbacks = dict(net.callbacks_)
            if callbacks["guard"].interrupted_:  # Ctrl-C: keep the reference
                curves = []
                break
            best = callbacks["best_weights"]
            curves.append(best.rows_)
            references.append(best.reference_rows_)
            if hopeless(curves, references):  # no hint of a gain: keep the reference
                break
        epoch, scores = cross_fitted_epoch(curves, references)
        if scores is not None:  # the chosen epoch's score first: see _after_training
            scores = (scores[epoch], scores[1:])
        # The final model takes the fold models' optimiser steps, on the same schedule
        # (in steps): fewer, larger epochs (measured: better than as many epochs).
        per_fold, per_all = (math.ceil(n / plan["batch_size"]) for n in (n_train, len(dataset)))
        epoch = max(1, round(epoch * per_fold / per_all)) if epoch else 0
        final = {**plan, "n_valid": 0, "max_epochs": max(1, epoch), "patience": max(1, epoch)}
        net = self._new_net(device, final)
        net.initialize()
        print_line(
            net,
            f"Cross-fitted: training on all {len(dataset)} rows for {epoch} epochs"
            if epoch
            else "Cross-fitted: no gain over PCA out of fold; PCA's solution is kept",
        )
        self._init_module(net, summarize(dataset))
        if epoch:
            net.partial_fit(dataset, None)
        else:
            getattr(net.module_, "module", net.module_).use_reference(True)
        return net, scores

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Train on one chunk of rows: one pass over it, for out-of-core learning.

        As :meth:`sklearn.decomposition.IncrementalPCA.partial_fit`: the
        first call fixes ``n_features_in_`` and builds the network; later
        calls continue training it, keeping the optimiser state. Each call
        is one epoch over ``X``; early stopping does not apply.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            A chunk of training data.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The estimator, trained further.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_digits
        >>> from skae import AE
        >>> X = load_digits().data[:200] / 16
        >>> ae = AE(n_components=4, random_state=0)
        >>> for chunk in np.array_split(X, 4):
        ...     ae = ae.partial_fit(chunk)
        >>> ae.n_iter_
        4
        """
        first = not hasattr(self, "net_")
        self._before_training()
        device = resolve_device(self.device) if first else str(self.net_.device)
        dataset = self._training_data(X, device, reset=first)
        seed = make_seed(self.random_state)
        seed = seed if first else (seed + self.n_iter_) % 2**63
        with seeded(seed, device):
            if first:
                plan = self._continued_plan(len(dataset))
                self.net_ = self._new_net(device, plan)
                self.net_.initialize()
                self._init_module(self.net_, summarize(dataset))
                self.n_samples_seen_ = 0
                self._set_plan_attributes(plan)
            elif self.net_.train_split is not None:
                # A net fitted with early stopping: partial_fit trains on whole
                # chunks, with no split and no stop on the validation loss.
                self.net_.set_params(
                    train_split=None, callbacks__early_stopping__monitor="train_loss"
                )
            self.net_.partial_fit(dataset, None, epochs=1)
        self.n_samples_seen_ += len(dataset)
        self._after_training()
        warn_outcome(self, dataset)
        return self

    def _continued_plan(self, n_samples):
        """The plan of a net trained one pass at a time (``partial_fit``, or loaded).

        No validation split and a constant learning rate (no schedule); the
        batch size and rate are resolved from ``n_samples`` rows.
        """
        plan = self._plan(n_samples, module_cost(*self._module(self.n_features_in_)))
        plan.update(n_valid=0, max_epochs=1, total_steps=None, warmup_steps=0)
        return plan

    def _set_plan_attributes(self, plan):
        self.batch_size_ = plan["batch_size"]
        self.lr_ = plan["lr"]
        self.max_epochs_ = plan["max_epochs"]

    def _new_net(self, device, plan, valid=None):
        """Build the skorch net for ``plan`` (see :meth:`_plan`), validated on ``valid`` if given.

        It creates the module when initialised, inside the caller's seeded
        RNG state.
        """
        criterion, criterion_kwargs, terms = self._criterion()
        module, module_kwargs = self._module(self.n_features_in_)
        linear_path = bool(module_kwargs.get("linear_path"))
        lr_scale = LINEAR_PATH_LR_SCALE[self._plan_kind]
        validation_fraction = self.validation_fraction if plan["n_valid"] else None
        return self._make_net(
            module=module,
            module_kwargs=module_kwargs,
            criterion=criterion,
            criterion_kwargs=criterion_kwargs,
            terms=terms,
            optimizer=self.optimizer,
            lr=plan["lr"],
            weight_decay=self.weight_decay,
            max_epochs=plan["max_epochs"],
            batch_size=plan["batch_size"],
            validation_fraction=validation_fraction,
            early_stopping=validation_fraction is not None or valid is not None,
            n_iter_no_change=plan.get("patience", self.n_iter_no_change),
            tol=self.tol,
            device=device,
            verbose=int(self.verbose),
            total_steps=plan["total_steps"],
            warmup_steps=plan["warmup_steps"],
            param_groups=[("linear.*", {"lr_scale": lr_scale})] if linear_path else (),
            reference=linear_path,
            validation_noise=(self.noise, self.noise_level) if self.noise else None,
            valid_dataset=valid,
        )

    def _after_training(self, crossfit_scores=None):
        """Check the outcome of training and set the fitted attributes.

        ``crossfit_scores``: ``(the epoch kept's, each epoch's)`` out-of-fold
        mean loss of a cross-fitted fit (:meth:`_cross_fit`), whose net may
        have been kept at its reference without training.
        """
        net = self.net_
        callbacks = dict(net.callbacks_)
        guard = callbacks["guard"]
        guard.truncate_history(net)
        # One copy of the weights: EarlyStopping keeps its best weights until the
        # next fit (skorch leaves them out of pickles, not out of memory).
        callbacks["early_stopping"].best_model_weights_ = None
        if len(net.history) == 0 and crossfit_scores is None and "n_iter_" not in vars(self):
            del self.net_
            if guard.diverged_ is not None:
                raise ValueError(
                    f"Training diverged in the first epoch (loss={guard.diverged_[1]}). "
                    "Lower `lr` or scale the data (e.g. with StandardScaler)."
                )
            raise KeyboardInterrupt("Training was interrupted before the first epoch ended.")
        net.module_.eval()
        # Created here (not on first use) so that inference leaves __dict__ unchanged.
        self._inference_cache = InferenceCache(net.module_)
        history = net.history
        self.n_iter_ = len(history)
        self.loss_curve_ = np.asarray(history[:, "train_loss"] if len(history) else [], dtype=float)
        if crossfit_scores is not None:
            kept, curve = crossfit_scores
            self.validation_scores_ = -np.asarray(curve, dtype=float)
            self.best_validation_score_ = -float(kept)
            self.best_epoch_ = self.n_iter_
        elif len(history) and "valid_loss" in history[-1]:
            self.validation_scores_ = -np.asarray(history[:, "valid_loss"], dtype=float)
            self.best_validation_score_ = float(self.validation_scores_.max())
            best = callbacks.get("best_weights")
            if best is not None and best.best_epoch_ is not None:
                self.best_epoch_ = int(best.best_epoch_)
                self.best_validation_score_ = -float(best.kept_loss_)

    def _dead_units(self, codes):
        """Mask of the code units that are dead: constant over ``codes``' rows."""
        return constant_units(codes)

    def _lost_variance_remedy(self):
        return "Use a larger n_components."

    def _dead_units_remedy(self):
        return (
            "The data may have fewer than n_components independent directions: use a "
            "smaller n_components."
        )

    # -- inference -----------------------------------------------------------

    @property
    def _n_features_out(self):
        return self.n_components

    def _check_fitted(self):
        """``check_is_fitted``, without scanning every attribute on each call."""
        if "net_" not in self.__dict__:
            check_is_fitted(self)

    def _inference(self, fn, X, n_out):
        """Apply ``fn(module, batch)`` to ``X`` in batches, in ``X``'s dtype.

        float64 input runs a float64 copy of the module (built once and
        cached, see :class:`skae._inference.InferenceCache`), so results
        agree to float64 rounding however rows are batched (BLAS may pick
        other kernels for other batch shapes); float32 runs the trained
        module.
        """
        return current_cache(self, self.net_.module_).run(fn, X, n_out)

    def transform(self, X):
        """Encode ``X`` into the ``n_components``-dimensional code space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            The codes, in ``X``'s floating dtype.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skae import AE
        >>> X = load_digits().data[:200] / 16
        >>> ae = AE(n_components=4, max_epochs=2, random_state=0).fit(X)
        >>> ae.transform(X[:5]).shape
        (5, 4)
        """
        self._check_fitted()
        X = self._validate(X, reset=False)
        return self._inference(encode, X, self.n_components)

    def inverse_transform(self, X):
        """Decode codes back to the input space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, e.g. from :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, `n_features_in_`)
            The reconstructions.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skae import AE
        >>> X = load_digits().data[:200] / 16
        >>> ae = AE(n_components=4, max_epochs=2, random_state=0).fit(X)
        >>> ae.inverse_transform(ae.transform(X[:5])).shape
        (5, 64)
        """
        self._check_fitted()
        X = check_array(X, dtype=[np.float64, np.float32], input_name="X")
        if X.shape[1] != self.n_components:
            raise ValueError(
                f"X has {X.shape[1]} features, but {self.__class__.__name__}.inverse_transform "
                f"is expecting {self.n_components} features (n_components) as input."
            )
        return self._inference(decode, X, self.n_features_in_)

    def _score_samples(self, module, batch):
        return -reconstruction_error(module(batch), batch, self.loss)

    def score_samples(self, X):
        """Per-sample score: the negative reconstruction error (higher is better).

        The error is the one the model is trained on, averaged over features:
        squared error for ``loss="mse"``, binary cross-entropy for
        ``loss="bce"``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Negative reconstruction error of each sample.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skae import AE
        >>> X = load_digits().data[:200] / 16
        >>> ae = AE(n_components=4, max_epochs=2, random_state=0).fit(X)
        >>> scores = ae.score_samples(X[:5])
        >>> scores.shape, bool((scores <= 0).all())
        ((5,), True)
        """
        self._check_fitted()
        X = self._validate(X, reset=False)
        return self._inference(self._score_samples, X, 1)[:, 0]

    def score(self, X, y=None):
        """Mean of :meth:`score_samples` over ``X`` (higher is better).

        This lets ``GridSearchCV`` compare settings without a scorer, as it
        does for :class:`~sklearn.decomposition.PCA`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        score : float
            Mean per-sample score.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_digits
        >>> from skae import AE
        >>> X = load_digits().data[:200] / 16
        >>> ae = AE(n_components=4, max_epochs=2, random_state=0).fit(X)
        >>> bool(np.isclose(ae.score(X), ae.score_samples(X).mean()))
        True
        """
        return float(np.mean(self.score_samples(X)))

    def interpolate(self, x_start, x_end, n_steps=10):
        """Decode evenly spaced points on the straight line between two rows' codes.

        Parameters
        ----------
        x_start, x_end : array-like of shape (n_features,) or (1, n_features)
            The two rows; their codes are :meth:`transform`'s (a VAE's latent means).
        n_steps : int, default=10
            Number of points, both ends included; at least 2.

        Returns
        -------
        X_path : ndarray of shape (n_steps, `n_features_in_`)
            The decoded points, in the rows' dtype: from ``x_start``'s reconstruction
            ``inverse_transform(transform(x_start))`` to ``x_end``'s.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skae import AE
        >>> X = load_digits().data[:200] / 16
        >>> ae = AE(n_components=4, max_epochs=2, random_state=0).fit(X)
        >>> ae.interpolate(X[0], X[1], n_steps=5).shape
        (5, 64)
        """
        start, end, t = interpolation_inputs(x_start, x_end, n_steps)
        a, b = self.transform(start), self.transform(end)
        return self.inverse_transform(((1 - t) * a + t * b).astype(np.result_type(a, b)))

    # -- fitted state (skae.save / skae.load) ----------------------------------

    def _get_fitted_state(self):
        """The fitted estimator as ``(document, tensors)``, for :func:`skae.save`.

        See :func:`skae._state.fitted_state`.
        """
        check_is_fitted(self)
        return fitted_state(self)

    @classmethod
    def _from_fitted_state(cls, document, tensors):
        """Rebuild a fitted estimator from :meth:`_get_fitted_state`'s output.

        See :func:`skae._state.from_fitted_state`.
        """
        return from_fitted_state(cls, document, tensors)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_inference_cache", None)  # float64 copies of the module: rebuilt on use
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "device" in self.__dict__:
            self.device = device_for_loading(self.device, f"{type(self).__name__} was pickled")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.sparse = True
        return tags
