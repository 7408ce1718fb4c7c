"""Behaviour of VAE: sampling, deterministic transform, ELBO score, KL term."""

import pickle

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from skae import VAE

BCE = {"loss": "bce", "output_activation": "sigmoid"}


@pytest.fixture(scope="module")
def vae(digits):
    return VAE(n_components=4, max_epochs=30, random_state=0, **BCE).fit(digits[0])


def test_sample_shape_and_reproducibility(vae):
    a = vae.sample(5, random_state=0)
    assert a.shape == (5, 64)
    assert np.all((a >= 0) & (a <= 1))
    np.testing.assert_array_equal(a, vae.sample(5, random_state=0))
    assert not np.array_equal(a, vae.sample(5, random_state=1))
    assert vae.sample().shape == (1, 64)


@pytest.mark.parametrize("n_samples", [0, -3, 2.5, "4"])
def test_sample_rejects_bad_n_samples(vae, n_samples):
    with pytest.raises(ValueError, match="n_samples"):
        vae.sample(n_samples)


def test_transform_is_deterministic(vae, digits):
    Xte = digits[1]
    np.testing.assert_array_equal(vae.transform(Xte), vae.transform(Xte))
    np.testing.assert_array_equal(vae.score_samples(Xte), vae.score_samples(Xte))


def test_elbo_improves_with_training(digits):
    Xtr, Xte, _, _ = digits
    short = VAE(n_components=4, max_epochs=1, random_state=0, **BCE).fit(Xtr)
    long = VAE(n_components=4, max_epochs=30, random_state=0, **BCE).fit(Xtr)
    assert long.score(Xte) > short.score(Xte)
    # per-epoch loss goes down and the terms are logged separately
    hist = long.net_.history
    assert hist[-1, "train_loss"] < hist[0, "train_loss"]
    np.testing.assert_allclose(
        hist[-1, "train_loss"],
        hist[-1, "train_reconstruction"] + hist[-1, "train_kl"],
        rtol=1e-4,
    )


def test_elbo_is_bounded_by_reconstruction(vae, digits):
    # ELBO = -(NLL + KL) <= -NLL: the KL term is positive.
    kl = np.asarray(vae.net_.history[:, "train_kl"])
    assert np.all(kl > 0)
    assert np.all(vae.score_samples(digits[1]) < 0)


def test_kl_shrinks_as_beta_grows(digits):
    Xtr = digits[0]
    kls = []
    for beta in (0.5, 1.0, 4.0):
        est = VAE(n_components=4, beta=beta, max_epochs=20, random_state=0, **BCE).fit(Xtr)
        kls.append(est.net_.history[-1, "train_kl"])
    assert kls[0] > kls[1] > kls[2] > 0


def test_grid_search_over_beta_default_scoring(digits):
    search = GridSearchCV(
        VAE(n_components=4, max_epochs=10, random_state=0, **BCE), {"beta": [1.0, 8.0]}, cv=2
    ).fit(digits[0])
    # beta=1 optimises the ELBO itself, which is the default score
    assert search.best_params_ == {"beta": 1.0}
    assert np.isfinite(search.best_score_)


def test_pickle_keeps_sample_reproducible(vae):
    restored = pickle.loads(pickle.dumps(vae))
    np.testing.assert_array_equal(vae.sample(4, random_state=3), restored.sample(4, random_state=3))


def test_inverse_transform_decodes_latent_points(vae):
    Z = np.linspace(-2, 2, 12).reshape(3, 4)
    X = vae.inverse_transform(Z)
    assert X.shape == (3, 64)
    assert np.all(np.isfinite(X))


@pytest.mark.parametrize("scale", [1e-8, 1e6, 1e12])
def test_gaussian_vae_is_numerically_safe(scale):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 6)) * scale
    est = VAE(n_components=2, max_epochs=5, random_state=0).fit(X)
    assert np.all(np.isfinite(est.transform(X)))
    assert np.all(np.isfinite(est.score_samples(X)))
    assert np.all(np.isfinite(est.sample(3, random_state=0)))
