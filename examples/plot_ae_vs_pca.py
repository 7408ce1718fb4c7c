"""
====================================
Autoencoder versus PCA on the digits
====================================

:class:`~skae.AE` is meant as a nonlinear drop-in replacement for
:class:`~sklearn.decomposition.PCA`: both have ``n_components``,
``transform`` and ``inverse_transform``. Here both compress the 64-pixel
digits to a few numbers and decode them back; we compare the reconstructions
of held-out digits and the held-out reconstruction error as the number of
components grows.
"""

# %%
# Data: the 8x8 digits, pixels scaled to [0, 1], with a stratified held-out set.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from skae import AE

X, y = load_digits(return_X_y=True)
X = X / 16
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

# %%
# Fit PCA and an autoencoder for several code sizes
# --------------------------------------------------
# The pixels lie in [0, 1], so the autoencoder uses a sigmoid output with the
# binary cross-entropy loss. A short, fixed training budget keeps this example
# fast; the default ``max_epochs="auto"`` trains longer.


def held_out_mse(model):
    X_hat = model.inverse_transform(model.transform(X_test))
    return np.mean((X_test - X_hat) ** 2)


sizes = [2, 4, 8, 16]
errors = {"PCA": [], "AE": []}
models = {}
for n in sizes:
    pca = PCA(n_components=n, random_state=0).fit(X_train)
    ae = AE(
        n_components=n,
        hidden_layer_sizes=(128,),
        output_activation="sigmoid",
        loss="bce",
        max_epochs=40,
        random_state=0,
    ).fit(X_train)
    errors["PCA"].append(held_out_mse(pca))
    errors["AE"].append(held_out_mse(ae))
    models[n] = (pca, ae)

for name, errs in errors.items():
    print(f"{name:>3}: " + "  ".join(f"{n}: {e:.4f}" for n, e in zip(sizes, errs)))

# %%
# Reconstructions side by side
# ----------------------------
# Ten held-out digits (top), their PCA reconstruction and their autoencoder
# reconstruction with 8 components each.

pca, ae = models[8]
rows = {
    "original": X_test[:10],
    "PCA (8)": pca.inverse_transform(pca.transform(X_test[:10])),
    "AE (8)": ae.inverse_transform(ae.transform(X_test[:10])),
}
fig, axes = plt.subplots(3, 10, figsize=(8, 2.8))
for r, (name, images) in enumerate(rows.items()):
    for c in range(10):
        ax = axes[r, c]
        ax.imshow(images[c].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center")
fig.suptitle("Held-out digits and their reconstructions")

# %%
# Held-out error versus the number of components
# ----------------------------------------------
# At equal code size the autoencoder reconstructs unseen digits with a lower
# error than PCA for small codes, where a linear projection loses most of the
# structure. As the code grows PCA catches up: with 16 of 64 components it
# keeps most of the variance, and this short training budget no longer gives
# the autoencoder an edge.

fig, ax = plt.subplots(figsize=(5, 3.5))
for name, marker in (("PCA", "o"), ("AE", "s")):
    ax.plot(sizes, errors[name], marker=marker, label=name)
ax.set_xscale("log", base=2)
ax.set_xticks(sizes, [str(n) for n in sizes])
ax.set_xlabel("n_components")
ax.set_ylabel("held-out mean squared error")
ax.set_title("Reconstruction error on held-out digits")
ax.legend()
fig.tight_layout()
plt.show()
