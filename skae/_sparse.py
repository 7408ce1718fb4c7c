"""The sparse autoencoder."""

from numbers import Real

from sklearn.utils._param_validation import Interval, StrOptions

from skae._base import BaseAutoencoder
from skae._docs import fill_doc
from skae._losses import ReconstructionLoss
from skae._modules import MLPAutoencoder

#: Fitting warns when the sparse code's reconstructions keep less than this fraction
#: of the training data's variance.
MIN_KEPT_VARIANCE = 0.5


@fill_doc
class SparseAE(BaseAutoencoder):
    """Sparse autoencoder: an autoencoder with a sparsity penalty on the code.

    The penalty makes few code units active for each sample, so the code
    can be *overcomplete* (``n_components > n_features``) and still
    informative, as in dictionary learning.

    - ``sparsity="l1"``: the code units are ReLU and the loss adds
      ``sparsity_weight * mean(|code|)`` (the L1 activity penalty).
    - ``sparsity="kl"``: the code units are sigmoid and the loss adds
      ``sparsity_weight * mean_j KL(sparsity_target || mean activation of
      unit j)``, the Bernoulli KL between the target and the batch mean.

    The reconstruction and sparsity terms are logged separately in
    ``net_.history`` (``train_reconstruction``, ``train_sparsity``).

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    {attributes}

    See Also
    --------
    AE : The autoencoder without a sparsity penalty.
    sklearn.decomposition.DictionaryLearning : Sparse coding, linear.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import SparseAE
    >>> X = load_digits().data / 16
    >>> sae = SparseAE(n_components=128, max_epochs=5, random_state=0).fit(X)
    >>> sae.transform(X).shape
    (1797, 128)
    >>> bool((sae.transform(X) >= 0).all())
    True
    """

    _parameter_docs = {
        "n_components": """
            n_components : int, default={default}
                Number of code units; may exceed the number of features.
        """,
        "hidden_layer_sizes": """
            hidden_layer_sizes : tuple of int, default={default}
                Widths of the encoder's hidden layers; the decoder mirrors them.
                The default ``()`` makes each code unit one ReLU (or sigmoid) of a
                linear map of the input, as in sparse coding, with a linear
                decoder: on every labelled set of ``benchmarks/suite.py`` its code
                served an SVC better than a code behind a hidden layer did.
        """,
        "sparsity": """
            sparsity : {"l1", "kl"}, default={default}
                The sparsity penalty.
        """,
        "sparsity_weight": """
            sparsity_weight : float, default={default}
                Weight of the sparsity penalty in the loss.
        """,
        "sparsity_target": """
            sparsity_target : float, default={default}
                Target mean activation of each code unit for ``sparsity="kl"``.
        """,
    }

    _overcomplete = True  # sparsity keeps a code wider than the input informative

    #: A sparse code that keeps less of the training data's variance than this
    #: warns (issue 25: it has lost what a classifier downstream would need).
    _min_kept_variance = MIN_KEPT_VARIANCE

    _parameter_constraints: dict = {
        **BaseAutoencoder._parameter_constraints,
        "sparsity": [StrOptions({"l1", "kl"})],
        "sparsity_weight": [Interval(Real, 0, None, closed="left")],
        "sparsity_target": [Interval(Real, 0, 1, closed="neither")],
    }

    def __init__(
        self,
        n_components=128,
        *,
        hidden_layer_sizes=(),
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
        sparsity="l1",
        sparsity_weight=0.25,
        sparsity_target=0.05,
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
        self.sparsity = sparsity
        self.sparsity_weight = sparsity_weight
        self.sparsity_target = sparsity_target

    def _module(self, n_features):
        return MLPAutoencoder, dict(
            n_features=n_features,
            n_components=self.n_components,
            hidden_layer_sizes=self._hidden_layer_sizes(),
            activation=self.activation,
            output_activation=self.output_activation,
            code_activation="relu" if self.sparsity == "l1" else "sigmoid",
            noise=self.noise,
            noise_level=self.noise_level,
        )

    def _dead_units(self, codes):
        if self.sparsity == "l1":  # ReLU units: dead when they never fire
            return codes.max(dim=0).values <= 0
        return super()._dead_units(codes)

    def _lost_variance_remedy(self):
        return (
            f"Lower sparsity_weight (now {self.sparsity_weight:g}), standardise features whose "
            "scales differ (StandardScaler), or train longer (max_epochs)."
        )

    def _dead_units_remedy(self):
        return "Lower sparsity_weight or lr, or use fewer n_components."

    def _criterion(self):
        kwargs = {
            "kind": self.loss,
            "sparsity": self.sparsity,
            "sparsity_weight": self.sparsity_weight,
            "sparsity_target": self.sparsity_target,
        }
        return ReconstructionLoss, kwargs, ("reconstruction", "sparsity")
