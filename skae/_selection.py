"""Model selection on validation rows, robust to a few extreme rows.

Pure torch (and scipy's t distribution); nothing here knows about
scikit-learn or skorch. Every function takes per-row validation losses
(1-D tensors, one value per validation row, in the same row order for
every model compared):

- :func:`capped_loss`: the statistic that picks the epoch to keep. It is
  the mean loss with each row's loss capped at :data:`CAP_QUANTILE` of the
  reference's per-row losses (PCA's, for a model with a linear path), so
  that a handful of extreme rows, whose errors swing from epoch to epoch,
  cannot decide it; the quality the estimators report stays the plain mean;
- :func:`beats_reference`: the guard: a trained model may replace its
  reference only if it is better on the validation rows both in the plain
  mean (never worse than PCA where it counts) and, significantly, row by
  row: the mean per-row log-ratio of the two losses must be below zero by
  a one-sided t-test at level :data:`GUARD_ALPHA` — a test that every row
  informs and no row dominates; the epoch kept is the best by the capped
  statistic among the epochs that pass it;
- :func:`hopeless`: whether the folds run so far show no hint of a gain (the
  rest need not run);
- :func:`best_epoch`: the epoch, pooled over the cross-fitting folds, that
  the capped statistic picks among those that beat the reference (0: none
  does), and :func:`cross_fitted_epoch`, its short form.
"""

import math

import torch
from scipy.special import stdtr

#: Each validation row's loss is capped at this quantile of the reference's
#: per-row losses before averaging (:func:`capped_loss`).
CAP_QUANTILE = 0.99

#: One-sided level of the guard's t-test on the per-row log-ratios
#: (:func:`beats_reference`).
GUARD_ALPHA = 0.05

#: The guard also asks the mean loss to be lower than the reference's by at
#: least this many standard errors of the paired per-row differences: one,
#: so that on a small table a gain within the noise of the mean is not taken
#: (a few extreme rows inflate that standard error, so it is not asked more).
GUARD_MEAN_SE = 1.0

#: Cross-fitting: an epoch may replace the reference only if its mean loss is
#: lower in all folds but at most this many.
FOLDS_AGAINST = 1

#: Per-row losses are floored at this fraction of the reference's median loss
#: before taking log-ratios, so that rows both models reconstruct (almost)
#: exactly do not weigh in with the ratio of two rounding errors.
LOG_FLOOR = 1e-3


def loss_cap(reference):
    """The cap of :func:`capped_loss`: :data:`CAP_QUANTILE` of the reference's losses."""
    reference = reference.double()
    if len(reference) == 0:
        return math.inf
    return float(torch.quantile(reference, CAP_QUANTILE))


def capped_loss(losses, cap):
    """Mean of the per-row ``losses``, each capped at ``cap`` (see :func:`loss_cap`)."""
    return float(losses.double().clamp(max=cap).mean())


def beats_reference(losses, reference, alpha=GUARD_ALPHA):
    """Whether per-row ``losses`` are better than the ``reference``'s, in the mean and per row.

    True when the mean of ``losses`` is below the reference's by at least
    :data:`GUARD_MEAN_SE` standard errors of the paired differences, and the
    mean of ``log((losses + f) / (reference + f))`` (``f`` =
    :data:`LOG_FLOOR` times the reference's median) is below zero by a
    one-sided t-test at level ``alpha``. With fewer than two rows nothing
    can be shown: False.
    """
    losses, reference = losses.double(), reference.double()
    n = len(losses)
    if n < 2:
        return False
    diff = losses - reference
    margin = GUARD_MEAN_SE * float(diff.std()) / math.sqrt(n)
    if not float(diff.mean()) + margin < 0.0:
        return False
    floor = LOG_FLOOR * float(reference.median()) + 1e-300
    ratios = torch.log(losses + floor) - torch.log(reference + floor)
    mean, spread = float(ratios.mean()), float(ratios.std())
    if not math.isfinite(mean) or not math.isfinite(spread):
        return False
    if spread == 0.0:
        return mean < 0.0
    return float(stdtr(n - 1, mean / (spread / math.sqrt(n)))) < alpha


