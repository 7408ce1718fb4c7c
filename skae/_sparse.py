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

    Few code units are active for each sample, so the code can be
    *overcomplete* (``n_components > n_features``) and still informative,
    as in dictionary learning.

    - ``sparsity="topk"`` (default): each row keeps its
      ``active_fraction`` of the code units with the largest
      pre-activations (ReLU'd), the others are exactly 0: a k-sparse code,
      sparse by construction, whose kept activations no penalty shrinks.
      A term pulls up units that no row of a batch selects, so units
      cannot die.
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
    >>> int((sae.transform(X) > 0).sum(axis=1).max())  # active_fraction of the units
    51
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
            sparsity : {"topk", "l1", "kl"}, default={default}
                How the code is made sparse: by keeping each row's largest
                units, or by a penalty.
        """,
        "active_fraction": """
            active_fraction : float, default={default}
                For ``sparsity="topk"``: the fraction of the code units kept
                for each row (at least one).
        """,
        "sparsity_weight": """
            sparsity_weight : float, default={default}
                Weight of the sparsity penalty in the loss (``"l1"``, ``"kl"``).
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
        "sparsity": [StrOptions({"topk", "l1", "kl"})],
        "active_fraction": [Interval(Real, 0, 1, closed="right")],
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
        sparsity="topk",
        active_fraction=0.4,
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
        self.active_fraction = active_fraction
        self.sparsity_weight = sparsity_weight
        self.sparsity_target = sparsity_target

    def _module(self, n_features):
        return MLPAutoencoder, dict(
            n_features=n_features,
            n_components=self.n_components,
            hidden_layer_sizes=self._hidden_layer_sizes(),
            activation=self.activation,
            output_activation=self.output_activation,
            code_activation={"topk": "topk", "l1": "relu", "kl": "sigmoid"}[self.sparsity],
            code_active_fraction=self.active_fraction,
            noise=self.noise,
            noise_level=self.noise_level,
        )

    def _dead_units(self, codes):
        if self.sparsity != "kl":  # ReLU units: dead when they never fire
            return codes.max(dim=0).values <= 0
        return super()._dead_units(codes)

    def _lost_variance_remedy(self):
        if self.sparsity == "topk":
            lever = f"Raise active_fraction (now {self.active_fraction:g}) or n_components"
        else:
            lever = f"Lower sparsity_weight (now {self.sparsity_weight:g})"
        return (
            f"{lever}, standardise features whose scales differ (StandardScaler), or train "
            "longer (max_epochs)."
        )

    def _dead_units_remedy(self):
        if self.sparsity == "topk":
            return "Raise active_fraction, lower lr, or use fewer n_components."
        return "Lower sparsity_weight or lr, or use fewer n_components."

    def _criterion(self):
        kwargs = {
            "kind": self.loss,
            "sparsity": self.sparsity,
            "sparsity_weight": self.sparsity_weight,
            "sparsity_target": self.sparsity_target,
        }
        return ReconstructionLoss, kwargs, ("reconstruction", "sparsity")
