"""scikit-learn's common estimator checks: zero failures, zero expected failures."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skae import AE, VAE, AEImputer, ConvAE, SparseAE

# Few epochs keep the checks fast; every other parameter is the default. (The
# checks feed arbitrary real data, so loss="bce", which needs data in [0, 1],
# is covered by the behaviour tests instead.)
FAST = {"max_epochs": 20}
ESTIMATORS = [
    AE(**FAST),
    SparseAE(**FAST),
    SparseAE(sparsity="l1", **FAST),
    SparseAE(sparsity="kl", **FAST),
    ConvAE(**FAST),
    VAE(**FAST),
    AEImputer(**FAST),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
