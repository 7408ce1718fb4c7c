"""Data-parallel training through Hugging Face Accelerate (exported by :mod:`skae.distributed`).

:class:`AcceleratedAE`, :class:`AcceleratedSparseAE`, :class:`AcceleratedConvAE`
and :class:`AcceleratedVAE` train with data parallelism (PyTorch DDP through
Hugging Face Accelerate and skorch's ``AccelerateMixin``) when the script is
started by ``accelerate launch`` or ``torchrun``. accelerate is an optional
dependency (``pip install "skae[distributed]"``), imported only when a model
is fitted.
"""

import torch
from skorch.hf import AccelerateMixin

from skae._ae import AE
from skae._callbacks import LossTable
from skae._conv import ConvAE
from skae._docs import ACCELERATED_CLASS_DOC, fill_doc
from skae._net import AutoencoderNet, TensorBatchIterator, build_net
from skae._sparse import SparseAE
from skae._utils import DISTRIBUTED_HINT, resolve_device
from skae._vae import VAE


def _import_accelerate():
    try:
        import accelerate
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"skae's Accelerated* estimators need the 'accelerate' package. {DISTRIBUTED_HINT}"
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

    Overridden methods, with their upstream definitions (skorch's
    ``skorch/net.py`` for ``NeuralNet``, ``skorch/hf.py`` for
    ``AccelerateMixin``):

    - ``get_split_datasets`` (``NeuralNet``; extended): reseeds torch's RNG
      with a seed broadcast from rank 0 before the split, so that every
      process holds out the same rows.
    - ``get_iterator`` (``AccelerateMixin``; replaced by
      ``NeuralNet.get_iterator`` plus sharding): ``accelerator.prepare()``
      leaves an iterator that is not a ``DataLoader`` as it is, so the
      training rows are sharded here.
    - ``evaluation_step`` (``AccelerateMixin``; replaced by
      ``NeuralNet.evaluation_step``): the mixin gathers predictions across
      processes, which would pair them with this process's targets.
    - ``on_epoch_end`` (``NeuralNet``; extended): averages the logged
      per-batch values across processes before any callback reads them.
    - ``partial_fit`` (``NeuralNet``; extended): wraps the module and
      optimiser again (with the mixin's *private*
      ``_initialize_accelerator``) when the net is already initialised, and
      unwraps them when training ends, after every callback's
      ``on_train_end`` (hence ``unwrap_after_train=False``).
    - ``_unwrap_accelerator`` (``AccelerateMixin``; a *private* method,
      extended): also unwraps the ``AcceleratedOptimizer``, so that the fitted
      net holds plain torch objects. Being private, it may change in any
      skorch release; ``tests/test_distributed.py`` runs this path (also
      through the mixin's private ``_optimizers`` list).
    - ``__getstate__`` (``NeuralNet``; extended): drops the accelerator,
      which does not pickle; the estimator builds a new one when it trains
      again.
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

    def _before_training(self):
        # Join the process group first: on GPUs it makes this process's GPU the
        # current CUDA device, which device="auto"/"cuda" then resolves to.
        accelerator = self._accelerator()
        if hasattr(self, "net_") and self.net_.accelerator is None:  # e.g. unpickled
            self.net_.accelerator = accelerator

    def _init_module(self, net, summary):
        # net.initialize() has wrapped the module (DDP); every process computes
        # the same initialisation from the same rows and the same seed.
        net.accelerator.unwrap_model(net.module_).init_from_data(summary)

    def _make_net(self, **kwargs):
        net_kwargs = {
            "accelerator": self._accelerator(),
            "unwrap_after_train": False,
            # AccelerateMixin configures a PrintLog: keep one, printing on rank 0 if verbose.
            # The sink goes through the parameter, which AccelerateMixin would otherwise
            # set to accelerator.print (it prints whatever ``verbose`` says).
            "callbacks__print_log": LossTable(terms=tuple(kwargs["terms"])),
            "callbacks__print_log__sink": _MainProcessPrint(kwargs["verbose"]),
        }
        return build_net(**kwargs, net_class=AcceleratedAutoencoderNet, net_kwargs=net_kwargs)


@fill_doc(
    template=ACCELERATED_CLASS_DOC,
    summary="Autoencoder with data-parallel training through Hugging Face Accelerate.",
    base="AE",
    example_params="n_components=8, ",
    example_shape="(1797, 8)",
)
class AcceleratedAE(_AccelerateEstimatorMixin, AE):
    _saved_as = AE  # skae.save writes (and skae.load returns) a plain AE


@fill_doc(
    template=ACCELERATED_CLASS_DOC,
    summary="Sparse autoencoder with data-parallel training through Hugging Face Accelerate.",
    base="SparseAE",
    example_params="n_components=16, ",
    example_shape="(1797, 16)",
)
class AcceleratedSparseAE(_AccelerateEstimatorMixin, SparseAE):
    _saved_as = SparseAE  # skae.save writes (and skae.load returns) a plain SparseAE


@fill_doc(
    template=ACCELERATED_CLASS_DOC,
    summary=(
        "Convolutional autoencoder with data-parallel training through Hugging Face Accelerate."
    ),
    base="ConvAE",
    example_params="n_components=8, input_shape=(1, 8, 8), ",
    example_shape="(1797, 8)",
)
class AcceleratedConvAE(_AccelerateEstimatorMixin, ConvAE):
    _saved_as = ConvAE  # skae.save writes (and skae.load returns) a plain ConvAE


@fill_doc(
    template=ACCELERATED_CLASS_DOC,
    summary="Variational autoencoder with data-parallel training through Hugging Face Accelerate.",
    base="VAE",
    example_params='n_components=2, loss="bce", output_activation="sigmoid", ',
    example_shape="(1797, 2)",
)
class AcceleratedVAE(_AccelerateEstimatorMixin, VAE):
    _saved_as = VAE  # skae.save writes (and skae.load returns) a plain VAE
