"""Distributed training and inference: Hugging Face Accelerate and Dask.

- :class:`AcceleratedAE`, :class:`AcceleratedSparseAE`, :class:`AcceleratedConvAE`
  and :class:`AcceleratedVAE` train with data parallelism (PyTorch DDP through
  Hugging Face Accelerate and skorch's ``AccelerateMixin``) when the script is
  started by ``accelerate launch`` or ``torchrun``: every process trains the same
  model on its own shard of the rows, gradients are averaged after each step,
  and all processes end with identical weights. Run in a single process they
  train exactly like :class:`skae.AE` and friends.
- :func:`dask_transform` encodes (or decodes, or scores) a dask array block by
  block with a fitted estimator.

The optional dependencies (``pip install "skae[distributed]"``: accelerate,
dask, distributed) are imported only when used, so this module imports without
them.
"""

import numpy as np
import torch
from skorch.callbacks import PrintLog
from skorch.hf import AccelerateMixin

from skae._ae import AE
from skae._base import BaseAutoencoder
from skae._conv import ConvAE
from skae._net import AutoencoderNet, TensorBatchIterator, build_net
from skae._sparse import SparseAE
from skae._utils import resolve_device
from skae._vae import VAE

__all__ = [
    "AcceleratedAE",
    "AcceleratedConvAE",
    "AcceleratedSparseAE",
    "AcceleratedVAE",
    "dask_transform",
]

_EXTRA_HINT = 'Install the optional dependencies with: pip install "skae[distributed]".'


def _import_accelerate():
    try:
        import accelerate
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"skae's Accelerated* estimators need the 'accelerate' package. {_EXTRA_HINT}"
        ) from exc
    return accelerate


def _rank():
    """This process's rank in the default process group (0 outside one)."""
    dist = torch.distributed
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


class _MainProcessPrint:
    """``PrintLog`` sink: print on the main process only, and only if ``verbose``.

    skorch's ``PrintLog`` ignores ``verbose`` for any sink other than ``print``
    (and ``AccelerateMixin`` installs ``accelerator.print``), so the check is
    done here. Unlike ``accelerator.print`` it pickles.
    """

    def __init__(self, verbose):
        self.verbose = verbose

    def __call__(self, text):
        if self.verbose and _rank() == 0:
            print(text)


class AcceleratedAutoencoderNet(AccelerateMixin, AutoencoderNet):
    """:class:`~skae._net.AutoencoderNet` trained through Hugging Face Accelerate.

    On top of skorch's ``AccelerateMixin`` (DDP wrapping, autocast, gradient
    accumulation), for data parallelism over several processes:

    - training rows are sharded across processes (the dataset's ``shard``, see
      :mod:`skae._data`), with a new assignment of rows to processes every epoch;
    - the validation split is drawn identically on every process, and every
      process scores the whole validation set (no gather), so ``valid_loss``
      is the same everywhere;
    - the per-batch losses (training and validation, with their named terms)
      are averaged across processes at the end of each epoch, before any
      callback reads them, so early stopping, divergence checks and the
      printed table agree on every process (a process stopping alone would
      deadlock the others);
    - the module and optimiser are unwrapped after training, after the
      callbacks have restored any weights (DDP's ``module.`` key prefix would
      otherwise break ``load_best``), and wrapped again for the next
      ``partial_fit``;
    - the accelerator is not pickled.

    Devices are placed by skorch (the accelerator is built with
    ``device_placement=False``).
    """

    # -- process group helpers ---------------------------------------------

    @property
    def _distributed(self):
        return self.accelerator is not None and self.accelerator.num_processes > 1

    def _shared_seed(self):
        """A seed drawn from rank 0's (seeded) torch RNG, the same on every process."""
        from accelerate.utils import broadcast_object_list

        seed = [int(torch.randint(0, 2**62, (1,)).item())]
        return broadcast_object_list(seed, from_process=0)[0]

    def _reseed(self, seed):
        torch.default_generator.manual_seed(seed)
        if torch.device(self.device).type == "cuda":
            torch.cuda.manual_seed(seed)

    # -- training ----------------------------------------------------------

    def get_split_datasets(self, X, y=None, **fit_params):
        if not self._distributed or self.train_split is None:
            return super().get_split_datasets(X, y, **fit_params)
        # The same validation rows on every process, whatever its own RNG state.
        self._reseed(self._shared_seed())
        return super().get_split_datasets(X, y, **fit_params)

    def get_iterator(self, dataset, training=False):
        # Skip AccelerateMixin.get_iterator: accelerator.prepare() leaves a
        # non-DataLoader iterator as it is, so sharding is done here.
        if not (training and self._distributed):
            return AutoencoderNet.get_iterator(self, dataset, training=training)
        rank, world_size = self.accelerator.process_index, self.accelerator.num_processes
        seed = self._shared_seed()
        # Different noise / VAE draws on each process from here on.
        self._reseed(seed + 1 + rank)
        kwargs = self.get_params_for("iterator_train")
        batch_size = kwargs.get("batch_size", self.batch_size)
        shuffle = kwargs.get("shuffle", False)
        return TensorBatchIterator(dataset, batch_size, shuffle, shard=(rank, world_size, seed))

    def evaluation_step(self, batch, training=False):
        # Every process scores all its rows itself; gathering predictions across
        # processes (AccelerateMixin) would pair them with this process's targets.
        return AutoencoderNet.evaluation_step(self, batch, training=training)

    def on_epoch_end(self, net, **kwargs):
        super().on_epoch_end(net, **kwargs)
        if not self._distributed:
            return
        # Every process has the same batches (equal shards, the same validation
        # rows): average each logged batch value across processes in one call.
        batches = self.history[-1]["batches"]
        slots = [(b, k) for b in batches for k in sorted(b) if not k.endswith("_batch_size")]
        values = torch.tensor([b[k] for b, k in slots], dtype=torch.float64, device=self.device)
        values = self.accelerator.reduce(values, reduction="mean").cpu().tolist()
        for (b, k), value in zip(slots, values):
            b[k] = value

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        if self.initialized_:
            self._initialize_accelerator()  # wrap again after an earlier unwrap
        try:
            return super().partial_fit(X, y, classes=classes, **fit_params)
        finally:
            self._unwrap_accelerator()

    def _unwrap_accelerator(self):
        from accelerate.optimizer import AcceleratedOptimizer

        super()._unwrap_accelerator()
        for name in self._optimizers:
            optimizer = getattr(self, name + "_", None)
            if isinstance(optimizer, AcceleratedOptimizer):
                setattr(self, name + "_", optimizer.optimizer)

    def __getstate__(self):
        state = super().__getstate__()
        state["accelerator"] = None
        return state


