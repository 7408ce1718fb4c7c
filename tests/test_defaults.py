"""The defaults on data they were not tuned on: never worse than PCA, no dead codes, warnings."""

import warnings

import numpy as np
import pytest
from _helpers import assert_reconstructs_as_pca
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC

import skae._losses
from skae import AE, ConvAE, SparseAE


def _split(X):
    return train_test_split(X, test_size=0.25, random_state=0)


def _mse(est, X):
    return float(np.mean((est.inverse_transform(est.transform(X)) - X) ** 2))


def _pca_mse(k, Xtr, Xte):
    return _mse(PCA(k).fit(Xtr), Xte)


@pytest.mark.parametrize(
    "name, loader, k",
    [("breast_cancer raw", load_breast_cancer, 7), ("wine raw", load_wine, 3)],
)
def test_ae_is_never_worse_than_pca_on_unscaled_small_data(name, loader, k):
    # 0.1.0 gave 112x (breast cancer) and 5.5x (wine) PCA's held-out error here.
    Xtr, Xte = _split(loader().data)
    for seed in (0, 1):
        ae = AE(k, max_epochs=30, random_state=seed).fit(Xtr)
        assert _mse(ae, Xte) <= _pca_mse(k, Xtr, Xte) * (1 + 1e-5), (name, seed)


def test_ae_starts_exactly_at_pca_whatever_the_units():
    # Huge offsets and scales: the linear path is PCA's solution before training.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3)) @ rng.normal(size=(3, 10)) + 0.1 * rng.normal(size=(400, 10))
    X = X * np.logspace(0, 3, 10) + 5e3
    ae = AE(3, max_epochs=1, lr=1e-12, early_stopping=False, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # no progress, of course
        ae.fit(X)
    pca = PCA(3).fit(X)
    expected = pca.inverse_transform(pca.transform(X))
    np.testing.assert_allclose(ae.inverse_transform(ae.transform(X)), expected, rtol=1e-4)
    # the codes are PCA's scores, whitened
    np.testing.assert_allclose(
        np.abs(np.corrcoef(ae.transform(X).T, pca.transform(X).T))[:3, 3:], np.eye(3), atol=1e-4
    )


def test_ae_keeps_pca_when_training_is_not_significantly_better():
    # Linear data plus noise: nothing nonlinear to learn, PCA is kept. With 1,500 rows
    # the held-out split decides (cross-fitting's case is in test_selection.py).
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 2)) @ rng.normal(size=(2, 8)) + 0.3 * rng.normal(size=(1500, 8))
    ae = AE(2, max_epochs=40, random_state=0).fit(X)
    assert "validation_scores_" in vars(ae) and len(ae.net_.history) > 0  # no cross-fitting
    assert ae.best_epoch_ == 0
    assert_reconstructs_as_pca(ae, X, 2)


def test_ae_beats_pca_when_there_is_a_manifold():
    # A 1-d curve in 3-d: PCA(1) cannot follow it, the autoencoder can.
    rng = np.random.default_rng(0)
    t = rng.uniform(-2, 2, size=1500)
    X = np.c_[t, t**2, np.sin(2 * t)] + 0.02 * rng.normal(size=(1500, 3))
    Xtr, Xte = _split(X)
    ae = AE(1, max_epochs=40, random_state=0).fit(Xtr)
    assert ae.best_epoch_ > 0
    assert _mse(ae, Xte) < 0.5 * _pca_mse(1, Xtr, Xte)


def test_conv_ae_is_never_worse_than_pca():
    Xtr, Xte = _split(load_digits().data[:600] / 16)
    cae = ConvAE(8, input_shape=(1, 8, 8), max_epochs=10, random_state=0).fit(Xtr)
    assert _mse(cae, Xte) <= _pca_mse(8, Xtr, Xte) * (1 + 1e-5)


