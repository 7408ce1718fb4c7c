"""
==================================
Training curves and early stopping
==================================

Every fitted skae estimator keeps its training history: ``loss_curve_`` holds
the training loss of each epoch, and with ``early_stopping=True`` a
``validation_fraction`` of the rows is held out and ``validation_scores_``
holds the negative validation loss of each epoch. Training stops once the
validation loss has not improved (by a relative ``tol``) for
``n_iter_no_change`` epochs, and the weights of the best epoch are kept. The
full skorch history, with epoch durations and the named loss terms of
:class:`~skae.SparseAE` and :class:`~skae.VAE`, is ``net_.history``.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_digits

from skae import AE, VAE, TrainingCurveDisplay

X, y = load_digits(return_X_y=True)
X = X / 16

# %%
# A large autoencoder on few rows
# -------------------------------
# 400 digits, a quarter of them held out for validation, and a wide network
# trained from random weights (by default, ``init="pca"``, an AE starts at
# PCA's solution and keeps it unless training beats it on the validation rows:
# on so few rows it would keep it, ``best_epoch_ == 0``). The training loss
# keeps falling long after the validation loss has levelled off, which is
# where early stopping ends training.

ae = AE(
    n_components=32,
    hidden_layer_sizes=(512,),
    init="random",
    early_stopping=True,
    validation_fraction=0.25,
    n_iter_no_change=10,
    max_epochs=300,
    random_state=0,
).fit(X[:400])

print(f"stopped after {ae.n_iter_} of 300 epochs; best validation loss at epoch {ae.best_epoch_}")
print(f"best_validation_score_ = {ae.best_validation_score_:.5f}")

# %%
# The last epochs of the history, as a table (``verbose=1`` prints the same
# table while training, but the learning rate ``lr``).

history = pd.DataFrame(ae.net_.history.to_list())
history[["epoch", "train_loss", "valid_loss", "lr", "dur"]].tail()

# %%
# Training and validation loss
# ----------------------------
# :class:`~skae.TrainingCurveDisplay` draws ``loss_curve_``, the validation
# loss (``-validation_scores_``), the epoch kept (``best_epoch_``) and, on a
# second axis, the learning rate of each epoch: a warm-up, then a cosine
# decay planned over ``max_epochs`` and cut short by early stopping. The
# display's ``ax_`` is a matplotlib Axes: here a log scale and a band over the
# ``n_iter_no_change`` epochs after the best one.

display = TrainingCurveDisplay.from_estimator(ae)
display.ax_.set_yscale("log")
display.ax_.axvspan(ae.best_epoch_, ae.n_iter_, color="0.9", zorder=0)
display.ax_.set_ylabel("mean squared error (fraction of variance)")

# %%
# The named loss terms of a VAE
# -----------------------------
# A VAE's loss is the sum of a reconstruction term and a KL term (the negative
# ELBO). Both are logged per epoch; early on the KL term grows as the encoder
# starts using the latent space, then the two settle.

vae = VAE(
    n_components=8, output_activation="sigmoid", loss="bce", max_epochs=40, random_state=0
).fit(X)
terms = ["train_loss", "train_reconstruction", "train_kl"]
fig, axes = plt.subplots(1, 3, figsize=(10, 3))
for ax, term in zip(axes, terms):
    ax.plot(np.arange(1, vae.n_iter_ + 1), vae.net_.history[:, term])
    ax.set_title(term)
    ax.set_xlabel("epoch")
axes[0].set_ylabel("nats per digit")
fig.suptitle("VAE: per-epoch loss terms from net_.history")
fig.tight_layout()
plt.show()