class _AccelerateEstimatorMixin:
    """Train a skae estimator through Hugging Face Accelerate (see the module doc)."""

    def _accelerator(self):
        """Build the accelerator; it joins the launcher's process group.

        It reads the launcher's settings (``accelerate launch`` flags or the
        ``accelerate config`` file: mixed precision, gradient accumulation) from
        the environment. ``device`` chooses between the GPUs (one per process)
        and the CPU (gloo backend).
        """
        accelerate = _import_accelerate()
        device = self.device
        if device not in {"auto", "cpu", "cuda", "mps"}:
            raise ValueError(
                f"{type(self).__name__} takes device='auto', 'cpu', 'cuda' or 'mps' (the "
                f"launcher gives each process its own GPU); got device={device!r}."
            )
        cpu = resolve_device(device) == "cpu"
        return accelerate.Accelerator(cpu=cpu, device_placement=False)

    def fit(self, X, y=None):
        self._validate_params()
        # Join the process group first: on GPUs it makes this process's GPU the
        # current CUDA device, which device="auto"/"cuda" then resolves to.
        self._accelerator()
        return super().fit(X, y)

    fit.__doc__ = BaseAutoencoder.fit.__doc__

    def partial_fit(self, X, y=None):
        self._validate_params()
        accelerator = self._accelerator()
        if hasattr(self, "net_") and self.net_.accelerator is None:  # e.g. unpickled
            self.net_.accelerator = accelerator
        return super().partial_fit(X, y)

    partial_fit.__doc__ = BaseAutoencoder.partial_fit.__doc__

    def _make_net(self, **kwargs):
        net_kwargs = {
            "accelerator": self._accelerator(),
            "unwrap_after_train": False,
            # AccelerateMixin configures a PrintLog: keep one, printing on rank 0 if verbose
            "callbacks__print_log": PrintLog(),
            "callbacks__print_log__sink": _MainProcessPrint(kwargs["verbose"]),
        }
        return build_net(**kwargs, net_class=AcceleratedAutoencoderNet, net_kwargs=net_kwargs)


