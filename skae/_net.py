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

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}

#: Rows per forward pass when scoring the validation split.
VALID_BATCH_SIZE = 4096

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
    process.
    """

    def __init__(self, dataset, batch_size, shuffle=False, shard=None):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.shard = shard
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
            yield batch, batch


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
        not improved by a relative ``tol`` in ``n_iter_no_change`` epochs;
        with a validation split the best weights are restored.
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
                load_best=early_stopping,
            ),
        )
    )
    return net_class(
        module=module,
        **{f"module__{k}": v for k, v in module_kwargs.items()},
        criterion=functools.partial(criterion, **criterion_kwargs),
        optimizer=OPTIMIZERS[optimizer] if isinstance(optimizer, str) else optimizer,
        optimizer__weight_decay=weight_decay,
        lr=lr,
        max_epochs=max_epochs,
        batch_size=batch_size,
        iterator_train=TensorBatchIterator,
        iterator_train__shuffle=True,
        iterator_valid=TensorBatchIterator,
        iterator_valid__batch_size=VALID_BATCH_SIZE,
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
