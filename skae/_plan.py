"""The training plan: how skae sizes training that is left to ``"auto"``.

Pure arithmetic on a few numbers (rows, the model's multiply-adds per row,
the estimator's parameters); nothing here imports scikit-learn, skorch or
torch. Every number that sizes training lives here, and the documentation
renders these constants (:mod:`skae._docs`), so the docs cannot drift from
the code:

- :func:`training_plan` resolves an estimator's ``batch_size``, ``lr``,
  ``max_epochs`` and ``early_stopping`` (``"auto"`` or given) to the values
  a fit uses, with the validation split and the learning-rate schedule's
  steps;
- :func:`detector_plan` sizes the autoencoder that
  :class:`skae.AEOutlierDetector` trains when ``estimator=None``.

Estimators of different kinds may need different numbers: an estimator's
``_plan_kind`` (``"dense"`` or ``"conv"``) selects its entries in the
per-kind tables (:data:`AUTO_BUDGET`, :data:`LINEAR_PATH_LR_SCALE`);
:class:`skae.AEImputer` plans as kind ``"imputer"`` (its budget only).
"""

import math

from skae._data import n_holdout

#: ``batch_size="auto"``: about this many optimiser steps per epoch, with a
#: batch of a power of two rows within AUTO_BATCH (larger batches for more
#: rows: on a CPU a step's fixed cost dominates small batches), and at most
#: about AUTO_BATCH_WORK / (the model's multiply-adds per row) rows (but at
#: least AUTO_BATCH_WIDE): a costly model gains no speed from larger
#: batches, only fewer steps.
AUTO_STEPS_PER_EPOCH = 16
AUTO_BATCH = (32, 512)
AUTO_BATCH_WORK = 1.2e8
AUTO_BATCH_WIDE = 64

#: ``lr="auto"``: this rate at AUTO_BATCH[0] rows per step, growing as the square
#: root of the batch size (e.g. 2.8e-3 at 64 rows, 8e-3 at 512), per optimiser.
AUTO_LR = {"adam": 2e-3, "adamw": 2e-3, "rmsprop": 2e-3, "sgd": 2e-2}

#: ``max_epochs="auto"``: epochs such that training costs about AUTO_BUDGET
#: multiply-adds (rows x the module's multiply-adds per row x epochs), within
#: AUTO_EPOCHS: narrow data get the most epochs, wide data or many rows fewer.
#: By estimator kind: convolutions learn more slowly per multiply-add than
#: dense layers, so ``"conv"`` gets a larger budget. :class:`skae.AEImputer`
#: (``"imputer"``, the cost counting each of its passes) needs less: with its
#: schedule, half as many epochs on the wide tables (SpamBase, digits) imputed
#: as well, in half the time.
AUTO_BUDGET = {"dense": 1.4e11, "conv": 5e11, "imputer": 2e10}
AUTO_EPOCHS = (10, 100)

#: Fraction of the optimiser steps over which the learning rate warms up.
WARMUP_FRACTION = 0.05

#: Learning-rate multiplier of a linear path started at PCA's solution, by
#: estimator kind: it is already a good solution, the nonlinear branches have
#: everything to learn. ``"conv"`` keeps PCA's solution as a fixed reference.
LINEAR_PATH_LR_SCALE = {"dense": 0.3, "conv": 0.0}

#: ``early_stopping="auto"`` holds out a validation set when it gets at least
#: this many rows.
AUTO_MIN_VALID = 2

#: ``early_stopping="auto"`` for an estimator whose model must beat a
#: reference (``AE``'s PCA start): when the held-out fraction would be fewer
#: than CROSSFIT_BELOW rows, too few to show a real gain over PCA (or to
#: choose an epoch), the fit cross-fits instead: CROSSFIT_FOLDS models, each
#: validated on one fold of the rows, so that every row is validated once;
#: then one model is trained on all rows for the epochs chosen (or PCA is
#: kept). At least two rows per fold.
CROSSFIT_BELOW = 100
CROSSFIT_FOLDS = 5

#: Whether an estimator kind may cross-fit (with a reference to beat):
#: convolutional networks are too costly to train CROSSFIT_FOLDS + 1 times.
CROSSFIT = {"dense": True, "conv": False}

#: ``AEOutlierDetector(estimator=None)``: an AE with a hidden layer of
#: DETECTOR_HIDDEN units and a code of ``n_features // DETECTOR_CODE_RATIO``
#: units within 1..DETECTOR_MAX_CODE, trained with Adam (DETECTOR_LR, batches
#: of DETECTOR_BATCH rows) for about DETECTOR_STEPS optimiser steps, whatever
#: the number of rows, but at most AE's own cap for ``max_epochs="auto"``
#: (``AUTO_EPOCHS[1]``): longer, it memorises a few hundred training rows, and
#: the threshold set on their scores flags most new inliers.
DETECTOR_HIDDEN = (128,)
DETECTOR_CODE_RATIO = 4
DETECTOR_MAX_CODE = 16
DETECTOR_STEPS = 3000
DETECTOR_BATCH = 32
DETECTOR_LR = 1e-3

