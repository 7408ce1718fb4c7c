"""Shared documentation of skae's estimators: parameter and attribute templates."""

COMMON_PARAMETERS = """\
hidden_layer_sizes : tuple of int, default=(256,)
        Widths of the encoder's hidden layers; the decoder mirrors them.
        ``()`` gives a single-layer encoder and decoder.

    activation : {"relu", "leaky_relu", "elu", "selu", "gelu", "silu", "tanh", \
"sigmoid"}, default="relu"
        Activation of the hidden layers. The code layer is linear.

    output_activation : {None, "sigmoid", "tanh", "relu"}, default=None
        Activation of the decoder's output: ``None`` (linear) for
        standardised data, ``"sigmoid"`` for data in [0, 1].

    loss : {"mse", "bce"}, default="mse"
        Reconstruction loss: mean squared error, or binary cross-entropy
        for data in [0, 1] (needs ``output_activation="sigmoid"``).

    noise : {None, "gaussian", "mask"}, default=None
        Denoising training: inputs are corrupted during ``fit`` only (the
        target stays clean) by additive Gaussian noise or by zeroing entries.

    noise_level : float, default=0.1
        Standard deviation of the Gaussian noise, or the probability that
        an entry is zeroed for ``noise="mask"``.

    max_epochs : int or "auto", default="auto"
        Maximum number of passes over the training data. ``"auto"`` sizes
        training in optimiser steps: about 8000 steps, within 20 to 200
        epochs (200 epochs on 1,400 rows, 64 on 8,000, 20 on 60,000 at the
        default batch size). Training may stop earlier on a plateau.

    batch_size : int, default=64
        Rows per optimiser step.

    lr : float, default=1e-3
        Learning rate.

    optimizer : {"adam", "adamw", "sgd", "rmsprop"}, default="adam"
        The torch optimiser.

    weight_decay : float, default=0.0
        L2 penalty (decoupled for ``"adamw"``).

    early_stopping : bool, default=False
        If True, hold out ``validation_fraction`` of the rows, stop when the
        validation loss has not improved by a relative ``tol`` for
        ``n_iter_no_change`` epochs, and keep the best weights. If False,
        stop when the training loss plateaus in the same sense.

    validation_fraction : float, default=0.1
        Fraction of the rows held out when ``early_stopping=True``.

    n_iter_no_change : int, default=10
        Epochs without improvement before stopping.

    tol : float, default=1e-4
        Relative improvement of the monitored loss that counts as progress.

    device : str, default="auto"
        ``"auto"`` trains on CUDA when it is available, else on the CPU;
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` choose explicitly.

    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling, noise and sampling. An int
        makes repeated CPU fits on one machine bit-identical. Global torch and numpy
        random states are never changed.

    verbose : int, default=0
        0 prints nothing; 1 or more prints a per-epoch table of the losses
        and the epoch time."""

COMMON_ATTRIBUTES = """\
n_features_in_ : int
        Number of features seen during :meth:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :meth:`fit`. Defined only when `X`
        has feature names that are all strings.

    net_ : skorch.NeuralNet
        The trained skorch net; ``net_.module_`` is the torch module and
        ``net_.history`` the per-epoch history (losses, named loss terms,
        epoch durations).

    n_iter_ : int
        Number of epochs run.

    loss_curve_ : ndarray of shape (`n_iter_`,)
        Training loss at the end of each epoch.

    validation_scores_ : ndarray of shape (`n_iter_`,)
        Negative validation loss of each epoch (higher is better). Only
        when ``early_stopping=True``.

    best_validation_score_ : float
        Best of ``validation_scores_``. Only when ``early_stopping=True``."""


def fill_doc(cls):
    """Substitute the shared parameter and attribute docs into ``cls.__doc__``."""
    cls.__doc__ = cls.__doc__.replace("{common_parameters}", COMMON_PARAMETERS).replace(
        "{common_attributes}", COMMON_ATTRIBUTES
    )
    return cls


ACCELERATED_CLASS_DOC = """{summary}

    The same estimator as :class:`skae.{base}` (same parameters, attributes
    and, in a single process, the same results), trained through Hugging
    Face Accelerate: started with ``accelerate launch`` or ``torchrun`` on
    several GPUs, CPU processes or nodes, it trains with data parallelism
    (PyTorch DDP). Each process calls ``fit`` on the same rows; every epoch
    each process trains on its own shard of them (``ceil(n_samples /
    n_processes)`` rows, reshuffled across processes every epoch), gradients
    are averaged across processes after every step, and all processes end
    with identical weights. ``batch_size`` is per process, so one optimiser
    step sees ``batch_size * n_processes`` rows, and an epoch has
    ``n_processes`` times fewer steps.

    Launcher settings apply: ``accelerate launch --mixed_precision bf16``
    trains in mixed precision, ``--gradient_accumulation_steps N``
    accumulates gradients. ``device`` must be ``"auto"``, ``"cpu"``,
    ``"cuda"`` or ``"mps"``: with ``"auto"`` or ``"cuda"`` each process uses
    the GPU the launcher assigns to it; ``"cpu"`` trains CPU processes (gloo
    backend). Requires ``pip install "skae[distributed]"``.

{sections}    See Also
    --------
    skae.{base} : The single-process estimator.
    dask_transform : Apply a fitted estimator to a dask array.

    Notes
    -----
    ``net_`` is an :class:`AcceleratedAutoencoderNet`. After ``fit`` its
    module is a plain torch module (unwrapped from DDP, the same on every
    process); the fitted estimator pickles without the accelerator, and
    :func:`skae.save` saves it as a plain :class:`skae.{base}`, which
    :func:`skae.load` returns (usable without accelerate). Save from one
    process only, e.g. ``if torch.distributed.get_rank() == 0``.

    The losses in ``loss_curve_``, ``validation_scores_`` and the history
    (and printed with ``verbose``) are averaged over the processes, so every
    process stops at the same epoch. With ``early_stopping=True`` every
    process holds out the same validation rows.

    Examples
    --------
    >>> import pytest; _ = pytest.importorskip("accelerate")  # needs skae[distributed]
    >>> from sklearn.datasets import load_digits
    >>> from skae.distributed import {name}
    >>> X = load_digits().data / 16
    >>> model = {name}({example_params}max_epochs=2, device="cpu", random_state=0)
    >>> model.fit(X).transform(X).shape
    {example_shape}
"""


def _base_sections(base):
    """The Parameters and Attributes sections of ``base``'s docstring."""
    doc = base.__doc__
    return doc[doc.index("    Parameters\n    ----------") : doc.index("    See Also\n")]


def document_accelerated(cls, summary, base, example_params, example_shape):
    cls.__doc__ = ACCELERATED_CLASS_DOC.format(
        summary=summary,
        base=base.__name__,
        sections=_base_sections(base),
        name=cls.__name__,
        example_params=example_params,
        example_shape=example_shape,
    )
    return cls
