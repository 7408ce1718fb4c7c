"""The one place that builds skorch nets for skae's estimators.

skorch is configured through its documented parameters: ``criterion`` (a
plain callable returning named loss terms), ``iterator_train`` and
``iterator_valid`` (:class:`TensorBatchIterator`, whole-batch tensors
instead of a per-row ``Dataset`` + ``DataLoader``), ``train_split``
(:class:`HoldoutSplit`) and callbacks (:class:`TrainingGuard`,
:class:`LossTable`, and skorch's ``PassthroughScoring`` and
``EarlyStopping``).

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

:class:`LossTable` subclasses skorch's ``PrintLog``
(``skorch/callbacks/logging.py``) and overrides its public ``table`` method,
which formats one epoch's row: for the column order and for plain output
outside a terminal (see its docstring).

:class:`skae._accelerate.AcceleratedAutoencoderNet` overrides more methods,
for data parallelism; its docstring lists them.
"""

import functools
import math
import os
import sys
import time
import warnings
from itertools import cycle

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping, PassthroughScoring, PrintLog
from skorch.callbacks.logging import filter_log_keys
from skorch.utils import Ansi
from tabulate import tabulate

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

#: Ctrl-C during training is absorbed once: the fit ends early and keeps the weights
#: of the last completed epoch. Another Ctrl-C within this many seconds, in any fit
#: of the process, is not absorbed: it propagates, so that a loop of fits (e.g.
#: ``GridSearchCV``) can be stopped by pressing Ctrl-C twice.
INTERRUPT_WINDOW_S = 10.0


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


class _InterruptClock:
    """When this process last absorbed a Ctrl-C (``time.monotonic()``), if it did."""

    last = None