#: ``AEOutlierDetector(calibration="auto")``: on at most CALIBRATION_MAX_ROWS
#: training rows, which an autoencoder partly memorises, the threshold is set
#: on cross-fitted scores (each row scored by a detector trained on the
#: CALIBRATION_FOLDS - 1 other folds), at least CALIBRATION_MIN_ROWS rows.
#: Above it the training scores are used (and a float ``contamination`` flags
#: exactly that fraction of the training rows, as scikit-learn's detectors do).
CALIBRATION_FOLDS = 3
CALIBRATION_MIN_ROWS = 20
CALIBRATION_MAX_ROWS = 256

#: ``AEOutlierDetector(score_type="ensemble")``: each part's training scores
#: are kept as at most this many cut points (the p-values' resolution).
ENSEMBLE_QUANTILES = 1000


def training_plan(
    n_samples,
    cost,
    *,
    kind,
    batch_size,
    lr,
    max_epochs,
    optimizer,
    early_stopping,
    validation_fraction,
    crossfit=False,
):
    """Resolve the training parameters of a fit on ``n_samples`` rows.

    Parameters
    ----------
    n_samples : int
        Rows of the training data (before the validation split).
    cost : int
        The module's multiply-adds per row.
    kind : {"dense", "conv", "imputer"}
        The estimator's kind (its entry in :data:`AUTO_BUDGET`).
    batch_size, lr, max_epochs : int, float or "auto"
        The estimator's parameters.
    optimizer : str
        The optimiser's name (a key of :data:`AUTO_LR`).
    early_stopping : bool or "auto"
        The estimator's parameter.
    validation_fraction : float
        Fraction of the rows held out when early stopping is on.
    crossfit : bool, default=False
        Whether the estimator may cross-fit (see :data:`CROSSFIT_BELOW`).

    Returns
    -------
    plan : dict
        ``n_valid`` (rows held out, 0 for none; per fold when cross-fitting),
        ``folds`` (the number of cross-fitting folds, 0 for none),
        ``batch_size``, ``lr``, ``max_epochs``, ``total_steps`` and
        ``warmup_steps`` (of one model trained on ``n_samples - n_valid``
        rows).
    """
    n_valid, folds = 0, 0
    if early_stopping is True:
        n_valid = n_holdout(validation_fraction, n_samples)
    elif early_stopping == "auto":
        candidate = n_holdout(validation_fraction, n_samples)
        if crossfit and candidate < CROSSFIT_BELOW and n_samples >= 2 * CROSSFIT_FOLDS:
            folds, n_valid = CROSSFIT_FOLDS, n_samples // CROSSFIT_FOLDS
        elif candidate >= AUTO_MIN_VALID and n_samples - candidate >= 1:
            n_valid = candidate
    n_train = n_samples - n_valid
    if batch_size == "auto":
        power = round(math.log2(max(1.0, n_train / AUTO_STEPS_PER_EPOCH)))
        largest = 2 ** round(math.log2(max(1.0, AUTO_BATCH_WORK / max(1, cost))))
        largest = min(AUTO_BATCH[1], max(AUTO_BATCH_WIDE, largest))
        batch_size = int(min(largest, max(AUTO_BATCH[0], 2**power)))
    if lr == "auto":
        lr = AUTO_LR[optimizer] * math.sqrt(batch_size / AUTO_BATCH[0])
    else:
        lr = float(lr)
    steps_per_epoch = math.ceil(n_train / batch_size)
    if max_epochs == "auto":
        epochs = AUTO_BUDGET[kind] / (max(1, n_train) * max(1, cost))
        max_epochs = int(min(AUTO_EPOCHS[1], max(AUTO_EPOCHS[0], round(epochs))))
    total_steps = max_epochs * steps_per_epoch
    return {
        "n_valid": n_valid,
        "folds": folds,
        "batch_size": batch_size,
        "lr": lr,
        "max_epochs": max_epochs,
        "total_steps": total_steps,
        "warmup_steps": int(WARMUP_FRACTION * total_steps),
    }


def detector_plan(n_samples, n_features):
    """The size and training of the detector's default autoencoder (see DETECTOR_STEPS).

    Parameters
    ----------
    n_samples : int
        Number of training rows; the epochs are sized from it.
    n_features : int
        Number of features; the code size is sized from it.

    Returns
    -------
    params : dict
        ``n_components``, ``hidden_layer_sizes``, ``max_epochs``,
        ``batch_size`` and ``lr``: parameters of :class:`skae.AE`.
    """
    steps_per_epoch = max(1, math.ceil(n_samples / DETECTOR_BATCH))
    return {
        "n_components": int(min(DETECTOR_MAX_CODE, max(1, n_features // DETECTOR_CODE_RATIO))),
        "hidden_layer_sizes": DETECTOR_HIDDEN,
        "max_epochs": max(1, min(AUTO_EPOCHS[1], math.ceil(DETECTOR_STEPS / steps_per_epoch))),
        "batch_size": DETECTOR_BATCH,
        "lr": DETECTOR_LR,
    }


#: :class:`skae.AEImputer`'s ``hidden_layer_sizes="auto"``: two layers of
#: ``2 * n_features`` units, clipped to IMPUTER_HIDDEN.
IMPUTER_HIDDEN = (64, 256)

#: :class:`skae.AEImputer` decides against the column mean only on at least
#: this many held-out cells; with fewer it imputes the column means.
IMPUTER_MIN_VALID_CELLS = 10

#: :class:`skae.AEImputer` keeps its network only if, on the held-out cells,
#: its mean squared error is below the column mean's by at least this many
#: standard errors of the per-cell differences.
IMPUTER_GUARD_SE = 2.0
