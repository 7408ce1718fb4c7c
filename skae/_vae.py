"""The variational autoencoder."""

from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, validate_params
from sklearn.utils.validation import check_is_fitted

from skae._base import BaseAutoencoder
from skae._docs import fill_doc
from skae._losses import ELBOLoss, kl_standard_normal, negative_log_likelihood
from skae._modules import VariationalAutoencoder
from skae._utils import make_seed

#: Monte-Carlo draws of z per sample when estimating the ELBO in ``score_samples``.
N_ELBO_DRAWS = 16

#: elbo_draws' tensors, by (n_components, dtype).
_ELBO_DRAWS = {}


def elbo_draws(n_components, dtype):
    """The ``N_ELBO_DRAWS`` standard-normal draws shared by every row (seed 0), in ``dtype``.

    Drawn once per ``(n_components, dtype)`` and kept, as ordinary tensors
    (even when first drawn in inference mode). A module that uses them is
    traced (for ONNX export) only after an eager call, so a trace holds them
    as constants instead of a random-number node.
    """
    key = (int(n_components), dtype)
    draws = _ELBO_DRAWS.get(key)
    if draws is None:
        if torch.compiler.is_compiling() or torch.jit.is_tracing():
            raise RuntimeError(
                "The VAE's ELBO draws are made eagerly: run the scoring function once "
                "before tracing or exporting it."
            )
        with torch.inference_mode(False):
            generator = torch.Generator().manual_seed(0)
            draws = torch.randn(N_ELBO_DRAWS, key[0], generator=generator, dtype=dtype)
        _ELBO_DRAWS[key] = draws
    return draws


