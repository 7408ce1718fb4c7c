"""Selection robust to extreme rows, the radial branches, and cross-fitting on small tables."""

import numpy as np
import pytest
import torch
from _helpers import assert_reconstructs_as_pca
from sklearn.decomposition import PCA
from torch import nn

from skae import AE
from skae._modules import MLPAutoencoder, radial
from skae._plan import CROSSFIT_BELOW, CROSSFIT_FOLDS
from skae._selection import (
    beats_reference,
    best_epoch,
    capped_loss,
    cross_fitted_epoch,
    loss_cap,
)


def _t(values):
    return torch.tensor(values, dtype=torch.float64)


# -- the statistics -------------------------------------------------------------------


def test_capped_loss_is_not_decided_by_a_few_extreme_rows():
    rng = np.random.default_rng(0)
    reference = _t(rng.exponential(size=1000))
    cap = loss_cap(reference)
    assert cap == pytest.approx(float(np.quantile(reference.numpy(), 0.99)))
    better = reference * 0.8
    swung = better.clone()
    swung[:3] = 1e6  # three rows whose errors blew up this epoch
    assert float(swung.mean()) > float(reference.mean())  # the plain mean is swung
    assert capped_loss(swung, cap) < capped_loss(reference, cap)  # the capped one is not


def test_beats_reference_needs_the_mean_and_the_rows():
    rng = np.random.default_rng(0)
    reference = _t(rng.exponential(size=500))
    assert beats_reference(reference * 0.9, reference)
    assert not beats_reference(reference, reference)
    # lower mean, but only thanks to one row: worse on every other row
    one_row = reference * 1.05
    one_row[0] = 0.0
    reference_big = reference.clone()
    reference_big[0] = 1e4
    assert float(one_row.mean()) < float(reference_big.mean())
    assert not beats_reference(one_row, reference_big)
    # better on most rows, but a higher mean: never worse than the reference where it counts
    most_rows = reference * 0.5
    most_rows[0] = 1e4
    assert not beats_reference(most_rows, reference)
    assert not beats_reference(_t([0.1]), _t([1.0]))  # one row shows nothing


def test_best_epoch_pools_the_folds_and_stops_at_the_shortest():
    ref = [_t([1.0, 1.0, 1.0]), _t([1.0, 1.0])]
    fold_a = [ref[0], _t([0.9, 0.9, 0.9]), _t([0.5, 0.5, 0.5]), _t([0.1, 0.1, 0.1])]
    fold_b = [ref[1], _t([0.8, 0.8]), _t([0.6, 0.6])]  # one epoch fewer (stopped early)
    epoch, scores, losses, reference = best_epoch([fold_a, fold_b], ref)
    assert epoch == 2 and len(scores) == 3
    np.testing.assert_allclose(scores, [1.0, 0.86, 0.54])
    assert len(losses) == len(reference) == 5
    assert cross_fitted_epoch([fold_a, fold_b], ref)[0] == 2
    worse = [[ref[0], _t([2.0, 2.0, 2.0])], [ref[1], _t([2.0, 2.0])]]
    assert cross_fitted_epoch(worse, ref)[0] == 0  # the reference is kept
    assert cross_fitted_epoch([], [])[0] == 0


# -- the radial branches ------------------------------------------------------------------


def test_radial_is_the_branch_inside_and_homogeneous_beyond():
    torch.manual_seed(0)
    layers = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4))
    radius = torch.tensor(2.0)
    inside = torch.randn(5, 4) * 0.5
    assert torch.equal(radial(layers, inside, radius), layers(inside))
    far = torch.randn(5, 4) * 10  # root mean square well beyond the radius
    for s in (1.0, 3.0, 50.0):
        torch.testing.assert_close(radial(layers, s * far, radius), s * radial(layers, far, radius))
    # no infinite gradient at a zero row
    zero = torch.zeros(1, 4, requires_grad=True)
    radial(layers, zero, radius).sum().backward()
    assert torch.isfinite(zero.grad).all()


