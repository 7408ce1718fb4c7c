"""skae's skorch callbacks, one family per section (as skorch's ``callbacks/`` package).

- training safety: :class:`TrainingGuard` keeps the last good weights and
  acts on divergence and interrupts (Ctrl-C);
- schedule: :class:`LRSchedule`, the learning rate of every optimiser step
  (warm-up, then cosine decay);
- selection: :class:`BestWeights` keeps the weights of the best epoch (the
  initial ones included) on the validation rows, judged as
  :mod:`skae._selection` says;
- logging: :class:`LossTable`, the per-epoch table printed with
  ``verbose``.

:func:`skae._net.build_net` installs them. Nothing here imports
scikit-learn.

:class:`LossTable` subclasses skorch's ``PrintLog``
(``skorch/callbacks/logging.py``) and overrides its public ``table`` method,
which formats one epoch's row: for the column order and for plain output
outside a terminal (see its docstring). The other callbacks subclass
skorch's ``Callback`` and override only its documented hooks (``initialize``
and ``on_*``); those that hold copies of the weights during training define
``__getstate__`` so that the copies are never pickled.
"""

import math
import os
import sys
import time
import warnings
from itertools import cycle

import torch
from skorch.callbacks import Callback, PrintLog
from skorch.callbacks.logging import filter_log_keys
from skorch.utils import Ansi
from tabulate import tabulate

from skae._selection import beats_reference, capped_loss, loss_cap


def _cpu_snapshot(module):
    """A copy of ``module``'s weights on the CPU (device memory stays free)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


# -- training safety ----------------------------------------------------------

#: Ctrl-C during training is absorbed once: the fit ends early and keeps the weights
#: of the last completed epoch. Another Ctrl-C within this many seconds, in any fit
#: of the process, is not absorbed: it propagates, so that a loop of fits (e.g.
#: ``GridSearchCV``) can be stopped by pressing Ctrl-C twice.
INTERRUPT_WINDOW_S = 10.0


class _InterruptClock:
    """When this process last absorbed a Ctrl-C (``time.monotonic()``), if it did."""

    last = None


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
        self.interrupted_ = False
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
        self.interrupted_ = interrupted and self.diverged_ is None
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


# -- schedule -----------------------------------------------------------------


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

    After each epoch it records the base rate of that epoch's last step,
    ``net.lr * factor``, as ``"lr"`` in the history.
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

    def on_epoch_end(self, net, **kwargs):
        net.history.record("lr", net.lr * self.factor(max(0, self.step_ - 1)))


# -- selection ----------------------------------------------------------------


def _plain(net):
    """The net's module, unwrapped from a data-parallel wrapper if any."""
    return getattr(net.module_, "module", net.module_)


