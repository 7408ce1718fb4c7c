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


def dense_cost(module):
    """Multiply-adds of one forward pass of one row of a dense ``module`` (for sizing training).

    One per weight of its matrices (and other weights of two or more
    dimensions); the modules built of dense layers use it as their ``cost``
    method.
    """
    return sum(p.numel() for p in module.parameters() if p.dim() > 1)


def corrupt(x, kind, level):
    """``x`` corrupted by ``kind`` noise of ``level`` (see :class:`Corruption`)."""
    if kind is None or level == 0.0:
        return x
    if kind == "gaussian":
        return x + level * torch.randn_like(x)
    return x * (torch.rand_like(x) >= level)


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
        return corrupt(x, self.kind, self.level) if self.training else x

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


def _last_linear(layers):
    return [m for m in layers.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))][-1]


def zero_output(layers):
    """Zero the weights and bias of the last ``Linear`` / conv layer of ``layers``.

    A branch whose output layer is zero adds nothing until it is trained, so
    a model made of a linear path plus such branches starts exactly at the
    linear path's solution (gradients still reach the output layer).
    """
    last = _last_linear(layers)
    nn.init.zeros_(last.weight)
    if last.bias is not None:
        nn.init.zeros_(last.bias)


#: Quantiles of each standardised feature (over the training rows) that bound
#: the inputs of the nonlinear branches: beyond them the branches see the
#: bound, so a row far outside the training data gets the linear path's
#: reconstruction plus a bounded correction, never an extrapolated one.
BRANCH_QUANTILE = 0.005

#: Radius of the radial maps of a module with a linear path, as a quantile of
#: the training rows' root mean square (see :func:`radial`): the rows inside it
#: (99 %) meet the nonlinear branches as they are; a row beyond it is scaled
#: onto it, and the branch's output scaled back by the same factor.
RADIAL_QUANTILE = 0.99

#: The radial branches see each normalised feature in units of its standard
#: deviation, but at least this fraction of the data's root mean variance: a
#: feature (almost) constant on the training rows (a border pixel) would
#: otherwise turn a small new value into a huge input.
BRANCH_SCALE_FLOOR = 0.1

_BIG = 1e30


def radial(layers, u, radius):
    """``layers`` applied radially: ``r * layers(u / r)``, ``r = max(1, rms(u) / radius)``.

    Inside the radius (``rms(u)``, the root mean square of a row, at most
    ``radius``) this is ``layers(u)``; beyond it the branch sees the row scaled
    onto the radius (inputs bounded, as the training rows were) and its
    output grows in proportion to the row's size (positively homogeneous of
    degree one). A row ``s`` times larger than one on the radius is then
    reconstructed ``s`` times the same: its error relative to PCA's (which
    also grows as ``s**2``) is the one at the radius, so an extreme row is
    neither clipped back to the training range (the nonlinear correction
    would vanish relative to the row, as on heavy-tailed data) nor
    extrapolated by whatever the network does far outside it.
    """
    # sqrt of a value clamped at 1: no infinite gradient at a zero row
    r = (u.square().mean(dim=1, keepdim=True) / radius.square()).clamp(min=1.0).sqrt()
    return layers(u / r) * r


def _radius(rows, quantile=RADIAL_QUANTILE):
    """``quantile`` of the rows' root mean square (1 where it is not positive)."""
    rms = rows.square().mean(dim=1).sqrt()
    value = float(torch.quantile(rms, quantile)) if len(rms) else 0.0
    return value if math.isfinite(value) and value > 0 else 1.0


