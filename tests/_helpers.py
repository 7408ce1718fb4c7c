"""Small estimators and data shared by the reliability tests (bad input, persistence, ...)."""

import numpy as np

from skae import AE, VAE, ConvAE, SparseAE

ESTIMATORS = {
    "AE": lambda **kw: AE(n_components=2, max_epochs=2, random_state=0, **kw),
    "SparseAE": lambda **kw: SparseAE(n_components=6, max_epochs=2, random_state=0, **kw),
    "ConvAE": lambda **kw: ConvAE(n_components=2, max_epochs=2, random_state=0, **kw),
    "VAE": lambda **kw: VAE(n_components=2, max_epochs=2, random_state=0, **kw),
}
#: 30 rows, 4 features in [0, 1].
BASE = np.random.default_rng(0).random((30, 4))


def assert_reconstructs_as_pca(model, X, n_components):
    """``model`` reconstructs ``X`` as PCA(n_components) does, to float32 rounding."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components).fit(X)
    np.testing.assert_allclose(
        model.inverse_transform(model.transform(X)),
        pca.inverse_transform(pca.transform(X)),
        rtol=1e-4,
        atol=1e-5 * np.abs(X).max(),
    )
