"""Pure-PyTorch autoencoder architectures.

Nothing in this module knows about scikit-learn or skorch: each module maps
tensors to tensors and exposes ``encode``/``decode`` for inference.

Every module's ``forward`` returns a ``dict`` of named tensors that the loss
functions in :mod:`skae._losses` consume. ``"recon"`` holds the decoder's
output and ``"logits"`` the same *before* the output activation, so that
losses can use numerically stable forms (binary cross-entropy on logits).
"""

import math

import torch
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}

OUTPUT_ACTIVATIONS = {
    None: nn.Identity,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
}

# Log-variance clamp for Gaussian posteriors and likelihoods: exp(+-12) keeps
# variances in [6e-6, 1.6e5], far from float32 overflow and underflow.
LOGVAR_MIN, LOGVAR_MAX = -12.0, 12.0


class Corruption(nn.Module):
    """Input corruption for denoising autoencoders, active in training only.

    Parameters
    ----------
    kind : {None, "gaussian", "mask"}
        ``"gaussian"`` adds ``N(0, level**2)`` noise; ``"mask"`` zeroes each
        entry with probability ``level`` (masking noise, Vincent et al. 2008).
    level : float
        Standard deviation (gaussian) or drop probability (mask).
    """

    def __init__(self, kind=None, level=0.0):
        super().__init__()
        self.kind = kind
        self.level = float(level)

    def forward(self, x):
        if not self.training or self.kind is None or self.level == 0.0:
            return x
        if self.kind == "gaussian":
            return x + self.level * torch.randn_like(x)
        keep = torch.rand_like(x) >= self.level
        return x * keep

    def extra_repr(self):
        return f"kind={self.kind!r}, level={self.level}"