def test_the_autoencoder_reconstructs_extreme_rows_in_proportion():
    # Beyond both radii, the centred reconstruction of a row s times larger is s times larger
    # (up to the linear path's trained biases): an extreme row keeps the nonlinear correction,
    # scaled, instead of losing it.
    rng = np.random.default_rng(0)
    X = np.tanh(rng.normal(size=(300, 2)) @ rng.normal(size=(2, 6))) + 3.0
    ae = AE(2, hidden_layer_sizes=(16,), max_epochs=3, early_stopping=False, random_state=0)
    ae.fit(X)
    module = ae.net_.module_
    center = ae.net_.module_.scaling.center.double().numpy()
    direction = (X[0] - center) * 50  # far outside the training rows
    rows = center + np.outer([1.0, 4.0], direction)
    recon = ae.inverse_transform(ae.transform(rows)) - center
    np.testing.assert_allclose(recon[1], 4.0 * recon[0], rtol=1e-3)
    assert float(module.radius_input) > 0 and float(module.radius_code) > 0


def test_radii_are_fitted_to_the_training_rows():
    rng = np.random.default_rng(0)
    X = rng.standard_t(df=2, size=(2000, 5))
    ae = AE(2, max_epochs=1, early_stopping=False, random_state=0).fit(X)
    module = ae.net_.module_
    with torch.no_grad():
        x_n = module.scaling.normalize(torch.as_tensor(X, dtype=torch.float32))
        rms = module._branch_input(x_n).square().mean(dim=1).sqrt()
    inside = float((rms <= module.radius_input).float().mean())
    assert 0.97 <= inside <= 1.0  # 99 % of the (sampled) training rows
    assert (
        MLPAutoencoder(5, 2, (8,), linear_path=False)
        .state_dict()
        .keys()
        .isdisjoint({"radius_input", "radius_code"})
    )


# -- cross-fitting ----------------------------------------------------------------------------


def _curve(n, noise, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.uniform(-2, 2, size=n)
    return np.c_[t, t**2, np.sin(2 * t), np.cos(t)] + noise * rng.normal(size=(n, 4))


def test_small_tables_cross_fit_and_every_row_is_validated():
    X = _curve(300, 0.02)
    ae = AE(1, hidden_layer_sizes=(32,), max_epochs=30, random_state=0)
    plan = ae._plan(len(X), cost=1000, crossfit=True)
    assert plan["folds"] == CROSSFIT_FOLDS and plan["n_valid"] == len(X) // CROSSFIT_FOLDS
    assert ae._plan(10 * CROSSFIT_BELOW, cost=1000, crossfit=True)["folds"] == 0  # holdout
    assert ae._plan(len(X), cost=1000, crossfit=False)["folds"] == 0
    ae.fit(X)
    assert ae.best_epoch_ == ae.n_iter_ > 0  # trained on all rows for the epochs chosen
    assert "valid_loss" not in ae.net_.history[-1]  # the final model has no split
    assert len(ae.validation_scores_) <= 30
    # the score of the fold models' epoch kept (the final model takes as many optimiser steps)
    assert np.isclose(ae.validation_scores_, ae.best_validation_score_, rtol=1e-12).any()
    Xte = _curve(300, 0.02, seed=1)
    pca = PCA(1).fit(X)
    pca_mse = np.mean((pca.inverse_transform(pca.transform(Xte)) - Xte) ** 2)
    assert np.mean((ae.inverse_transform(ae.transform(Xte)) - Xte) ** 2) < 0.9 * pca_mse
    again = AE(1, hidden_layer_sizes=(32,), max_epochs=30, random_state=0).fit(X)
    np.testing.assert_array_equal(again.transform(X), ae.transform(X))


def test_cross_fitting_keeps_pca_untrained_when_the_folds_do_not_beat_it():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 2)) @ rng.normal(size=(2, 8)) + 0.3 * rng.normal(size=(150, 8))
    ae = AE(2, max_epochs=20, random_state=0).fit(X)
    assert ae.best_epoch_ == ae.n_iter_ == 0 and len(ae.loss_curve_) == 0
    assert len(ae.net_.history) == 0
    assert_reconstructs_as_pca(ae, X, 2)
    ae.partial_fit(X)  # and it can be trained further
    assert ae.n_iter_ == 1


def test_holdout_selection_is_recorded_in_the_history():
    X = _curve(2000, 0.05)
    ae = AE(1, hidden_layer_sizes=(16,), max_epochs=5, random_state=0).fit(X)
    history = ae.net_.history
    assert all("valid_capped" in row for row in history)
    early = dict(ae.net_.callbacks_)["early_stopping"]
    assert early.monitor == "valid_capped" and early.patience == ae.n_iter_no_change == 20