@fill_doc
class VAE(BaseAutoencoder):
    """Variational autoencoder, with sampling and an ELBO score.

    The encoder outputs the mean and log-variance of a diagonal Gaussian
    posterior ``q(z|x)`` over ``n_components`` latent dimensions; training
    draws ``z`` with the reparameterisation trick and minimises the negative
    evidence lower bound ``E_q[-log p(x|z)] + beta * KL(q(z|x) || N(0, I))``
    (per sample, in nats). The latent space is continuous by design, so
    :meth:`sample` generates new data and :meth:`inverse_transform`
    decodes any latent point.

    Likelihoods, with exactly these constants:

    - ``loss="bce"``: Bernoulli, ``-log p(x|z) = sum_j BCE(x_j, p_j)``
      without a normalising constant (exact for binary data; the usual
      convention for grey-level images in [0, 1]). Needs
      ``output_activation="sigmoid"``.
    - ``loss="mse"``: Gaussian with the decoder output as mean and one
      learned variance ``s2`` shared by all features,
      ``-log p(x|z) = sum_j 0.5 * ((x_j - mu_j)**2 / s2 + log s2 + log 2 pi)``,
      all constants included.

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    {attributes}

    See Also
    --------
    AE : Deterministic autoencoder.
    sklearn.decomposition.PCA : Probabilistic PCA is the linear Gaussian VAE.

    Notes
    -----
    ``transform`` returns the posterior mean, so it is deterministic. The
    per-epoch history holds the reconstruction and KL terms separately
    (``train_reconstruction``, ``train_kl``). Log-variances are clamped to
    [-12, 12] for numerical safety.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import VAE
    >>> X = load_digits().data / 16
    >>> vae = VAE(n_components=2, loss="bce", output_activation="sigmoid",
    ...           max_epochs=5, random_state=0).fit(X)
    >>> vae.transform(X[:4]).shape
    (4, 2)
    >>> vae.sample(3, random_state=0).shape
    (3, 64)
    """

    _parameter_docs = {
        "n_components": """
            n_components : int, default={default}
                Number of latent dimensions.
        """,
        "beta": """
            beta : float, default={default}
                Weight of the KL term: 1 is the standard VAE, other values give a
                beta-VAE.
        """,
    }

    _parameter_constraints: dict = {
        **BaseAutoencoder._parameter_constraints,
        "beta": [Interval(Real, 0, None, closed="left")],
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
        beta=1.0,
    ):
        super().__init__(
            n_components=n_components,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            output_activation=output_activation,
            loss=loss,
            noise=noise,
            noise_level=noise_level,
            max_epochs=max_epochs,
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer,
            weight_decay=weight_decay,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            device=device,
            random_state=random_state,
            verbose=verbose,
        )
        self.beta = beta

    def _module(self, n_features):
        return VariationalAutoencoder, dict(
            n_features=n_features,
            n_components=self.n_components,
            hidden_layer_sizes=self._hidden_layer_sizes(),
            activation=self.activation,
            output_activation=self.output_activation,
            noise=self.noise,
            noise_level=self.noise_level,
            learn_scale=self.loss == "mse",
        )

    def _criterion(self):
        return ELBOLoss, {"kind": self.loss, "beta": self.beta}, ("reconstruction", "kl")

    def _score_samples(self, module, batch):
        # ELBO = E_q[log p(x|z)] - KL. The expectation is estimated with the same
        # N_ELBO_DRAWS standard-normal draws for every row (common random numbers),
        # so the score is deterministic and, up to float rounding, independent of how
        # rows are batched. The draws are computed once per (width, dtype), outside
        # any trace, so an ONNX export holds them as constants in its own dtype.
        mu, logvar = module.posterior(batch)
        eps = elbo_draws(mu.shape[1], mu.dtype).to(mu.device)
        std = torch.exp(0.5 * logvar)
        nll = torch.zeros_like(mu[:, 0])  # not len(batch): keeps the batch size symbolic
        for e in eps:
            nll += negative_log_likelihood(module.likelihood(mu + std * e), batch, self.loss)
        return -(nll / N_ELBO_DRAWS + kl_standard_normal(mu, logvar))

    def score_samples(self, X):
        """Per-sample evidence lower bound (ELBO), in nats.

        A lower bound on ``log p(x)``, the analogue of
        :meth:`sklearn.decomposition.PCA.score_samples`' log-likelihood.
        The KL term is exact; the reconstruction expectation is estimated
        with 16 fixed draws of ``z`` shared by all rows, so the score is
        deterministic.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        elbo : ndarray of shape (n_samples,)
            ELBO of each sample (higher is better).

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skae import VAE
        >>> X = load_digits().data[:200] / 16
        >>> vae = VAE(n_components=2, loss="bce", output_activation="sigmoid",
        ...           max_epochs=2, random_state=0).fit(X)
        >>> vae.score_samples(X[:3]).shape
        (3,)
        """
        return super().score_samples(X)

    @validate_params(
        {
            "n_samples": [Interval(Integral, 1, None, closed="left")],
            "random_state": ["random_state"],
        },
        prefer_skip_nested_validation=True,
    )
    def sample(self, n_samples=1, random_state=None):
        """Generate samples: draw ``z ~ N(0, I)`` and decode it.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples to generate.

        random_state : int, RandomState instance or None, default=None
            Seeds the draw of ``z``; an int makes the output reproducible.
            Global random states are not changed.

        Returns
        -------
        X : ndarray of shape (n_samples, `n_features_in_`)
            Generated samples in input space (the decoder mean).

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skae import VAE
        >>> X = load_digits().data[:200] / 16
        >>> vae = VAE(n_components=2, loss="bce", output_activation="sigmoid",
        ...           max_epochs=2, random_state=0).fit(X)
        >>> vae.sample(4, random_state=0).shape
        (4, 64)
        """
        check_is_fitted(self)
        seed = make_seed(random_state)
        generator = torch.Generator().manual_seed(seed)
        z = torch.randn(n_samples, self.n_components, generator=generator, dtype=torch.float64)
        return self.inverse_transform(z.numpy())
