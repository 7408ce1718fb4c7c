"""Slow tests on the real MNIST test set; skipped when ../shared/data/mnist is absent."""

from pathlib import Path

import numpy as np
import pytest
from sklearn.decomposition import PCA

from skae import AE
from skae.datasets import load_mnist

MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not MNIST.is_dir(), reason=f"MNIST not found at {MNIST}"),
]


@pytest.fixture(scope="module")
def mnist():
    X, y = load_mnist(MNIST)
    return X[:8000], X[8000:], y


def test_load_mnist(mnist):
    Xtr, Xte, y = mnist
    assert Xtr.shape == (8000, 784) and Xte.shape == (2000, 784)
    assert Xtr.dtype == np.float32 and 0.0 <= Xtr.min() and Xtr.max() == 1.0
    assert set(np.unique(y)) == set(range(10))


def test_ae_beats_pca_on_mnist(mnist):
    Xtr, Xte, _ = mnist
    pca = PCA(32).fit(Xtr)
    pca_mse = np.mean((pca.inverse_transform(pca.transform(Xte)) - Xte) ** 2)
    ae = AE(n_components=32, max_epochs=8, batch_size=128, random_state=0).fit(Xtr)
    ae_mse = np.mean((ae.inverse_transform(ae.transform(Xte)) - Xte) ** 2)
    assert ae_mse < pca_mse