class BestWeights(Callback):
    """Keep the weights of the best epoch on the validation rows, the initial ones included.

    Before the first epoch of a fit it records the per-row validation losses
    of the initial weights (``net.criterion_.per_sample``) and a copy of
    those weights (on the CPU); after each epoch it copies the weights when
    the epoch is the best so far. When training ends the best weights are
    restored, and the copies are released.

    Without a reference the best epoch is the one of lowest ``valid_loss``.

    With ``reference=True`` the initial weights are a solution in their own
    right: PCA's, for a module with a linear path (its ``use_reference(True)``
    selects that solution alone while the reference is recorded, and
    ``use_reference(False)`` then hands training to the network; for a
    network started at PCA's solution both are no-ops). Then an epoch may
    replace the reference only if it beats it on the validation rows
    (:func:`skae._selection.beats_reference`: a lower mean loss, and per-row
    log-ratios significantly below zero), and among those epochs the one
    kept is the one of lowest *capped* validation loss
    (:func:`skae._selection.capped_loss`: every row's loss capped at the
    99th percentile of the reference's), so that a few extreme rows cannot
    decide which epoch is kept. The capped loss is computed from the
    per-row losses of skorch's own validation pass (``on_batch_end``) and
    recorded in the history as ``"valid_capped"`` (early stopping monitors
    it). When no epoch beats the reference, the initial weights are kept
    (``kept_initial_`` is True).

    With ``keep_rows=True`` (cross-fitting) every epoch's per-row losses are
    kept in ``rows_`` (row 0: the initial weights), with the reference's in
    ``reference_rows_``. After training, ``best_epoch_`` is the epoch kept
    (0: the initial weights) and ``kept_loss_`` its validation loss (the
    plain mean of the per-row losses with a reference, else ``valid_loss``).
    """

    def __init__(self, reference=False, keep_rows=False):
        self.reference = reference
        self.keep_rows = keep_rows

    def initialize(self):
        self._reset()
        self.rows_, self.reference_rows_ = None, None
        return self

    def _reset(self):
        self.initial_ = None
        self.initial_losses_ = None
        self.best_ = None
        self.best_loss_ = math.inf
        self.best_losses_ = None
        self.best_epoch_ = None
        self.kept_initial_ = False
        self.cap_ = math.inf
        self.batch_losses_ = []

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
        self.batch_losses_ = []
        if dataset_valid is None or self.initial_ is not None or len(dataset_valid) == 0:
            return
        if self.start_:  # continued training (partial_fit): never go back
            return
        module = _plain(net)
        if self.reference:
            module.use_reference(True)
        losses = self._losses(net, dataset_valid)
        self.initial_, self.initial_losses_ = _cpu_snapshot(net.module_), losses
        self.best_, self.best_losses_, self.best_epoch_ = self.initial_, losses, 0
        if self.reference:
            self.cap_ = loss_cap(losses)
            self.best_loss_ = capped_loss(losses, self.cap_)
            module.use_reference(False)
        else:
            self.best_loss_ = float(losses.mean())
        if self.keep_rows:
            self.rows_, self.reference_rows_ = [losses], losses

    def on_batch_end(self, net, batch=None, training=False, y_pred=None, **kwargs):
        if training or self.initial_ is None or y_pred is None:
            return
        with torch.no_grad():
            self.batch_losses_.append(net.criterion_.per_sample(y_pred, batch[1]).double().cpu())

    def on_epoch_end(self, net, **kwargs):
        if self.initial_ is None or "valid_loss" not in net.history[-1]:
            return
        losses = torch.cat(self.batch_losses_) if self.batch_losses_ else None
        self.batch_losses_ = []
        if self.reference and losses is not None:
            loss = capped_loss(losses, self.cap_)
            net.history.record("valid_capped", loss)
            eligible = beats_reference(losses, self.initial_losses_)
        else:
            loss, eligible = net.history[-1, "valid_loss"], True
        if self.keep_rows and losses is not None:
            self.rows_.append(losses)
        if eligible and math.isfinite(loss) and loss < self.best_loss_:
            self.best_, self.best_loss_ = _cpu_snapshot(net.module_), loss
            self.best_losses_ = losses
            self.best_epoch_ = len(net.history) - self.start_

    def on_train_end(self, net, **kwargs):
        if self.best_ is None:
            return
        net.module_.load_state_dict(self.best_)
        kept_loss = self.best_loss_
        if self.reference:  # the plain mean loss of the weights kept
            kept_loss = float(self.best_losses_.mean())
        epoch = self.best_epoch_
        trained = len(net.history) > self.start_
        self._reset()  # release the copies (a fitted model holds one copy of its weights)
        self.best_epoch_, self.kept_initial_ = epoch, trained and not epoch
        self.kept_loss_ = kept_loss

    def __getstate__(self):
        state = self.__dict__.copy()
        for key in ("initial_", "initial_losses_", "best_", "best_losses_", "rows_"):
            state[key] = None
        state["reference_rows_"], state["batch_losses_"] = None, []
        return state


# -- logging ------------------------------------------------------------------


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
    ``valid_<term>``); any other logged value (sorted) except the learning
    rate ``lr`` (:class:`LRSchedule` records it for the training curve);
    ``dur``. skorch's ``PrintLog`` sorts them alphabetically. The best loss so far is coloured
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
        shown = set(filter_log_keys(keys, keys_ignored=self.keys_ignored_)) - {"lr"}
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