@pytest.mark.parametrize("seed", range(5))
def test_sparse_ae_defaults_learn_a_useful_code_on_every_seed(seed):
    # 0.1.0's default (2 ReLU units, L1 1e-3) died on most seeds: chance accuracy.
    digits = load_digits()
    Xtr, Xte, ytr, yte = train_test_split(
        digits.data / 16, digits.target, test_size=0.25, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no dead-unit warning
        sae = SparseAE(max_epochs=20, random_state=seed).fit(Xtr)
    codes = sae.transform(Xtr)
    assert np.all(codes.max(axis=0) > 0)  # no dead unit
    assert 0.05 < np.mean(codes > 0) < 0.8  # sparse, not empty
    accuracy = SVC().fit(codes, ytr).score(sae.transform(Xte), yte)
    assert accuracy >= 0.93


def test_dead_units_warn_with_the_remedy(monkeypatch):
    # Without the term that keeps units alive, the L1 penalty kills every unit.
    monkeypatch.setattr(skae._losses, "dead_unit_penalty", lambda pre: pre.sum() * 0.0)
    X = load_digits().data[:300] / 16
    sae = SparseAE(
        32,
        sparsity="l1",
        hidden_layer_sizes=(256,),  # behind a hidden layer, units die within 10 epochs
        sparsity_weight=1.0,
        max_epochs=10,
        early_stopping=False,
        random_state=0,
    )
    with pytest.warns(UserWarning, match=r"code units of SparseAE are dead.*sparsity_weight"):
        sae.fit(X)


def test_sparse_code_that_loses_the_variance_warns():
    # Issue 25: an over-weighted penalty empties the code; the warning says how much it
    # loses and what to try. The default keeps most of the variance, and does not warn.
    X = load_digits().data[:300] / 16
    with pytest.warns(UserWarning, match=r"keeps only \d+% .*variance.*Lower sparsity_weight"):
        SparseAE(32, sparsity="l1", sparsity_weight=300.0, max_epochs=10, random_state=0).fit(X)
    with pytest.warns(UserWarning, match=r"keeps only \d+% .*variance.*Raise active_fraction"):
        SparseAE(32, active_fraction=0.01, max_epochs=10, random_state=0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        sae = SparseAE(32, random_state=0).fit(X)
    kept = 1 - np.sum((sae.inverse_transform(sae.transform(X)) - X) ** 2) / np.sum(
        (X - X.mean(axis=0)) ** 2
    )
    assert kept >= skae._sparse.MIN_KEPT_VARIANCE


def test_topk_code_keeps_active_fraction_of_the_units_and_none_dies():
    X = load_digits().data[:500] / 16
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no dead-unit or lost-variance warning
        sae = SparseAE(64, active_fraction=0.25, random_state=0).fit(X)
    active = (sae.transform(X) > 0).sum(axis=1)
    assert active.max() == 16 and np.median(active) == 16  # 0.25 of 64, exactly
    assert np.all(sae.transform(X).max(axis=0) > 0)  # every unit serves some row
    assert "train_sparsity" in sae.net_.history[-1]  # the term that keeps units alive


def test_unselected_unit_penalty_pulls_up_only_the_units_no_row_selected():
    import torch

    from skae._losses import unselected_unit_penalty
    from skae._modules import TopK

    pre = torch.tensor([[3.0, 1.0, 0.5, -1.0], [2.5, 2.0, 0.2, -0.5]], requires_grad=True)
    code = TopK(0.5)(pre)  # rows keep units {0, 1}: units 2 and 3 are never selected
    penalty = unselected_unit_penalty(pre, code)
    # unit 2: closest to row 0's bar (1.0) by 0.5; unit 3: to row 0's bar by 2.0
    assert float(penalty) == pytest.approx((0.5 + 2.0) / 4)
    penalty.backward()
    assert pre.grad[0, 2] < 0 and pre.grad[0, 3] < 0  # descending raises them
    positive = pre.detach().abs()  # every unit kept, and firing, on every row
    assert float(unselected_unit_penalty(positive, TopK(1.0)(positive))) == 0.0


def test_no_progress_warns():
    X = load_digits().data[:300] / 16
    with pytest.warns(UserWarning, match="made no progress"):
        AE(2, lr=1e-12, max_epochs=4, early_stopping=False, random_state=0).fit(X)


def test_auto_training_parameters_follow_the_data():
    rng = np.random.default_rng(0)
    narrow = rng.normal(size=(4000, 5))
    ae = AE(2, max_epochs=1, random_state=0).fit(narrow)
    assert ae.batch_size_ == 256  # 3,600 training rows: about 16 steps per epoch
    assert ae.lr_ == pytest.approx(2e-3 * np.sqrt(256 / 32))
    ae = AE(2, max_epochs=1, random_state=0).fit(rng.normal(size=(20_000, 5)))
    assert ae.batch_size_ == 512  # at most 512
    wide = rng.random(size=(20_000, 784), dtype=np.float32)
    ae = AE(32, max_epochs=1, random_state=0).fit(wide)
    assert ae.batch_size_ == 256  # a costly model gains nothing from larger batches
    assert AE(2, random_state=0).fit(narrow[:500]).max_epochs_ == 100  # small tables: most
    # the epoch budget: fewer epochs for more rows or a costlier model
    plan = AE(32)._plan(20_000, cost=468_000)
    assert plan["max_epochs"] == 17 and plan["n_valid"] == 2000