class DataScaling(nn.Module):
    """Fixed maps fitted to the training data, held as buffers.

    - ``normalize(x) = (x - center) / scale``: per-feature centring and one
      *global* scale (the root mean variance), which keeps the relative
      weight of the features in the reconstruction error, as PCA's objective
      does; a model trained on ``normalize(x)`` sees data of unit mean
      variance whatever the data's units.
    - ``branch_input(x_n)``: each normalised feature divided by its own
      standard deviation (if ``standardize``) and clamped to its training
      quantiles ``[low, high]``: the input of the nonlinear branches.

    Before :meth:`fit` every map is the identity (``center=0``, ``scale=1``,
    no bounds), so a module built and then loaded from a state dict gets
    the fitted buffers from it.
    """

    def __init__(self, n_features):
        super().__init__()
        self.register_buffer("center", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("feature_scale", torch.ones(n_features))
        self.register_buffer("low", torch.full((n_features,), -_BIG))
        self.register_buffer("high", torch.full((n_features,), _BIG))

    @torch.no_grad()
    def fit(self, mean, var, sample, standardize=True):
        """Set the buffers from the training data's moments and a sample of rows.

        ``mean`` and ``var`` (per feature) are float64 tensors; ``sample`` is
        a tensor of rows. Constant features keep a unit scale.
        """
        var = var.clamp(min=0.0)
        scale = float(var.mean().sqrt())
        scale = scale if math.isfinite(scale) and scale > 0 else 1.0
        self.center.copy_(mean)
        self.scale.fill_(scale)
        feature = (var.sqrt() / scale) if standardize else torch.ones_like(var)
        feature = torch.where(feature > 1e-12, feature, torch.ones_like(feature))
        self.feature_scale.copy_(feature)
        if len(sample) >= 2:  # float32, in place: the sample may be large
            u = sample.to(torch.float32, copy=True).sub_(mean.float()).div_(scale * feature.float())
            q = torch.tensor([BRANCH_QUANTILE, 1.0 - BRANCH_QUANTILE])
            low, high = torch.quantile(u, q, dim=0)
            self.low.copy_(low)
            self.high.copy_(high)

    def normalize(self, x):
        return (x - self.center) / self.scale

    def denormalize(self, y):
        return y * self.scale + self.center

    def branch_input(self, x_n):
        return torch.minimum(torch.maximum(x_n / self.feature_scale, self.low), self.high)


class LinearPath(nn.Module):
    """``encode_linear`` (features -> code) and ``decode_linear`` (code -> features).

    :meth:`init_pca` sets them to PCA's whitened solution on normalised data:
    the code is the principal-component scores divided by their standard
    deviations, and the decoder maps them back, so the two together are
    exactly PCA's projection.
    """

    def __init__(self, n_features, n_components):
        super().__init__()
        self.encode_linear = nn.Linear(n_features, n_components)
        self.decode_linear = nn.Linear(n_components, n_features)

    @torch.no_grad()
    def init_pca(self, axes, values):
        """Set PCA's solution from the principal ``axes`` (columns) and their ``values``.

        ``values`` are the variances along the axes, in the normalised units
        the path works in; at most ``n_components`` axes are used (fewer
        leave the remaining code units at zero).
        """
        k = self.encode_linear.out_features
        axes, values = axes[:, :k], values[:k]
        sd = values.clamp(min=0.0).sqrt()
        sd = torch.where(sd > 1e-12 * max(float(sd[0]), 1e-300), sd, torch.ones_like(sd))
        weight = torch.zeros_like(self.encode_linear.weight, dtype=torch.float64)
        weight[: axes.shape[1]] = (axes / sd).T
        back = torch.zeros_like(self.decode_linear.weight, dtype=torch.float64)
        back[:, : axes.shape[1]] = axes * sd
        self.encode_linear.weight.copy_(weight)
        self.decode_linear.weight.copy_(back)
        self.encode_linear.bias.zero_()  # the data are centred by DataScaling
        self.decode_linear.bias.zero_()


class TopK(nn.Module):
    """A k-sparse code: each row keeps its ``k`` largest pre-activations (ReLU'd), the rest 0.

    ``k = max(1, round(fraction * n_units))`` (:meth:`count`). Sparsity is then
    a property of the code, not a penalty's balance with the reconstruction,
    so it does not drift with the data's size or the training's length, and
    the kept activations are not shrunk (as an L1 penalty shrinks them).
    """

    def __init__(self, fraction):
        super().__init__()
        self.fraction = float(fraction)

    @staticmethod
    def count(fraction, n_units):
        """Units kept per row: ``max(1, round(fraction * n_units))``, at most ``n_units``."""
        return min(n_units, max(1, round(fraction * n_units)))

    def forward(self, pre):
        k = self.count(self.fraction, pre.shape[-1])
        kth = pre.topk(k, dim=-1).values[..., -1:]
        return torch.relu(pre) * (pre >= kth).to(pre.dtype)


class MLPAutoencoder(nn.Module):
    """Dense autoencoder ``n_features -> hidden -> n_components -> mirror``.

    Inputs are normalised by :class:`DataScaling` (fitted by
    :meth:`init_from_data`); for an identity output the reconstruction is
    mapped back to the data's units. The code layer is linear unless
    ``code_activation`` is given (a sparse code: an activation's name, or
    ``"topk"`` for a :class:`TopK` code keeping ``code_active_fraction`` of
    the units of each row).

    With ``linear_path=True`` the model is a linear path (PCA's solution
    after :meth:`init_from_data`) plus nonlinear branches whose output layers
    start at zero: ``code = encode_linear(x_n) + encoder(u)`` and ``x_n_hat =
    decode_linear(code) + decoder(code)``, where ``u`` is each normalised
    feature in units of its standard deviation (at least
    ``BRANCH_SCALE_FLOOR`` of the data's root mean variance). Training therefore starts
    exactly where PCA ends. Both branches are applied radially (:func:`radial`),
    with radii fitted to the training rows (``radius_input``, and
    ``radius_code`` of PCA's whitened code): the 1 % of rows of largest
    norm, and any larger row met later, are reconstructed along rays, so
    that heavy-tailed rows keep the nonlinear correction that the bulk
    taught, scaled to their size.

    Without a linear path the encoder sees each standardised feature
    clamped to its training range (``DataScaling.branch_input``).
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
        linear_path=False,
        code_active_fraction=None,
    ):
        super().__init__()
        hidden = tuple(hidden_layer_sizes)
        self.scaling = DataScaling(n_features)
        self.corrupt = Corruption(noise, noise_level)
        self.encoder = nn.Sequential(
            mlp((n_features, *hidden), activation),
            nn.Linear(hidden[-1] if hidden else n_features, n_components),
        )
        if code_activation == "topk":
            self.code_activation = TopK(code_active_fraction)
        else:
            self.code_activation = ACTIVATIONS[code_activation]() if code_activation else None
        self.decoder = mlp(
            (n_components, *hidden[::-1], n_features), activation, last_activation=False
        )
        self.output_activation = OUTPUT_ACTIVATIONS[output_activation]()
        self.identity_output = output_activation is None
        self.linear = LinearPath(n_features, n_components) if linear_path else None
        if self.linear is not None:
            zero_output(self.encoder)
            zero_output(self.decoder)
            self.register_buffer("radius_input", torch.ones(()))
            self.register_buffer("radius_code", torch.ones(()))

    @torch.no_grad()
    def init_from_data(self, summary):
        """Fit the normalisation (and PCA's solution for the linear path) to the data.

        ``summary`` is a :class:`skae._data.DataSummary` of the training rows.
        """
        self.scaling.fit(summary.mean, summary.var, summary.sample)
        if self.linear is not None:
            axes, values = summary.principal_axes(self.linear.encode_linear.out_features)
            self.linear.init_pca(axes, values / float(self.scaling.scale) ** 2)
            x_n = self.scaling.normalize(summary.sample.to(self.radius_input.dtype))
            self.radius_input.fill_(_radius(self._branch_input(x_n)))
            self.radius_code.fill_(_radius(self.linear.encode_linear(x_n)))

    def use_reference(self, on):
        """No-op: with a linear path, the initial weights are PCA's solution."""

    def _code(self, x_n):
        if self.linear is None:
            return self.encoder(self.scaling.branch_input(x_n))
        u = self._branch_input(x_n)
        return radial(self.encoder, u, self.radius_input) + self.linear.encode_linear(x_n)

    def _branch_input(self, x_n):
        """Each feature in units of its standard deviation (floored: BRANCH_SCALE_FLOOR)."""
        return x_n / self.scaling.feature_scale.clamp(min=BRANCH_SCALE_FLOOR)

    def _output(self, code):
        if self.linear is None:
            return self.decoder(code)
        return radial(self.decoder, code, self.radius_code) + self.linear.decode_linear(code)

    def _activate(self, pre):
        return pre if self.code_activation is None else self.code_activation(pre)

    def encode(self, x):
        return self._activate(self._code(self.scaling.normalize(x)))

    def decode(self, z):
        y = self._output(z)
        return self.scaling.denormalize(y) if self.identity_output else self.output_activation(y)

    def forward(self, x):
        pre = self._code(self.scaling.normalize(self.corrupt(x)))
        code = self._activate(pre)
        y = self._output(code)
        recon = self.scaling.denormalize(y) if self.identity_output else self.output_activation(y)
        return {
            "recon": recon,
            "logits": y,
            "code": code,
            "code_pre": pre,
            "scale": self.scaling.scale,
        }

    cost = dense_cost


class GaussianLikelihoodScale(nn.Module):
    """A learned, shared observation log-variance for Gaussian decoders."""

    def __init__(self):
        super().__init__()
        self.logvar = nn.Parameter(torch.zeros(()))

    def forward(self):
        return self.logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)


class VariationalAutoencoder(nn.Module):
    """Dense VAE: the encoder outputs the mean and log-variance of q(z|x).

    Inputs are normalised by :class:`DataScaling` (fitted by
    :meth:`init_from_data`). For an identity output the decoder's mean is
    mapped back to the data's units and the learned observation variance is
    parametrised on the normalised scale (``obs_logvar`` is returned in the
    data's units), so the likelihood is that of the data themselves.
    """

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
        self.scaling = DataScaling(n_features)
        self.corrupt = Corruption(noise, noise_level)
        self.trunk = mlp((n_features, *hidden), activation)
        self.mean = nn.Linear(width, n_components)
        self.logvar = nn.Linear(width, n_components)
        self.decoder = mlp(
            (n_components, *hidden[::-1], n_features), activation, last_activation=False
        )
        self.output_activation = OUTPUT_ACTIVATIONS[output_activation]()
        self.identity_output = output_activation is None
        self.scale = GaussianLikelihoodScale() if learn_scale else None

    @torch.no_grad()
    def init_from_data(self, summary):
        """Fit the input normalisation to the data (a :class:`skae._data.DataSummary`)."""
        self.scaling.fit(summary.mean, summary.var, summary.sample)

    def posterior(self, x):
        h = self.trunk(self.scaling.branch_input(self.scaling.normalize(x)))
        return self.mean(h), self.logvar(h).clamp(LOGVAR_MIN, LOGVAR_MAX)

    def encode(self, x):
        return self.posterior(x)[0]

    def _activate(self, logits):
        if self.identity_output:
            return self.scaling.denormalize(logits)
        return self.output_activation(logits)

    def decode(self, z):
        return self._activate(self.decoder(z))

    def obs_logvar(self):
        """Log-variance of the Gaussian likelihood, in the data's units."""
        return self.scale() + 2.0 * torch.log(self.scaling.scale)

    def likelihood(self, z):
        """The parameters of ``p(x | z)``: ``recon`` (the mean, in the data's
        units), ``logits`` (before the output activation) and, for a learned
        Gaussian, ``obs_logvar``; what :func:`skae._losses.negative_log_likelihood`
        takes."""
        logits = self.decoder(z)
        out = {"recon": self._activate(logits), "logits": logits}
        if self.scale is not None:
            out["obs_logvar"] = self.obs_logvar()
        return out

    def forward(self, x):
        mu, logvar = self.posterior(self.corrupt(x))
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return {**self.likelihood(z), "mu": mu, "logvar": logvar}

    cost = dense_cost


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

    Inputs are centred per feature and scaled by one global factor
    (:class:`DataScaling`, no per-feature standardisation, which would
    distort the images' spatial statistics).

    With ``linear_path=True`` the module also holds PCA's solution (a linear
    path, set by :meth:`init_from_data`) as a *reference*, selected by two
    gate buffers: ``x_hat = linear_gate * linear(z) + network_gate *
    network(z)`` (and likewise for the code). The convolutional network
    trains from random weights with the linear path gated off (starting it
    at PCA's solution, as :class:`MLPAutoencoder` does, slows the training
    of its convolutions); :meth:`use_reference` switches to PCA's solution
    alone, which a fit keeps when the trained network is not better.
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
        linear_path=False,
    ):
        super().__init__()
        self.input_shape = tuple(input_shape)
        n_channels, *spatial = self.input_shape
        n_features = math.prod(self.input_shape)
        ndim = len(spatial)
        conv = nn.Conv1d if ndim == 1 else nn.Conv2d
        pool = nn.MaxPool1d if ndim == 1 else nn.MaxPool2d
        sizes = _pool_plan(spatial, len(channels))
        self.scaling = DataScaling(n_features)
        self.corrupt = Corruption(noise, noise_level)

        down, width = [], n_channels
        self._conv_cost = 0
        for c, before, after in zip(channels, sizes[:-1], sizes[1:]):
            down += [conv(width, c, kernel_size, padding="same"), ACTIVATIONS[activation]()]
            self._conv_cost += width * c * kernel_size**ndim * math.prod(before)
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
            self._conv_cost += width * c * kernel_size**ndim * math.prod(target)
            if i < len(widths) - 1:
                up.append(ACTIVATIONS[activation]())
            width = c
        self.upsample = nn.Sequential(*up)
        self.output_activation = OUTPUT_ACTIVATIONS[output_activation]()
        self.identity_output = output_activation is None
        self.linear = LinearPath(n_features, n_components) if linear_path else None
        if self.linear is not None:
            self.register_buffer("linear_gate", torch.zeros(()))
            self.register_buffer("network_gate", torch.ones(()))

    def use_reference(self, on):
        """Compute with PCA's solution alone (``on=True``) or with the network alone."""
        if self.linear is not None:
            self.linear_gate.fill_(float(on))
            self.network_gate.fill_(float(not on))

    @torch.no_grad()
    def init_from_data(self, summary):
        """Fit the normalisation (and PCA's solution for the linear path) to the data.

        ``summary`` is a :class:`skae._data.DataSummary` of the training rows.
        """
        self.scaling.fit(summary.mean, summary.var, summary.sample, standardize=False)
        if self.linear is not None:
            axes, values = summary.principal_axes(self.linear.encode_linear.out_features)
            self.linear.init_pca(axes, values / float(self.scaling.scale) ** 2)

    def _encode(self, x_n):
        u = self.scaling.branch_input(x_n)
        h = self.features(u.reshape(-1, *self.input_shape))
        code = self.to_code(h.flatten(1))
        if self.linear is not None:
            code = self.network_gate * code + self.linear_gate * self.linear.encode_linear(x_n)
        return code

    def _decode(self, z):
        h = self.from_code(z).reshape(-1, *self.code_shape)
        y = self.upsample(h).flatten(1)
        if self.linear is not None:
            y = self.network_gate * y + self.linear_gate * self.linear.decode_linear(z)
        return y

    def _activate(self, y):
        return self.scaling.denormalize(y) if self.identity_output else self.output_activation(y)

    def encode(self, x):
        return self._encode(self.scaling.normalize(x))

    def decode(self, z):
        return self._activate(self._decode(z))

    def forward(self, x):
        code = self._encode(self.scaling.normalize(self.corrupt(x)))
        y = self._decode(code)
        return {"recon": self._activate(y), "logits": y, "code": code, "scale": self.scaling.scale}

    def cost(self):
        """Multiply-adds of one forward pass of one row (for sizing training)."""
        dense = sum(
            p.numel() for m in (self.to_code, self.from_code) for p in m.parameters() if p.dim() > 1
        )
        linear = 0 if self.linear is None else 2 * self.linear.encode_linear.weight.numel()
        return self._conv_cost + dense + linear


