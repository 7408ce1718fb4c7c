"""Loss terms and criteria, in pure PyTorch.

Per-sample functions return one value per row; they serve both training (the
criteria average them over the batch) and scoring (``score_samples``).

Criteria are plain callables (not ``nn.Module``: a parameterless module breaks
multi-process Accelerate) that return a ``dict`` of named terms; ``"loss"`` is
the total that is minimised, every other key is logged per epoch.
"""

import math

import torch
from torch.nn import functional as F

LOG_2PI = math.log(2.0 * math.pi)
# As a float64 tensor: torch's ONNX (dynamo) exporter rounds Python float
# constants to float32 even in float64 graphs; a tensor constant keeps its value.
_LOG_2PI = torch.tensor(LOG_2PI, dtype=torch.float64)


def reconstruction_error(out, x, kind):
    """Per-sample reconstruction error, averaged over features.

    ``kind="mse"``: mean squared error; ``kind="bce"``: binary cross-entropy
    computed from the decoder's logits (numerically stable).
    """
    if kind == "bce":
        err = F.binary_cross_entropy_with_logits(out["logits"], x, reduction="none")
    else:
        err = (out["recon"] - x).square()
    return err.mean(dim=1)


def mean_reconstruction_error(out, x, kind):
    """The training reconstruction loss of a batch, as one fused op.

    ``kind="bce"``: the mean binary cross-entropy. ``kind="mse"``: the mean
    squared error divided by ``out["scale"] ** 2`` (the data's global scale,
    when the module reports one), i.e. on data of unit mean variance: the
    fraction of the variance left unexplained. Training on this scale makes
    the loss (and the optimiser's steps) independent of the data's units.
    """
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(out["logits"], x)
    error = F.mse_loss(out["recon"], x)
    return error / out["scale"].square() if "scale" in out else error


def sample_losses(out, x, kind):
    """Per-sample version of :func:`mean_reconstruction_error` (its mean is that loss)."""
    error = reconstruction_error(out, x, kind)
    if kind == "mse" and "scale" in out:
        error = error / out["scale"].square()
    return error


def negative_log_likelihood(out, x, kind):
    """Per-sample ``-log p(x | z)`` in nats, summed over features.

    ``kind="bce"``: Bernoulli likelihood, ``sum_j BCE(x_j, p_j)`` with no
    normalising constant (exact for binary data; the usual convention for
    grey-level images). ``kind="mse"``: Gaussian likelihood with the decoder
    mean and a learned shared variance ``s2``,
    ``sum_j 0.5 * ((x_j - mu_j)**2 / s2 + log s2 + log(2 pi))``, constants
    included.
    """
    if kind == "bce":
        nll = F.binary_cross_entropy_with_logits(out["logits"], x, reduction="none")
        return nll.sum(dim=1)
    logvar = out["obs_logvar"]
    sq = (out["recon"] - x).square()
    log_2pi = _LOG_2PI.to(dtype=sq.dtype, device=sq.device)
    return 0.5 * (sq * torch.exp(-logvar) + logvar + log_2pi).sum(dim=1)


