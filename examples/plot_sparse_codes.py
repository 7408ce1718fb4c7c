"""
=======================================
Sparse codes: the effect of the penalty
=======================================

:class:`~skae.SparseAE` adds ``sparsity_weight`` times an L1 penalty on the
code to the reconstruction loss. Its code units are ReLUs, so a unit is
either exactly zero or active. Here an overcomplete code (96 units for 64
pixels) is trained with a growing penalty; we look at the distribution of the
code activations, the fraction of units active per digit, and what the
penalty costs in reconstruction error.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skae import SparseAE

X, y = load_digits(return_X_y=True)
X = X / 16
X_train, X_test = train_test_split(X, test_size=0.25, stratify=y, random_state=0)

# %%
# One fit per penalty weight
# --------------------------
# ``sparsity_weight=0`` is a plain autoencoder with ReLU code units.

weights = [0.0, 0.1, 0.3, 1.0]
codes, active, errors = {}, {}, {}
for w in weights:
    sae = SparseAE(
        n_components=96,
        hidden_layer_sizes=(128,),
        sparsity="l1",
        sparsity_weight=w,
        output_activation="sigmoid",
        loss="bce",
        max_epochs=30,
        random_state=0,
    ).fit(X_train)
    code = sae.transform(X_test)
    codes[w] = code
    active[w] = (code > 0).mean(axis=1)  # fraction of units active per digit
    errors[w] = np.mean((X_test - sae.inverse_transform(code)) ** 2)
    print(
        f"sparsity_weight={w:<5}: {active[w].mean():6.1%} of units active on average, "
        f"held-out MSE {errors[w]:.4f}"
    )

# %%
# Activation histograms
# ---------------------
# As the weight grows, the mass of the code distribution moves to exactly
# zero (the tall first bar, on a log scale) and the remaining activations
# shrink: each digit is explained by fewer, smaller active units.

fig, axes = plt.subplots(1, len(weights), figsize=(11, 2.8), sharey=True)
for ax, w in zip(axes, weights):
    values = codes[w].ravel()
    ax.hist(values, bins=40, color="C0", log=True)
    ax.set_title(f"sparsity_weight={w}\n{(values == 0).mean():.0%} exact zeros")
    ax.set_xlabel("code activation")
axes[0].set_ylabel("count (log scale)")
fig.tight_layout()

# %%
# Sparsity versus reconstruction
# ------------------------------
# A small penalty costs little reconstruction error (it can even act as a
# regulariser); past a point the error climbs quickly. Units become rare but
# never dead: a unit inactive on every row of a batch gets a loss term that
# raises it back to zero, so no unit stays off for every digit.

fig, ax1 = plt.subplots(figsize=(5, 3.5))
labels = [str(w) for w in weights]
ax1.bar(labels, [active[w].mean() for w in weights], color="C0")
ax1.set_xlabel("sparsity_weight")
ax1.set_ylabel("fraction of active units", color="C0")
ax2 = ax1.twinx()
ax2.plot(labels, [errors[w] for w in weights], "o-", color="C3")
ax2.set_ylabel("held-out MSE", color="C3")
ax1.set_title("Sparsity versus reconstruction error")
fig.tight_layout()
plt.show()
