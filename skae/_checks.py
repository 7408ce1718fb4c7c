"""Checks of an estimator's parameters against its data, and warnings on a fit's outcome.

The estimator base (:mod:`skae._base`) calls these with the estimator:

- :func:`check_against_data` raises a ``ValueError`` naming the remedy when
  a parameter cannot work with the data (its size, its value range);
- :func:`warn_code_size` warns when a code is as wide as the input;
- :func:`warn_outcome` warns, with the remedy, when training ended in a
  degenerate state (dead code units, no progress, a code that keeps less
  of the data's variance than the estimator's ``_min_kept_variance``).

Nothing here imports scikit-learn or skorch.
"""

import warnings

import numpy as np
import torch

_FLOAT32_MAX = float(np.finfo(np.float32).max)

#: Rows whose codes :func:`warn_outcome` inspects.
OUTCOME_ROWS = 2048


def kept_variance(rows, recon):
    """Fraction of the rows' total variance that the reconstructions keep.

    ``1 - sum of squared errors / sum of squared deviations from the column
    means`` (the explained variance), in the data's units; 1 for constant rows.
    """
    rows, recon = rows.double(), recon.double()
    total = float((rows - rows.mean(dim=0)).square().sum())
    if total <= 0:
        return 1.0
    return 1.0 - float((rows - recon).square().sum()) / total


def check_against_data(estimator, n_samples, low, high):
    """Checks of ``estimator``'s parameters against the data's size and value range."""
    if estimator.noise == "mask" and estimator.noise_level >= 1:
        raise ValueError(
            f"noise='mask' drops entries with probability noise_level, which must be "
            f"< 1; got noise_level={estimator.noise_level}."
        )
    if estimator.loss == "bce":
        if estimator.output_activation != "sigmoid":
            raise ValueError(
                "loss='bce' models each feature as a probability: it needs "
                f"output_activation='sigmoid', got {estimator.output_activation!r}."
            )
        if low < 0 or high > 1:
            raise ValueError(
                f"loss='bce' needs data in [0, 1]; got values in [{low:.4g}, {high:.4g}]. "
                "Scale the data (e.g. MinMaxScaler) or use loss='mse'."
            )
    if max(abs(low), abs(high)) > _FLOAT32_MAX:
        raise ValueError(
            "X holds values too large for float32 training (|x| > 3.4e38). "
            "Scale the data first (e.g. StandardScaler)."
        )
    fraction = estimator.validation_fraction
    if estimator.early_stopping is True and (n_samples < 2 or round(fraction * n_samples) < 1):
        raise ValueError(
            f"early_stopping=True holds out validation_fraction={fraction} "
            f"of {n_samples} samples, which is less than one sample. Use more data, a "
            "larger validation_fraction, or early_stopping=False."
        )


def warn_code_size(estimator):
    """Warn when the code is as wide as the input (unless it may be overcomplete)."""
    if estimator._overcomplete or estimator.n_components < estimator.n_features_in_:
        return
    warnings.warn(
        f"n_components={estimator.n_components} >= n_features={estimator.n_features_in_}: the "
        f"code is at least as wide as the input, so {type(estimator).__name__} can learn to "
        "copy its input instead of compressing it. Use n_components < n_features, or SparseAE "
        "for an overcomplete code.",
        UserWarning,
        stacklevel=5,  # the caller of fit / partial_fit (through sklearn's _fit_context)
    )


def constant_units(codes):
    """Mask of the code units that are constant over ``codes``' rows."""
    spread = codes.std(dim=0) if len(codes) > 1 else codes.abs().max(dim=0).values
    return spread <= 1e-6 * max(float(spread.max()), 1e-30)


def warn_outcome(estimator, dataset):
    """Warn, with a remedy, when training ended in a degenerate state.

    - Dead code units (``estimator._dead_units``): units constant over the
      training rows carry no information (e.g. ReLU units that never fire).
    - No progress: the training loss never went below its first epoch's.
    """
    module = estimator.net_.module_
    rows = next(dataset.batches(OUTCOME_ROWS, shuffle=False))
    with torch.inference_mode():
        codes = module.encode(rows).float()
    name = type(estimator).__name__
    dead = int(estimator._dead_units(codes).sum()) if len(codes) > 1 else 0
    if dead:
        warnings.warn(
            f"{dead} of {codes.shape[1]} code units of {name} are dead: constant over the "
            "training data, so they carry no information. " + estimator._dead_units_remedy(),
            UserWarning,
            stacklevel=4,  # the caller of fit (through sklearn's _fit_context)
        )
    floor = estimator._min_kept_variance
    if floor is not None and len(rows) > 1:
        with torch.inference_mode():
            kept = kept_variance(rows, module.decode(module.encode(rows)))
        if kept < floor:
            warnings.warn(
                f"The code of {name} keeps only {max(kept, 0.0):.0%} of the training data's "
                f"variance (it loses {1 - max(kept, 0.0):.0%}): a classifier or a "
                "reconstruction downstream gets little of the data's information. "
                + estimator._lost_variance_remedy(),
                UserWarning,
                stacklevel=4,  # the caller of fit (through sklearn's _fit_context)
            )
    curve = estimator.loss_curve_
    if len(curve) < 3 or not np.all(np.isfinite(curve)):
        return
    if curve.min() >= curve[0] - abs(curve[0]) * max(estimator.tol, 1e-6):
        warnings.warn(
            f"{name} made no progress: the training loss never went below its first epoch's "
            f"({curve[0]:.4g}) by more than a relative tol. Try another lr (lr='auto' sizes it "
            "to the batch), more epochs (max_epochs), or check the data (e.g. constant "
            "features).",
            UserWarning,
            stacklevel=4,  # the caller of fit (through sklearn's _fit_context)
        )
