"""Ctrl-C during training: the last completed epoch's weights are kept; twice, it stops."""

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV

import skae._callbacks
from skae import AE


@pytest.fixture(autouse=True)
def no_recent_interrupt(monkeypatch):
    """Each test starts as if no Ctrl-C was absorbed recently in this process."""
    monkeypatch.setattr(skae._callbacks._InterruptClock, "last", None)


def _interrupt_after(monkeypatch, n_batches):
    """Raise KeyboardInterrupt at every training batch after the first ``n_batches``."""
    import skae._losses as losses

    calls = {"n": 0}
    real = losses.mean_reconstruction_error

    def interrupted(out, x, kind):
        calls["n"] += 1
        if calls["n"] > n_batches:
            raise KeyboardInterrupt
        return real(out, x, kind)

    monkeypatch.setattr(losses, "mean_reconstruction_error", interrupted)
    return calls


def test_interrupt_keeps_last_completed_epoch(digits, monkeypatch):
    Xtr = digits[0]
    common = dict(n_components=4, max_epochs=10, batch_size=64, early_stopping=False)
    # The weights after each epoch of an uninterrupted fit.
    after_epoch = []
    on_epoch_end = skae._callbacks.TrainingGuard.on_epoch_end

    def record(self, net, **kwargs):
        on_epoch_end(self, net, **kwargs)
        after_epoch.append({k: v.clone() for k, v in net.module_.state_dict().items()})

    with monkeypatch.context() as m:
        m.setattr(skae._callbacks.TrainingGuard, "on_epoch_end", record)
        AE(random_state=0, **common).fit(Xtr)
    per_epoch = int(np.ceil(len(Xtr) / 64))
    _interrupt_after(monkeypatch, 2 * per_epoch + 3)  # Ctrl-C in the middle of epoch 3
    est = AE(random_state=0, **common)
    with pytest.warns(RuntimeWarning, match="interrupted.*last completed epoch \\(2\\)"):
        est.fit(Xtr)
    assert est.n_iter_ == 2 and len(est.loss_curve_) == 2
    for key, value in est.net_.module_.state_dict().items():
        torch.testing.assert_close(value, after_epoch[1][key], rtol=0, atol=0)


def test_interrupt_in_first_epoch_propagates(digits, monkeypatch):
    _interrupt_after(monkeypatch, 2)
    est = AE(n_components=4, max_epochs=10, random_state=0)
    with pytest.raises(KeyboardInterrupt):
        est.fit(digits[0])
    assert not hasattr(est, "net_")


def _interrupt_every_fit(monkeypatch, n_batches):
    """Interrupt every fit after its first ``n_batches`` batches; count the fits."""
    calls = _interrupt_after(monkeypatch, n_batches)
    fits = {"n": 0}
    begin = skae._callbacks.TrainingGuard.on_train_begin

    def on_train_begin(self, net, **kwargs):
        fits["n"] += 1
        calls["n"] = 0
        return begin(self, net, **kwargs)

    monkeypatch.setattr(skae._callbacks.TrainingGuard, "on_train_begin", on_train_begin)
    return fits


def test_second_interrupt_within_the_window_propagates(digits, monkeypatch):
    Xtr = digits[0]
    per_epoch = int(np.ceil(len(Xtr) / 64))
    _interrupt_every_fit(monkeypatch, per_epoch + 3)  # Ctrl-C in the middle of epoch 2
    first = AE(n_components=4, max_epochs=10, random_state=0)
    with pytest.warns(RuntimeWarning, match=r"Press Ctrl-C again within 10 s"):
        first.fit(Xtr)
    assert first.n_iter_ == 1
    second = AE(n_components=4, max_epochs=10, random_state=0)
    with pytest.raises(KeyboardInterrupt, match="interrupted twice"):
        second.fit(Xtr)
    assert not hasattr(second, "net_")
    # The propagated interrupt resets the clock: the next one is absorbed again.
    with pytest.warns(RuntimeWarning, match="last completed epoch \\(1\\)"):
        AE(n_components=4, max_epochs=10, random_state=0).fit(Xtr)


def test_interrupt_after_the_window_is_absorbed_again(digits, monkeypatch):
    Xtr = digits[0]
    per_epoch = int(np.ceil(len(Xtr) / 64))
    _interrupt_every_fit(monkeypatch, per_epoch + 3)
    monkeypatch.setattr(skae._callbacks, "INTERRUPT_WINDOW_S", 0.0)
    for _ in range(2):
        with pytest.warns(RuntimeWarning, match="interrupted"):
            est = AE(n_components=4, max_epochs=10, random_state=0).fit(Xtr)
        assert est.n_iter_ == 1


def test_second_interrupt_in_partial_fit_keeps_the_model(digits, monkeypatch):
    Xtr = digits[0]
    est = AE(n_components=4, random_state=0).partial_fit(Xtr)
    weights = {k: v.clone() for k, v in est.net_.module_.state_dict().items()}
    _interrupt_every_fit(monkeypatch, 3)
    with pytest.warns(RuntimeWarning, match="interrupted"):
        est.partial_fit(Xtr)
    with pytest.raises(KeyboardInterrupt):
        est.partial_fit(Xtr)
    assert est.n_iter_ == 1 and len(est.net_.history) == 1  # the partial epochs are dropped
    for key, value in est.net_.module_.state_dict().items():
        assert np.array_equal(value.numpy(), weights[key].numpy()), key


def test_second_interrupt_stops_a_grid_search(digits, monkeypatch):
    Xtr = digits[0][:600]
    per_epoch = int(np.ceil(len(Xtr) / 2 / 64))  # cv=2: each fit sees half the rows
    fits = _interrupt_every_fit(monkeypatch, per_epoch + 2)
    ae = AE(max_epochs=5, batch_size=64, early_stopping=False, random_state=0)
    search = GridSearchCV(ae, {"n_components": [2, 3, 4]}, cv=2)
    with pytest.warns(RuntimeWarning, match="interrupted"):
        with pytest.raises(KeyboardInterrupt):
            search.fit(Xtr)
    assert fits["n"] == 2  # the first interrupt was absorbed, the second stopped the search
