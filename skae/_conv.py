"""The convolutional autoencoder."""

import math
from numbers import Integral

from sklearn.utils._param_validation import Interval, StrOptions

from skae._base import BaseAutoencoder
from skae._docs import fill_doc
from skae._losses import ReconstructionLoss
from skae._modules import ConvAutoencoder


@fill_doc
class ConvAE(BaseAutoencoder):
    """Convolutional autoencoder for images and 1-D signals.

    Each row of ``X`` is one sample, read as an array of shape
    ``input_shape``: ``(C, H, W)`` for images (channels first) or ``(C, L)``
    for signals. The encoder is a stack of ``convolution -> activation ->
    max-pool(2)`` stages, one per entry of ``channels``, followed by a dense
    layer down to ``n_components`` units (so ``n_components`` keeps PCA's
    meaning); the decoder mirrors it with nearest-neighbour upsampling to the
    exact sizes seen on the way down, so any input size (odd ones included)
    is reconstructed at its own shape.

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    {attributes}

    See Also
    --------
    AE : The dense autoencoder.
    sklearn.decomposition.PCA : The linear baseline.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import ConvAE
    >>> X = load_digits().data / 16
    >>> cae = ConvAE(n_components=16, input_shape=(1, 8, 8), max_epochs=2,
    ...              random_state=0).fit(X)
    >>> cae.transform(X).shape
    (1797, 16)
    >>> cae.inverse_transform(cae.transform(X)).shape
    (1797, 64)
    """

    _parameter_docs = {
        "n_components": """
            n_components : int, default={default}
                Size of the dense bottleneck (the code).
        """,
        "hidden_layer_sizes": """
            hidden_layer_sizes : tuple of int, default={default}
                Widths of dense layers between the flattened feature maps and the
                code; the decoder mirrors them. ``()`` maps the feature maps to the
                code with a single dense layer.
        """,
        "input_shape": """
            input_shape : tuple of int or None, default={default}
                Shape of one sample, channels first: ``(C, H, W)`` or ``(C, L)``.
                Its product must equal the number of features. ``None`` reads each
                row as a one-channel signal of length ``n_features``.
        """,
        "channels": """
            channels : tuple of int, default={default}
                Filters of each convolution stage (at least one stage). Pooling
                halves each spatial dimension that is at least 2.
        """,
        "kernel_size": """
            kernel_size : int, default={default}
                Size of the convolution kernels ("same" padding).
        """,
    }

    #: Convolutions learn more slowly per multiply-add than dense layers (a larger
    #: ``max_epochs="auto"`` budget), and the linear path holds PCA's solution as a
    #: fixed reference (see ``init``): :mod:`skae._plan`'s ``"conv"`` entries.
    _plan_kind = "conv"

    _parameter_constraints: dict = {
        **BaseAutoencoder._parameter_constraints,
        "input_shape": [None, "array-like"],
        "channels": ["array-like"],
        "kernel_size": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"pca", "random"})],
    }

    def __init__(
        self,
        n_components=2,
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
        input_shape=None,
        channels=(16, 32),
        kernel_size=3,
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
        self.input_shape = input_shape
        self.channels = channels
        self.kernel_size = kernel_size
        self.init = init

    def _input_shape(self, n_features):
        if self.input_shape is None:
            return (1, n_features)
        shape = tuple(self.input_shape)
        if len(shape) not in (2, 3) or not all(isinstance(s, Integral) and s >= 1 for s in shape):
            raise ValueError(
                "input_shape must be (C, L) or (C, H, W) with positive integers, "
                f"got {self.input_shape!r}."
            )
        if math.prod(shape) != n_features:
            raise ValueError(
                f"input_shape={shape} holds {math.prod(shape)} values per sample, but X "
                f"has {n_features} features."
            )
        return tuple(int(s) for s in shape)

    def _channels(self):
        channels = tuple(self.channels)
        if not channels or not all(isinstance(c, Integral) and c >= 1 for c in channels):
            raise ValueError(
                f"channels must be a non-empty tuple of positive integers, got {self.channels!r}."
            )
        return tuple(int(c) for c in channels)

    def _check_data(self, n_features):
        self._input_shape(n_features)
        self._channels()

    def _module(self, n_features):
        return ConvAutoencoder, dict(
            input_shape=self._input_shape(n_features),
            n_components=self.n_components,
            channels=self._channels(),
            kernel_size=self.kernel_size,
            hidden_layer_sizes=self._hidden_layer_sizes(),
            activation=self.activation,
            output_activation=self.output_activation,
            noise=self.noise,
            noise_level=self.noise_level,
            linear_path=self.init == "pca" and self.output_activation is None,
        )

    def _criterion(self):
        return ReconstructionLoss, {"kind": self.loss}, ()