def _cpu_snapshot(module):
    """A copy of ``module``'s weights on the CPU (device memory stays free)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


class TrainingGuard(Callback):
    """Keep the last good weights; act on divergence and interrupts.

    After each completed epoch with a finite training loss it snapshots the
    module's weights, on the CPU. If the loss becomes NaN or infinite,
    training stops and the last finite weights are restored, with a warning.
    If training is interrupted (Ctrl-C) in the middle of an epoch, the
    weights of the last completed epoch are restored and the partial epoch is
    dropped from the history, with a warning, and the fit returns; but a
    Ctrl-C within :data:`INTERRUPT_WINDOW_S` seconds of one absorbed so
    (in any fit of the process) is raised again after the same restoring,
    so that it stops the caller too. The snapshot is released when training
    ends and is never pickled, so a fitted model holds one copy of its
    weights.
    """

    def initialize(self):
        self.best_state_ = None
        self.completed_ = 0
        self.diverged_ = None
        return self

    def on_train_begin(self, net, **kwargs):
        self.initialize()
        self.completed_ = len(net.history)
        if self.completed_:  # continued training (partial_fit): keep the current weights
            self.best_state_ = _cpu_snapshot(net.module_)

    def on_epoch_end(self, net, **kwargs):
        loss = net.history[-1, "train_loss"]
        valid = net.history[-1].get("valid_loss", 0.0)
        if not (math.isfinite(loss) and math.isfinite(valid)):
            self.diverged_ = (len(net.history), loss if not math.isfinite(loss) else valid)
            raise KeyboardInterrupt  # skorch's documented way to stop training
        self.best_state_ = _cpu_snapshot(net.module_)
        self.completed_ = len(net.history)

    def on_train_end(self, net, **kwargs):
        # The partial or diverged epoch's history rows are dropped by the owner
        # (see ``truncate_history``) once every callback's on_train_end has run.
        best_state, self.best_state_ = self.best_state_, None  # release the snapshot
        interrupted = len(net.history) > self.completed_
        if not interrupted or best_state is None:
            return
        net.module_.load_state_dict(best_state)
        if self.diverged_ is not None:
            epoch, loss = self.diverged_
            message = (
                f"Training diverged at epoch {epoch} (loss={loss}); stopped and restored the "
                f"weights of epoch {epoch - 1}. Lower `lr` or scale the data (e.g. with "
                "StandardScaler)."
            )
        else:
            now, last = time.monotonic(), _InterruptClock.last
            if last is not None and now - last <= INTERRUPT_WINDOW_S:
                _InterruptClock.last = None
                self.truncate_history(net)
                raise KeyboardInterrupt(
                    f"Training was interrupted twice within {INTERRUPT_WINDOW_S:g} s: stopped."
                )
            _InterruptClock.last = now
            message = (
                "Training was interrupted; the model keeps the weights of the last completed "
                f"epoch ({self.completed_}). Press Ctrl-C again within "
                f"{INTERRUPT_WINDOW_S:g} s to stop what called fit too (e.g. a grid search)."
            )
        warnings.warn(message, RuntimeWarning, stacklevel=2)

    def truncate_history(self, net):
        """Drop the history rows of an interrupted or diverged epoch."""
        del net.history[self.completed_ :]

    def __getstate__(self):
        # As skorch's EarlyStopping: never pickle a copy of the weights (nor
        # tensors that may live on a GPU) if pickled while training.
        state = self.__dict__.copy()
        state["best_state_"] = None
        return state


class LRSchedule(Callback):
    """Learning rate of every optimiser step: linear warm-up, then cosine decay.

    Each parameter group's rate is ``net.lr * group.get("lr_scale", 1) *
    factor``, where ``factor`` rises linearly from ``1 / warmup_steps`` to 1
    over the first ``warmup_steps`` steps of a fit and then follows a
    half cosine from 1 to 0 at ``total_steps``. With ``total_steps=None``
    (``partial_fit``, and any training that continues a fitted model) the
    factor is 1: a constant rate, as one pass of ``partial_fit`` expects.
    The rates are derived from ``net.lr`` and the groups' ``lr_scale``
    (never from the optimiser's current rates), so a model restored by
    :func:`skae.load` continues with the same rates as the original.
    """

    def __init__(self, total_steps=None, warmup_steps=0):
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps

    def on_train_begin(self, net, **kwargs):
        self.step_ = 0
        # A schedule spans one fit from scratch; continued training is constant.
        self.active_ = self.total_steps is not None and len(net.history) == 0
        self._set(net, 1.0)

    def factor(self, step):
        """The multiplier of ``net.lr`` at optimiser step ``step`` (from 0)."""
        if not self.active_:
            return 1.0
        factor = 0.5 * (1.0 + math.cos(math.pi * min(1.0, step / max(1, self.total_steps))))
        if step < self.warmup_steps:
            factor *= (step + 1) / self.warmup_steps
        return factor

    def _set(self, net, factor):
        for group in net.optimizer_.param_groups:
            group["lr"] = net.lr * group.get("lr_scale", 1.0) * factor

    def on_batch_begin(self, net, training=False, **kwargs):
        if training and self.active_:
            self._set(net, self.factor(self.step_))
            self.step_ += 1


def _plain(net):
    """The net's module, unwrapped from a data-parallel wrapper if any."""
    return getattr(net.module_, "module", net.module_)


class BestWeights(Callback):
    """Keep the weights with the lowest validation loss, the initial ones included.

    Before the first epoch of a fit it records the per-sample validation
    losses of the initial weights (``net.criterion_.per_sample``) and a copy
    of those weights (on the CPU); after each epoch it copies the weights
    when ``valid_loss`` is the lowest so far. When training ends the best
    weights are restored, and the copies are released.

    With ``reference=True`` the initial weights are a solution in their own
    right: PCA's, for a module with a linear path (its ``use_reference(True)``
    selects that solution alone while the reference is recorded, and
    ``use_reference(False)`` then hands training to the network; for a
    network started at PCA's solution both are no-ops). The trained weights
    replace the reference only if they are better *significantly*: on the validation
    rows, the mean per-sample loss must be lower than the initial weights' by
    more than ``margin`` standard errors of the paired differences.
    Otherwise the initial weights are kept (``kept_initial_`` is True), so
    that a small or noisy validation set never selects a model that is worse
    than the reference by chance.
    """

    def __init__(self, reference=False, margin=2.0):
        self.reference = reference
        self.margin = margin

    def initialize(self):
        self._reset()
        return self

    def _reset(self):
        self.initial_ = None
        self.initial_losses_ = None
        self.best_ = None
        self.best_loss_ = math.inf
        self.best_epoch_ = None
        self.kept_initial_ = False

    def _losses(self, net, dataset):
        net.module_.eval()
        with torch.no_grad():
            losses = [
                net.criterion_.per_sample(net.module_(Xi), yi)
                for Xi, yi in net.get_iterator(dataset, training=False)
            ]
        return torch.cat(losses).double().cpu()

    def on_train_begin(self, net, **kwargs):
        self._reset()
        self.start_ = len(net.history)

    def on_epoch_begin(self, net, dataset_valid=None, **kwargs):
        if dataset_valid is None or self.initial_ is not None or len(dataset_valid) == 0:
            return
        if self.start_:  # continued training (partial_fit): never go back
            return
        module = _plain(net)
        if self.reference:
            module.use_reference(True)
        losses = self._losses(net, dataset_valid)
        self.initial_, self.initial_losses_ = _cpu_snapshot(net.module_), losses
        self.best_, self.best_loss_, self.best_epoch_ = self.initial_, float(losses.mean()), 0
        self.valid_ = dataset_valid
        if self.reference:
            module.use_reference(False)

    def on_epoch_end(self, net, **kwargs):
        loss = net.history[-1].get("valid_loss")
        if self.initial_ is None or loss is None or not math.isfinite(loss):
            return
        if loss < self.best_loss_:
            self.best_, self.best_loss_ = _cpu_snapshot(net.module_), loss
            self.best_epoch_ = len(net.history) - self.start_

    def on_train_end(self, net, **kwargs):
        if self.best_ is None:
            return
        net.module_.load_state_dict(self.best_)
        if self.reference and self.best_epoch_:
            diff = self._losses(net, self.valid_) - self.initial_losses_
            n = len(diff)
            spread = float(diff.std()) / math.sqrt(n) if n > 1 else math.inf
            if not float(diff.mean()) + self.margin * spread < 0.0:
                net.module_.load_state_dict(self.initial_)
                self.kept_initial_ = True
        epoch, kept = self.best_epoch_, self.kept_initial_
        self._reset()  # release the copies (a fitted model holds one copy of its weights)
        self.best_epoch_, self.kept_initial_ = (0 if kept else epoch), kept
        self.valid_ = None

    def __getstate__(self):
        state = self.__dict__.copy()
        for key in ("initial_", "initial_losses_", "best_", "valid_"):
            state[key] = None
        return state


def _colour_supported(stream):
    """Whether ANSI colours show as colours on ``stream``: a terminal or a notebook."""
    if os.environ.get("NO_COLOR"):  # https://no-color.org
        return False
    if type(stream).__module__.startswith("ipykernel"):  # Jupyter renders ANSI colours
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class LossTable(PrintLog):
    """skorch's per-epoch table, with meaningful columns and colour only on a terminal.

    Columns: ``epoch``; the losses (``train_loss``, ``valid_loss``); the
    criterion's named ``terms`` in its order (``train_<term>`` then
    ``valid_<term>``); any other logged value (sorted); ``dur``. skorch's
    ``PrintLog`` sorts them alphabetically. The best loss so far is coloured
    as skorch does when standard output is a terminal (or a Jupyter
    notebook); redirected to a file or a pipe, or with ``NO_COLOR`` set, the
    table is plain text.

    Overrides ``PrintLog.table`` (public, ``skorch/callbacks/logging.py``),
    the method that formats one row; skorch's ``format_row`` formats each
    cell.
    """

    def __init__(
        self,
        terms=(),
        keys_ignored=None,
        sink=print,
        tablefmt="simple",
        floatfmt=".4f",
        stralign="right",
    ):
        super().__init__(
            keys_ignored=keys_ignored,
            sink=sink,
            tablefmt=tablefmt,
            floatfmt=floatfmt,
            stralign=stralign,
        )
        self.terms = terms

    def columns(self, keys):
        """The keys of one history row to print, in order."""
        keys = list(keys)
        shown = set(filter_log_keys(keys, keys_ignored=self.keys_ignored_))
        first = ["train_loss", "valid_loss"]
        first += [f"{prefix}_{term}" for prefix in ("train", "valid") for term in self.terms]
        first = [k for k in first if k in shown and k != "dur"]
        rest = sorted(shown - set(first) - {"dur"})
        events = sorted(k for k in keys if k.startswith("event_") and k not in self.keys_ignored_)
        epoch = ["epoch"] if "epoch" in keys and "epoch" not in self.keys_ignored_ else []
        order = epoch + first + rest + events
        return order + (["dur"] if "dur" in shown else [])

    def table(self, row):
        colour = _colour_supported(sys.stdout)
        colours = cycle([c.value for c in Ansi if c != Ansi.ENDC]) if colour else cycle([""])
        headers, cells = [], []
        for key, colour_code in zip(self.columns(row.keys()), colours):
            cell = self.format_row(row, key, color=colour_code)
            if not colour and isinstance(cell, str):
                cell = cell.replace(Ansi.ENDC.value, "")  # format_row always closes a colour
            headers.append(key[len("event_") :] if key.startswith("event_") else key)
            cells.append(cell)
        return tabulate(
            [cells],
            headers=headers,
            tablefmt=self.tablefmt,
            floatfmt=self.floatfmt,
            stralign=self.stralign,
        )


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
        Fraction held out for ``valid_loss``; ``None`` for no split.
    early_stopping : bool
        Stop on the validation loss (else on the training loss) when it has
        not improved by a relative ``tol`` in ``n_iter_no_change`` epochs.
        With a validation split, :class:`BestWeights` restores the weights
        of the best epoch (the initial weights included).
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
        if validation_fraction is not None:
            name = f"valid_{term}"
            callbacks.append((name, PassthroughScoring(name, lower_is_better=None)))
    monitor = "valid_loss" if early_stopping else "train_loss"
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
    if validation_fraction is not None:
        callbacks.append(("best_weights", BestWeights(reference=reference)))
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
        train_split=HoldoutSplit(validation_fraction) if validation_fraction else None,
        callbacks=callbacks,
        device=device,
        verbose=verbose,
        **{
            # skorch's default callbacks that would only cost time per batch here
            "callbacks__print_log": LossTable(terms=tuple(terms)) if verbose else None,
            "callbacks__valid_loss": (
                PassthroughScoring("valid_loss") if validation_fraction else None
            ),
            **(net_kwargs or {}),
        },
    )
