"""The one place that builds skorch nets for skae's estimators.

skorch is configured through its documented parameters: ``criterion`` (a
plain callable returning named loss terms), ``iterator_train`` and
``iterator_valid`` (:class:`TensorBatchIterator`, whole-batch tensors
instead of a per-row ``Dataset`` + ``DataLoader``), ``train_split``
(:class:`HoldoutSplit`) and callbacks (skae's own from
:mod:`skae._callbacks`: ``TrainingGuard``, ``LRSchedule``, ``BestWeights``,
``LossTable``; and skorch's ``PassthroughScoring`` and ``EarlyStopping``).

:class:`AutoencoderNet` overrides exactly two methods of
``skorch.NeuralNet`` (``skorch/net.py``):

``train_step_single`` (replaced)
    skorch's version calls ``self._set_training(True)`` on every batch,
    which walks every submodule (~60 us a step, 15% of a step on narrow
    data). The replacement is skorch's body (``infer``, ``get_loss``,
    ``loss.backward()``, returning ``{"loss": ..., "y_pred": ...}``) with the
    training mode set only when it is not already. It must follow
    ``NeuralNet.train_step_single`` upstream. Under Accelerate,
    ``AccelerateMixin.train_step_single`` (``skorch/hf.py``) comes first in
    the method resolution order and runs as it is.
``get_loss`` (replaced)
    skorch's version returns ``self.criterion_(y_pred, y_true)``. skae's
    criteria return a dict of named terms: this one records every term but
    ``"loss"`` with ``history.record_batch`` (as ``train_<name>`` or
    ``valid_<name>``) and returns ``terms["loss"]``. skorch documents
    ``get_loss`` as the method to override for a custom loss.

:class:`skae._accelerate.AcceleratedAutoencoderNet` overrides more methods,
for data parallelism; its docstring lists them.
"""

import functools
import math

import torch
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping, PassthroughScoring

# Imported here, the callbacks also unpickle models pickled when they lived in this module.
from skae._callbacks import BestWeights, LossTable, LRSchedule, TrainingGuard
from skae._modules import corrupt

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}

#: Rows per forward pass when scoring the validation split: at most this many,
#: and at most VALID_BATCH_BYTES of float32 input (a forward pass holds several
#: arrays of the input's size).
VALID_BATCH_SIZE = 4096
VALID_BATCH_BYTES = 4 * 2**20


class TensorBatchIterator:
    """Yield ``(X_batch, X_batch)`` from a dataset's ``batches`` (see :mod:`skae._data`).

    Replaces skorch's per-row ``Dataset`` + ``DataLoader`` (no collate, no
    worker processes). With ``shard=(rank, world_size, seed)`` it serves one
    process's shard of the rows (data-parallel training): the shard is drawn
    with a generator seeded with ``seed``, which must be the same on every
    process. With ``corruption=(kind, level)`` it yields ``(corrupted batch,
    batch)``: a denoising autoencoder is validated on the task it is trained
    for (its module corrupts its inputs in training mode only).
    """

    def __init__(self, dataset, batch_size, shuffle=False, shard=None, corruption=None):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.shard = shard
        self.corruption = corruption
        if shard is not None and shuffle:
            self.generator = torch.Generator().manual_seed(shard[2])
        else:
            self.generator = None

    def __len__(self):
        n = len(self.dataset)
        if self.shard is not None:
            n = math.ceil(n / self.shard[1])
        return math.ceil(n / self.batch_size)

    def __iter__(self):
        dataset = self.dataset
        if self.shard is not None:
            rank, world_size, _ = self.shard
            dataset = dataset.shard(rank, world_size, self.generator)
        for batch in dataset.batches(self.batch_size, self.shuffle):
            if self.corruption is None:
                yield batch, batch
            else:
                yield corrupt(batch, *self.corruption), batch


class HoldoutSplit:
    """``train_split`` that holds out a random ``fraction`` of the rows."""

    def __init__(self, fraction):
        self.fraction = fraction

    def __call__(self, dataset, y=None, **fit_params):
        return dataset.split(self.fraction)


class FixedSplit:
    """``train_split`` that validates on given rows (a cross-fitting fold's)."""

    def __init__(self, valid):
        self.valid = valid

    def __call__(self, dataset, y=None, **fit_params):
        return dataset, self.valid


class AutoencoderNet(NeuralNet):
    """skorch net whose criterion returns named terms; each one is logged.

    Overrides ``train_step_single`` and ``get_loss`` (see the module
    docstring for why).
    """

    def train_step_single(self, batch, **fit_params):
        if not self.module_.training:
            self.module_.train()
        Xi, yi = batch
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        loss.backward()
        return {"loss": loss, "y_pred": y_pred}

    def get_loss(self, y_pred, y_true, X=None, training=False):
        terms = self.criterion_(y_pred, y_true)
        prefix = "train" if training else "valid"
        for name, value in terms.items():
            if name != "loss":
                self.history.record_batch(f"{prefix}_{name}", value.item())
        return terms["loss"]


