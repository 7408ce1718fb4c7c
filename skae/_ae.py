"""The vanilla autoencoder."""

from sklearn.utils._param_validation import StrOptions

from skae._base import BaseAutoencoder
from skae._docs import fill_doc
from skae._losses import ReconstructionLoss
from skae._modules import MLPAutoencoder


@fill_doc
class AE(BaseAutoencoder):
    """Autoencoder: a nonlinear, drop-in replacement for PCA.

    An MLP encoder maps each sample to a linear bottleneck of
    ``n_components`` units and a mirrored decoder reconstructs it; both are
    trained by backpropagation (with skorch on PyTorch) to minimise the
    reconstruction loss. ``transform`` returns the codes, ``inverse_transform``
    decodes them, and ``score`` is the negative reconstruction error, so the
    estimator fits in a :class:`~sklearn.pipeline.Pipeline` and
    :class:`~sklearn.model_selection.GridSearchCV` like
    :class:`~sklearn.decomposition.PCA`.

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    {attributes}

    See Also
    --------
    SparseAE : Autoencoder with a sparsity penalty on the code.
    VAE : Variational autoencoder, with sampling and an ELBO score.
    ConvAE : Convolutional autoencoder for images and signals.
    sklearn.decomposition.PCA : The linear baseline.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AE
    >>> X = load_digits().data / 16
    >>> ae = AE(n_components=8, max_epochs=5, random_state=0).fit(X)
    >>> ae.transform(X).shape
    (1797, 8)
    >>> ae.inverse_transform(ae.transform(X[:3])).shape
    (3, 64)
    """

    _parameter_docs = {
        "n_components": """
            n_components : int, default={default}
                Size of the bottleneck (the code), as in PCA.
        """,
        "early_stopping": """
            early_stopping : bool or "auto", default={default}
                If True, hold out ``validation_fraction`` of the rows, stop when the
                validation loss has not improved by a relative ``tol`` for
                ``n_iter_no_change`` epochs, and keep the weights of the best epoch
                (PCA's, for ``init="pca"``, included). With ``init="pca"`` each epoch
                is judged by its validation loss with every row's loss capped at the
                {cap_quantile} quantile of PCA's (``net_.history``'s ``valid_capped``),
                so that a few extreme rows cannot pick the epoch, and the trained
                weights replace PCA's only if their mean loss is lower and their
                per-row log-ratio to PCA's is below zero by a one-sided t-test at level
                {guard_alpha}. If False, train on all rows and stop when the training
                loss plateaus. ``"auto"``: as True when the held-out fraction is at
                least {crossfit_below} rows; with fewer (and ``init="pca"``), the fit
                cross-fits: {crossfit_folds} models, each validated on one fold of the
                rows, choose the epoch and decide against PCA on every row, then one
                model is trained on all rows for the epochs chosen (or PCA's solution
                is kept), at about {crossfit_cost} times the cost; with
                ``init="random"``, as True when the held-out fraction is at least
                {min_valid} rows.
        """,
        "n_iter_no_change": """
            n_iter_no_change : int, default={default}
                Epochs without improvement before stopping.
        """,
    }

    _parameter_constraints: dict = {
        **BaseAutoencoder._parameter_constraints,
        "init": [StrOptions({"pca", "random"})],
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
        n_iter_no_change=20,
        tol=1e-4,
        device="auto",
        random_state=None,
        verbose=0,
        init="pca",
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
        self.init = init

    def _module(self, n_features):
        return MLPAutoencoder, dict(
            n_features=n_features,
            n_components=self.n_components,
            hidden_layer_sizes=self._hidden_layer_sizes(),
            activation=self.activation,
            output_activation=self.output_activation,
            noise=self.noise,
            noise_level=self.noise_level,
            linear_path=self.init == "pca" and self.output_activation is None,
        )

    def _criterion(self):
        return ReconstructionLoss, {"kind": self.loss}, ()
