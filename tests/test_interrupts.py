"""Ctrl-C during training: the last completed epoch's weights are kept."""

import numpy as np
import pytest

from skae import AE


def _interrupt_after(monkeypatch, n_batches):
    import skae._losses as losses

    calls = {"n": 0}
    real = losses.mean_reconstruction_error

    def interrupted(out, x, kind):
        calls["n"] += 1
        if calls["n"] > n_batches:
            raise KeyboardInterrupt
        return real(out, x, kind)

    monkeypatch.setattr(losses, "mean_reconstruction_error", interrupted)


def test_interrupt_keeps_last_completed_epoch(digits, monkeypatch):
    Xtr = digits[0]
    reference = AE(n_components=4, max_epochs=2, random_state=0).fit(Xtr)
    per_epoch = int(np.ceil(len(Xtr) / 64))
    _interrupt_after(monkeypatch, 2 * per_epoch + 3)  # Ctrl-C in the middle of epoch 3
    est = AE(n_components=4, max_epochs=10, random_state=0)
    with pytest.warns(RuntimeWarning, match="interrupted.*last completed epoch \\(2\\)"):
        est.fit(Xtr)
    assert est.n_iter_ == 2 and len(est.loss_curve_) == 2
    np.testing.assert_array_equal(est.transform(Xtr), reference.transform(Xtr))


def test_interrupt_in_first_epoch_propagates(digits, monkeypatch):
    _interrupt_after(monkeypatch, 2)
    est = AE(n_components=4, max_epochs=10, random_state=0)
    with pytest.raises(KeyboardInterrupt):
        est.fit(digits[0])
    assert not hasattr(est, "net_")