def valid_batch_size(module_kwargs):
    """Rows per validation batch for a module of these arguments (see VALID_BATCH_BYTES)."""
    shape = module_kwargs.get("input_shape") or (module_kwargs.get("n_features") or 1,)
    n_features = math.prod(shape)
    return max(1, min(VALID_BATCH_SIZE, VALID_BATCH_BYTES // (4 * n_features)))


def module_cost(module, module_kwargs):
    """Multiply-adds per row of ``module(**module_kwargs)``, built on the meta device.

    The meta device allocates no memory and draws no random numbers, so the
    module is sized before the seeded fit creates it for real.
    """
    with torch.device("meta"):
        return int(module(**module_kwargs).cost())


def build_net(
    *,
    module,
    module_kwargs,
    criterion,
    criterion_kwargs,
    terms,
    optimizer,
    lr,
    weight_decay,
    max_epochs,
    batch_size,
    validation_fraction,
    early_stopping,
    n_iter_no_change,
    tol,
    device,
    verbose,
    total_steps=None,
    warmup_steps=0,
    param_groups=(),
    reference=False,
    validation_noise=None,
    valid_dataset=None,
    net_class=AutoencoderNet,
    net_kwargs=None,
):
    """Build (not fit) the skorch net behind a skae estimator.

    Parameters
    ----------
    module : type
        The ``nn.Module`` class. skorch creates the module from it and
        ``module_kwargs`` (as ``module__*`` parameters) when the net is
        initialised, which the caller does inside a seeded RNG state. Passing
        a class rather than an instance keeps one copy of the weights: skorch
        pickles ``module_`` apart from the other attributes, so an instance
        in ``module`` would come back from a pickle as a second copy.
    module_kwargs : dict
        Arguments of ``module``.
    criterion : type
        Criterion class (a plain callable, not an ``nn.Module``); skorch
        instantiates it with ``criterion_kwargs``.
    terms : tuple of str
        Names of the criterion's logged terms besides ``"loss"``.
    validation_fraction : float or None
        Fraction held out for ``valid_loss``; ``None`` for no split (unless
        ``valid_dataset`` is given).
    early_stopping : bool
        Stop on the validation loss (else on the training loss) when it has
        not improved by a relative ``tol`` in ``n_iter_no_change`` epochs:
        with a ``reference``, the capped validation loss (``valid_capped``,
        see :class:`skae._callbacks.BestWeights`). With a validation split,
        :class:`BestWeights` restores the weights of the best epoch (the
        initial weights included).
    total_steps, warmup_steps : int or None, int
        The learning-rate schedule (:class:`LRSchedule`): warm-up then
        cosine decay to zero at ``total_steps``; ``None`` for a constant
        rate.
    param_groups : sequence of (pattern, dict)
        skorch's ``optimizer__param_groups``; a group's ``"lr_scale"``
        multiplies its learning rate.
    validation_noise : tuple or None
        ``(kind, level)`` of a denoising autoencoder's input corruption,
        applied to the validation inputs too (the targets stay clean).
    reference : bool
        Whether the initial weights are a reference solution that trained
        weights must beat significantly on the validation rows
        (:class:`BestWeights`).
    valid_dataset : dataset or None
        Validate on these rows (a cross-fitting fold) instead of a random
        ``validation_fraction``; :class:`BestWeights` then keeps every
        epoch's per-row losses (``rows_``).
    net_class : type, default=AutoencoderNet
        The net class; a subclass of :class:`AutoencoderNet` (e.g. with
        skorch's ``AccelerateMixin``).
    net_kwargs : dict or None
        Extra keyword arguments for ``net_class`` (e.g. ``accelerator``).
    """
    callbacks = [("guard", TrainingGuard())]
    for term in terms:  # per-epoch averages of the named terms; no "best" flags (not goals)
        name = f"train_{term}"
        callbacks.append((name, PassthroughScoring(name, lower_is_better=None, on_train=True)))
        if validation_fraction is not None or valid_dataset is not None:
            name = f"valid_{term}"
            callbacks.append((name, PassthroughScoring(name, lower_is_better=None)))
    validated = validation_fraction is not None or valid_dataset is not None
    if validated:
        selection = BestWeights(reference=reference, keep_rows=valid_dataset is not None)
        callbacks.append(("best_weights", selection))
    monitor = ("valid_capped" if reference else "valid_loss") if early_stopping else "train_loss"
    callbacks.append(
        (
            "early_stopping",
            EarlyStopping(
                monitor=monitor,
                patience=n_iter_no_change,
                threshold=tol,
                threshold_mode="rel",
                load_best=False,  # BestWeights restores, the initial weights included
            ),
        )
    )
    callbacks.append(("lr_schedule", LRSchedule(total_steps, warmup_steps)))
    if valid_dataset is not None:
        split = FixedSplit(valid_dataset)
    else:
        split = HoldoutSplit(validation_fraction) if validation_fraction else None
    return net_class(
        module=module,
        **{f"module__{k}": v for k, v in module_kwargs.items()},
        criterion=functools.partial(criterion, **criterion_kwargs),
        optimizer=OPTIMIZERS[optimizer] if isinstance(optimizer, str) else optimizer,
        optimizer__weight_decay=weight_decay,
        optimizer__param_groups=list(param_groups),
        lr=lr,
        max_epochs=max_epochs,
        batch_size=batch_size,
        iterator_train=TensorBatchIterator,
        iterator_train__shuffle=True,
        iterator_valid=TensorBatchIterator,
        iterator_valid__batch_size=valid_batch_size(module_kwargs),
        iterator_valid__corruption=validation_noise,
        train_split=split,
        callbacks=callbacks,
        device=device,
        verbose=verbose,
        **{
            # skorch's default callbacks that would only cost time per batch here
            "callbacks__print_log": LossTable(terms=tuple(terms)) if verbose else None,
            "callbacks__valid_loss": PassthroughScoring("valid_loss") if validated else None,
            **(net_kwargs or {}),
        },
    )


def print_line(net, line):
    """Print ``line`` where ``net`` prints its table (if verbose; the main process only)."""
    log = dict(net.callbacks_).get("print_log")
    if net.verbose and log is not None:
        log.sink(line)