def kl_standard_normal(mu, logvar):
    """Per-sample ``KL(N(mu, exp(logvar)) || N(0, I))`` in nats."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(dim=1)


def dead_unit_penalty(pre):
    """Push up the units that are inactive on every row of the batch.

    ``pre`` holds the code's pre-activations (before the ReLU). A unit whose
    pre-activation is negative on every row gets no gradient from the
    reconstruction, and an L1 penalty would keep it there: a dead unit. This
    term is ``mean_j relu(-max_i pre[i, j])``: zero for every unit active on
    at least one row of the batch, and otherwise a gradient raising the
    unit's largest pre-activation back to zero, so units stay alive however
    strong the sparsity penalty.
    """
    return torch.relu(-pre.max(dim=0).values).mean()


def unselected_unit_penalty(pre, code):
    """Pull up the units of a k-sparse code that no row of the batch selected.

    A :class:`skae._modules.TopK` unit that is never among a row's ``k``
    largest gets no gradient from the reconstruction: a dead unit. This term
    is the dead-unit term of the L1 code (:func:`dead_unit_penalty`) with the
    bar at each row's smallest selected pre-activation instead of 0: for each
    unit selected by no row, the gap to the bar on the row where it is
    closest (averaged over all units), so it is zero when every unit serves
    some row of the batch.
    """
    selected = code > 0
    bar = torch.where(selected, pre, torch.full_like(pre, math.inf)).min(dim=1).values
    bar = torch.where(torch.isfinite(bar), bar, torch.zeros_like(bar)).clamp(min=0)
    gap = torch.relu(bar[:, None] - pre).min(dim=0).values
    return (gap * ~selected.any(dim=0)).mean()


def sparsity_penalty(code, kind, target=0.05):
    """Batch sparsity penalty on the code, averaged over code units.

    ``kind="l1"``: mean absolute activation (L1 activity penalty).
    ``kind="kl"``: ``KL(target || mean activation)`` between Bernoulli
    distributions, for code units in (0, 1) (sigmoid).
    """
    if kind == "l1":
        return code.abs().mean()
    rho_hat = code.mean(dim=0).clamp(1e-6, 1.0 - 1e-6)
    rho = target
    kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
    return kl.mean()


class ReconstructionLoss:
    """Mean reconstruction error, plus an optional sparsity penalty on the code.

    Parameters
    ----------
    kind : {"mse", "bce"}
    sparsity : {None, "l1", "kl", "topk"}
        For ``"topk"`` the code is sparse by construction
        (:class:`skae._modules.TopK`): the ``sparsity`` term is
        :func:`unselected_unit_penalty`, and ``sparsity_weight`` and
        ``sparsity_target`` are not used.
    sparsity_weight : float
    sparsity_target : float
    """

    def __init__(self, kind="mse", sparsity=None, sparsity_weight=0.0, sparsity_target=0.05):
        self.kind = kind
        self.sparsity = sparsity
        self.sparsity_weight = sparsity_weight
        self.sparsity_target = sparsity_target

    def __call__(self, out, x):
        recon = mean_reconstruction_error(out, x, self.kind)
        if self.sparsity is None:
            return {"loss": recon}
        if self.sparsity == "topk":
            penalty = unselected_unit_penalty(out["code_pre"], out["code"])
            return {"loss": recon + penalty, "reconstruction": recon, "sparsity": penalty}
        penalty = sparsity_penalty(out["code"], self.sparsity, self.sparsity_target)
        loss = recon + self.sparsity_weight * penalty
        if self.sparsity == "l1":
            loss = loss + dead_unit_penalty(out["code_pre"])
        return {"loss": loss, "reconstruction": recon, "sparsity": penalty}

    def per_sample(self, out, x):
        """Per-sample reconstruction loss (for comparing models row by row)."""
        return sample_losses(out, x, self.kind)


class ELBOLoss:
    """Negative evidence lower bound, ``E[-log p(x|z)] + beta * KL``, per sample.

    Parameters
    ----------
    kind : {"mse", "bce"}
    beta : float
    """

    def __init__(self, kind="bce", beta=1.0):
        self.kind = kind
        self.beta = beta

    def __call__(self, out, x):
        nll = negative_log_likelihood(out, x, self.kind).mean()
        kl = kl_standard_normal(out["mu"], out["logvar"]).mean()
        return {"loss": nll + self.beta * kl, "reconstruction": nll, "kl": kl}

    def per_sample(self, out, x):
        """Per-sample negative ELBO (one draw of z)."""
        nll = negative_log_likelihood(out, x, self.kind)
        return nll + self.beta * kl_standard_normal(out["mu"], out["logvar"])


class MaskedLoss:
    """Squared error on the cells a module weights (:class:`skae._modules.MaskedImputer`).

    The loss is ``sum(weight * (recon - target) ** 2) / (n_cells * rate)``:
    the mean squared error per weighted cell, normalised by the expected
    fraction of weighted cells (``rate``) rather than by the batch's own
    count, so that the mean of :meth:`per_sample` over rows is the loss.
    """

    def __call__(self, out, x):
        return {"loss": self.per_sample(out, x).mean()}

    def per_sample(self, out, x):
        """Per-row sum of weighted squared errors over ``n_features * rate``."""
        error = (out["weight"] * (out["recon"] - out["target"]).square()).sum(dim=1)
        return error / (out["recon"].shape[1] * max(out["rate"], 1e-12))