class MaskedImputer(nn.Module):
    """A denoising autoencoder for imputation: values and their observed-mask in, values out.

    Works on standardised data. Each row holds ``3 * n_features`` columns:
    the values ``z`` (0 where missing), the mask of the cells the model may
    see and learn from (1: observed), and the mask of the held-out
    validation cells (hidden from the input, scored in eval mode).

    In training mode each seen cell is dropped with probability ``drop``
    (set to 0 in the input, its mask bit to 0), and the loss weight is on
    the dropped cells: the model is trained on the very task of filling
    hidden cells from the others. In eval mode the input is every seen
    cell, and the weight is on the validation cells. The output layer and
    the linear path start at zero, so the untrained model predicts 0: the
    column mean.

    ``forward`` returns ``recon`` (the predicted standardised values),
    ``weight`` (the cells the loss is on) and ``rate`` (the expected
    fraction of weighted cells, which normalises the loss so that its value
    does not depend on how many cells a batch has).

    Parameters
    ----------
    n_features : int
    hidden_layer_sizes : tuple of int
    activation : str
    drop : float
        Probability of dropping a seen cell in training.
    train_rate, valid_rate : float
        Fractions of the cells that are seen, and held out, in the training data.
    n_passes : int
        Passes of the network per prediction.
    """

    def __init__(
        self, n_features, hidden_layer_sizes, activation, drop, train_rate, valid_rate, n_passes=1
    ):
        super().__init__()
        self.n_features = n_features
        self.n_passes = int(n_passes)
        self.drop = float(drop)
        self.train_rate = float(train_rate)
        self.valid_rate = float(valid_rate)
        self.branch = mlp([2 * n_features, *hidden_layer_sizes, n_features], activation, False)
        # The linear path: full rank up to the first hidden width, factored through
        # that width beyond it (so that its cost grows as the network's, not as n**2).
        rank = hidden_layer_sizes[0]
        if n_features <= rank:
            self.linear = nn.Sequential(nn.Linear(2 * n_features, n_features))
        else:
            self.linear = nn.Sequential(
                nn.Linear(2 * n_features, rank, bias=False), nn.Linear(rank, n_features)
            )
        zero_output(self.branch)
        zero_output(self.linear)

    def cost(self):
        """Multiply-adds per row: the network's, once per pass."""
        return dense_cost(self) * self.n_passes

    def impute(self, z, seen):
        """Standardised predictions of every cell from the ``seen`` ones (``z``: 0 elsewhere)."""
        known = z * seen
        values = known
        for _ in range(self.n_passes):
            inputs = torch.cat([values, seen], dim=1)
            predicted = self.branch(inputs) + self.linear(inputs)
            values = known + predicted * (1 - seen)
        return predicted

    def forward(self, x):
        d = self.n_features
        z, seen, valid = x[:, :d], x[:, d : 2 * d], x[:, 2 * d :]
        if self.training:
            shown = seen * (torch.rand_like(seen) >= self.drop)
            weight, rate = seen - shown, self.train_rate * self.drop
        else:
            shown, weight, rate = seen, valid, self.valid_rate
        return {"recon": self.impute(z, shown), "target": z, "weight": weight, "rate": rate}