def mlp(sizes, activation, last_activation=True):
    """A stack of ``Linear`` layers with ``activation`` between them."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if last_activation or i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class MLPAutoencoder(nn.Module):
    """Dense autoencoder ``n_features -> hidden -> n_components -> mirror``.

    The code layer is linear unless ``code_activation`` is given (the sparse
    autoencoder's KL penalty needs sigmoid code units).
    """

    def __init__(
        self,
        n_features,
        n_components,
        hidden_layer_sizes=(),
        activation="relu",
        output_activation=None,
        code_activation=None,
        noise=None,
        noise_level=0.0,
    ):
        super().__init__()
        hidden = tuple(hidden_layer_sizes)
        self.corrupt = Corruption(noise, noise_level)
        self.encoder = nn.Sequential(
            mlp((n_features, *hidden), activation),
            nn.Linear(hidden[-1] if hidden else n_features, n_components),
            ACTIVATIONS[code_activation]() if code_activation else nn.Identity(),
        )
        self.decoder = mlp(
            (n_components, *hidden[::-1], n_features), activation, last_activation=False
        )
        self.output_activation = OUTPUT_ACTIVATIONS[output_activation]()

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.output_activation(self.decoder(z))

    def forward(self, x):
        code = self.encoder(self.corrupt(x))
        logits = self.decoder(code)
        return {"recon": self.output_activation(logits), "logits": logits, "code": code}


class GaussianLikelihoodScale(nn.Module):
    """A learned, shared observation log-variance for Gaussian decoders."""

    def __init__(self):
        super().__init__()
        self.logvar = nn.Parameter(torch.zeros(()))

    def forward(self):
        return self.logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)


class VariationalAutoencoder(nn.Module):
    """Dense VAE: the encoder outputs the mean and log-variance of q(z|x)."""

    def __init__(
        self,
        n_features,
        n_components,
        hidden_layer_sizes=(),
        activation="relu",
        output_activation=None,
        noise=None,
        noise_level=0.0,
        learn_scale=True,
    ):
        super().__init__()
        hidden = tuple(hidden_layer_sizes)
        width = hidden[-1] if hidden else n_features
        self.corrupt = Corruption(noise, noise_level)
        self.trunk = mlp((n_features, *hidden), activation)
        self.mean = nn.Linear(width, n_components)
        self.logvar = nn.Linear(width, n_components)
        self.decoder = mlp(
            (n_components, *hidden[::-1], n_features), activation, last_activation=False
        )
        self.output_activation = OUTPUT_ACTIVATIONS[output_activation]()
        self.scale = GaussianLikelihoodScale() if learn_scale else None

    def posterior(self, x):
        h = self.trunk(x)
        return self.mean(h), self.logvar(h).clamp(LOGVAR_MIN, LOGVAR_MAX)

    def encode(self, x):
        return self.posterior(x)[0]

    def decode(self, z):
        return self.output_activation(self.decoder(z))

    def forward(self, x):
        mu, logvar = self.posterior(self.corrupt(x))
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = self.decoder(z)
        out = {
            "recon": self.output_activation(logits),
            "logits": logits,
            "mu": mu,
            "logvar": logvar,
        }
        if self.scale is not None:
            out["obs_logvar"] = self.scale()
        return out


def _pool_plan(spatial, n_stages):
    """Sizes before each stage, pooling (by 2, ceil) only while a dim is >= 2."""
    sizes = [tuple(spatial)]
    for _ in range(n_stages):
        sizes.append(tuple(math.ceil(s / 2) if s >= 2 else s for s in sizes[-1]))
    return sizes


class ConvAutoencoder(nn.Module):
    """Convolutional autoencoder for ``(C, L)`` signals or ``(C, H, W)`` images.

    Each encoder stage is ``conv -> activation -> max-pool(2)``; a dense layer
    maps the flattened maps to ``n_components`` units; the decoder mirrors the
    stages with nearest-neighbour upsampling to the *exact* recorded sizes, so
    the output shape always equals the input shape (odd sizes included).
    Optional dense ``hidden_layer_sizes`` sit between the maps and the code.
    """

    def __init__(
        self,
        input_shape,
        n_components,
        channels=(16, 32),
        kernel_size=3,
        hidden_layer_sizes=(),
        activation="relu",
        output_activation=None,
        noise=None,
        noise_level=0.0,
    ):
        super().__init__()
        self.input_shape = tuple(input_shape)
        n_channels, *spatial = self.input_shape
        ndim = len(spatial)
        conv = nn.Conv1d if ndim == 1 else nn.Conv2d
        pool = nn.MaxPool1d if ndim == 1 else nn.MaxPool2d
        sizes = _pool_plan(spatial, len(channels))
        self.corrupt = Corruption(noise, noise_level)

        down, width = [], n_channels
        for c, before, after in zip(channels, sizes[:-1], sizes[1:]):
            down += [conv(width, c, kernel_size, padding="same"), ACTIVATIONS[activation]()]
            if after != before:
                down.append(pool(2, ceil_mode=True))
            width = c
        self.features = nn.Sequential(*down)
        self.code_shape = (width, *sizes[-1])
        flat = math.prod(self.code_shape)
        hidden = tuple(hidden_layer_sizes)
        self.to_code = mlp((flat, *hidden, n_components), activation, last_activation=False)
        self.from_code = mlp((n_components, *hidden[::-1], flat), activation)

        up = []
        widths = (*channels[::-1][1:], n_channels)
        for i, (c, target) in enumerate(zip(widths, sizes[-2::-1])):
            up.append(nn.Upsample(size=target, mode="nearest"))
            up.append(conv(width, c, kernel_size, padding="same"))
            if i < len(widths) - 1:
                up.append(ACTIVATIONS[activation]())
            width = c
        self.upsample = nn.Sequential(*up)
        self.output_activation = OUTPUT_ACTIVATIONS[output_activation]()

    def _encode(self, x):
        h = self.features(x.reshape(-1, *self.input_shape))
        return self.to_code(h.flatten(1))

    def _decode(self, z):
        h = self.from_code(z).reshape(-1, *self.code_shape)
        return self.upsample(h).flatten(1)

    def encode(self, x):
        return self._encode(x)

    def decode(self, z):
        return self.output_activation(self._decode(z))

    def forward(self, x):
        code = self._encode(self.corrupt(x))
        logits = self._decode(code)
        return {"recon": self.output_activation(logits), "logits": logits, "code": code}
