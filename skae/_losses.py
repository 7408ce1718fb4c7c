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
    """:func:`reconstruction_error` averaged over the batch, as one fused op.

    Equal to ``reconstruction_error(out, x, kind).mean()`` (every row has the
    same number of features), with fewer autograd nodes per training step.
    """
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(out["logits"], x)
    return F.mse_loss(out["recon"], x)


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
    return 0.5 * (sq * torch.exp(-logvar) + logvar + LOG_2PI).sum(dim=1)


def kl_standard_normal(mu, logvar):
    """Per-sample ``KL(N(mu, exp(logvar)) || N(0, I))`` in nats."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(dim=1)


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
    sparsity : {None, "l1", "kl"}
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
        penalty = sparsity_penalty(out["code"], self.sparsity, self.sparsity_target)
        return {
            "loss": recon + self.sparsity_weight * penalty,
            "reconstruction": recon,
            "sparsity": penalty,
        }


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