def hopeless(curves, references):
    """Whether the folds run so far show not even a hint of a gain over the reference.

    True when no epoch's pooled losses have both a lower mean and a negative
    mean per-row log-ratio than the reference's: the remaining folds need not
    run (cross-fitting then keeps the reference).
    """
    n_epochs = min(len(c) for c in curves)
    pooled = torch.cat([torch.stack(list(c[:n_epochs])) for c in curves], dim=1).double()
    reference = torch.cat(list(references)).double()
    floor = LOG_FLOOR * float(reference.median()) + 1e-300
    better_mean = pooled.mean(dim=1) < reference.mean()
    ratios = (torch.log(pooled + floor) - torch.log(reference + floor)).mean(dim=1)
    return not bool((better_mean & (ratios < 0))[1:].any())


def cross_fitted_epoch(curves, references):
    """The epoch to train a model on all rows for, from cross-fitted curves (0: the reference).

    :func:`best_epoch`'s epoch and ``scores``; ``(0, None)`` without curves.
    """
    if not curves:
        return 0, None
    epoch, scores, _, _ = best_epoch(curves, references)
    return epoch, scores


def best_epoch(curves, references):
    """The epoch the capped statistic picks from cross-fitted curves, and its losses.

    Parameters
    ----------
    curves : list of lists of tensors of shape (n_rows_of_fold,)
        Per fold, the per-row validation losses of the initial weights
        (first) and of each epoch's weights.
    references : list of tensors of shape (n_rows_of_fold,)
        Per fold, the reference's per-row losses on the same rows.

    Returns
    -------
    epoch : int
        Among the epochs every fold ran that beat the reference on all rows
        (:func:`beats_reference`) and in all folds but
        :data:`FOLDS_AGAINST` (a lower mean loss), the one with the lowest
        capped loss; 0 (the initial weights) when none does.
    scores : ndarray of shape (n_epochs + 1,)
        The plain mean loss over all rows of each epoch.
    losses, reference : tensors of shape (n_rows,)
        All rows' losses at ``epoch``, and the reference's.
    """
    n_epochs = min(len(c) for c in curves)
    folds = [torch.stack(list(c[:n_epochs])).double() for c in curves]
    pooled = torch.cat(folds, dim=1)
    reference = torch.cat(list(references)).double()
    cap = loss_cap(reference)
    capped = pooled.clamp(max=cap).mean(dim=1)
    fold_means = torch.stack([f.mean(dim=1) for f in folds])  # (n_folds, n_epochs)
    reference_means = torch.stack([r.double().mean() for r in references])
    wins = (fold_means < reference_means[:, None]).sum(dim=0)
    epoch, best = 0, math.inf
    for e in range(1, n_epochs):
        loss = float(capped[e])
        if not (math.isfinite(loss) and loss < best):
            continue
        if int(wins[e]) >= len(folds) - FOLDS_AGAINST and beats_reference(pooled[e], reference):
            epoch, best = e, loss
    return epoch, pooled.mean(dim=1).numpy(), pooled[epoch], reference


def lower_mean(losses, reference, n_se):
    """Whether the mean of ``losses`` is below the reference's by ``n_se`` standard errors.

    The standard error is that of the paired differences. This is the guard
    where the mean is the measure that counts (an imputer's squared error per
    cell): a gain on a few rare cells (the rare values of a sparse column)
    counts in full, where :func:`beats_reference` would ask for a gain on the
    typical cell. With fewer than two values: False.
    """
    diff = losses.double() - reference.double()
    if len(diff) < 2:
        return False
    se = float(diff.std()) / math.sqrt(len(diff))
    return float(diff.mean()) < -n_se * se