_CLASS_DOC = """{summary}

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


def _document(cls, summary, base, example_params, example_shape):
    cls.__doc__ = _CLASS_DOC.format(
        summary=summary,
        base=base.__name__,
        sections=_base_sections(base),
        name=cls.__name__,
        example_params=example_params,
        example_shape=example_shape,
    )
    return cls


class AcceleratedAE(_AccelerateEstimatorMixin, AE):
    _saved_as = AE  # skae.save writes (and skae.load returns) a plain AE


class AcceleratedSparseAE(_AccelerateEstimatorMixin, SparseAE):
    _saved_as = SparseAE  # skae.save writes (and skae.load returns) a plain SparseAE


class AcceleratedConvAE(_AccelerateEstimatorMixin, ConvAE):
    _saved_as = ConvAE  # skae.save writes (and skae.load returns) a plain ConvAE


class AcceleratedVAE(_AccelerateEstimatorMixin, VAE):
    _saved_as = VAE  # skae.save writes (and skae.load returns) a plain VAE


_document(
    AcceleratedAE,
    "Autoencoder with data-parallel training through Hugging Face Accelerate.",
    AE,
    "n_components=8, ",
    "(1797, 8)",
)
_document(
    AcceleratedSparseAE,
    "Sparse autoencoder with data-parallel training through Hugging Face Accelerate.",
    SparseAE,
    "n_components=16, ",
    "(1797, 16)",
)
_document(
    AcceleratedConvAE,
    "Convolutional autoencoder with data-parallel training through Hugging Face Accelerate.",
    ConvAE,
    "n_components=8, input_shape=(1, 8, 8), ",
    "(1797, 8)",
)
_document(
    AcceleratedVAE,
    "Variational autoencoder with data-parallel training through Hugging Face Accelerate.",
    VAE,
    'n_components=2, loss="bce", output_activation="sigmoid", ',
    "(1797, 2)",
)


# -- Dask ----------------------------------------------------------------------

_DASK_METHODS = ("transform", "inverse_transform", "score_samples")


def dask_transform(estimator, X, *, method="transform"):
    """Apply a fitted estimator to a dask array, block of rows by block of rows.

    A lazy wrapper around :func:`dask.array.map_blocks`: each block of rows is
    passed to ``getattr(estimator, method)``, wherever the dask scheduler
    runs it (threads, processes, or the workers of a ``dask.distributed``
    cluster, to which the fitted estimator is shipped by pickling). Rows are
    independent, so the result equals ``getattr(estimator, method)(X)`` on
    the whole array, without ever holding it in memory.

    Parameters
    ----------
    estimator : fitted skae estimator
        Any fitted estimator with ``method`` (e.g. a fitted :class:`skae.AE`
        or a :class:`~sklearn.pipeline.Pipeline` ending in one, for
        ``transform``).
    X : dask.array.Array of shape (n_samples, n_features)
        The data. It may be chunked along rows in any way; column chunks are
        merged first (each block must hold whole rows).
    method : {"transform", "inverse_transform", "score_samples"}, default="transform"
        The method to apply.

    Returns
    -------
    result : dask.array.Array
        Lazy result of shape (n_samples, n_components) for ``transform``,
        (n_samples, ``n_features_in_``) for ``inverse_transform`` or
        (n_samples,) for ``score_samples``, with ``X``'s row chunks; call
        ``.compute()`` (or store it with ``.to_zarr()`` and the like).

    Examples
    --------
    >>> import pytest; _ = pytest.importorskip("dask.array")  # needs skae[distributed]
    >>> import dask.array as da
    >>> from sklearn.datasets import load_digits
    >>> from skae import AE
    >>> from skae.distributed import dask_transform
    >>> X = load_digits().data / 16
    >>> ae = AE(n_components=4, max_epochs=2, random_state=0).fit(X)
    >>> codes = dask_transform(ae, da.from_array(X, chunks=(500, 64)))
    >>> codes.chunks
    ((500, 500, 500, 297), (4,))
    >>> codes.compute().shape
    (1797, 4)
    """
    try:
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"dask_transform needs dask. {_EXTRA_HINT}") from exc
    if method not in _DASK_METHODS:
        raise ValueError(f"method must be one of {_DASK_METHODS}, got {method!r}.")
    if not isinstance(X, da.Array):
        raise TypeError(f"X must be a dask array, got {type(X).__name__}.")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got {X.ndim} dimensions.")
    fn = getattr(estimator, method)
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    dtype = np.result_type(X.dtype, np.float32)  # skae computes in X's float dtype
    if method == "score_samples":
        return X.map_blocks(fn, drop_axis=1, dtype=dtype, meta=np.empty((0,), dtype))
    if method == "transform":
        n_out = len(estimator.get_feature_names_out())
    else:
        n_out = estimator.n_features_in_
    return X.map_blocks(fn, chunks=(X.chunks[0], (n_out,)), dtype=dtype)
