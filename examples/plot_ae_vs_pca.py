"""
====================================
Autoencoder versus PCA on the digits
====================================

:class:`~skae.AE` is meant as a nonlinear drop-in replacement for
:class:`~sklearn.decomposition.PCA`: both have ``n_components``,
``transform`` and ``inverse_transform``. Here both compress the 64-pixel
digits to a few numbers and decode them back; we compare the reconstructions
of held-out digits with :class:`~skae.ReconstructionDisplay`, and the
cross-validated reconstruction error as the number of components grows (the
bottleneck sweep) with scikit-learn's
:class:`~sklearn.model_selection.ValidationCurveDisplay`.
"""

# %%
# Data: the 8x8 digits, pixels scaled to [0, 1], with a stratified held-out set.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import ValidationCurveDisplay, train_test_split

from skae import AE, ReconstructionDisplay

X, y = load_digits(return_X_y=True)
X = X / 16
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

# %%
# PCA and an autoencoder with 8 components
# ----------------------------------------
# The pixels lie in [0, 1], so the autoencoder uses a sigmoid output with the
# binary cross-entropy loss. A short, fixed training budget keeps this example
# fast; the default ``max_epochs="auto"`` trains longer.

ae_params = dict(hidden_layer_sizes=(128,), output_activation="sigmoid", loss="bce", max_epochs=30)
pca = PCA(n_components=8, random_state=0).fit(X_train)
ae = AE(n_components=8, random_state=0, **ae_params).fit(X_train)


def neg_mse(model, X, y=None):
    """Minus the mean squared reconstruction error: a scorer that needs no labels."""
    return -np.mean((X - model.inverse_transform(model.transform(X))) ** 2)


for name, model in [("PCA", pca), ("AE", ae)]:
    print(f"{name:>3}: held-out MSE {-neg_mse(model, X_test):.4f}")

# %%
# Reconstructions side by side
# ----------------------------
# Ten held-out digits (top row of each panel) and their reconstructions.
# ``ReconstructionDisplay.from_estimator`` works with any estimator that has
# ``transform`` and ``inverse_transform``, PCA included.

fig, axes = plt.subplots(2, 1, figsize=(8, 4.2), layout="constrained")
for ax, model in zip(axes, [pca, ae]):
    ReconstructionDisplay.from_estimator(model, X_test, image_shape=(8, 8), ax=ax)

# %%
# The bottleneck sweep
# --------------------
# How many components does the data need? ``ValidationCurveDisplay`` refits
# each model for every ``n_components`` on cross-validation folds, with
# ``y=None``: an autoencoder needs no labels. Its own ``score`` is the
# negative training loss (here the cross-entropy, which PCA does not
# have), so both models are scored by the same mean squared error
# (``negate_score=True`` draws the error rather than its negative).
#
# At equal code size the autoencoder reconstructs unseen digits with a lower
# error than PCA for small codes, where a linear projection loses most of the
# structure. As the code grows PCA catches up: with 16 of 64 components it
# keeps most of the variance, and the gap nearly closes under this short
# training budget. The shaded bands are the spread over the folds.

sizes = [2, 4, 8, 16]
fig, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
for name, model in [("PCA", PCA(random_state=0)), ("AE", AE(random_state=0, **ae_params))]:
    display = ValidationCurveDisplay.from_estimator(
        model,
        X_train,
        None,
        param_name="n_components",
        param_range=sizes,
        cv=3,
        scoring=neg_mse,
        negate_score=True,
        score_type="test",
        score_name="held-out mean squared error",
        ax=ax,
    )
    display.lines_[0].set_label(name)
ax.set_xscale("log", base=2)
ax.set_xticks(sizes, [str(n) for n in sizes])
ax.legend()
ax.set_title("Reconstruction error on held-out folds")
plt.show()
