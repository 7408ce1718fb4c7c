"""
=========================
The latent space of a VAE
=========================

A :class:`~skae.VAE` with ``n_components=2`` maps each digit to a point of a
2-D latent space that is pulled towards a standard normal prior. That makes
the space continuous: we can look at it directly, draw new digits from the
prior with :meth:`~skae.VAE.sample`, and decode the points on a straight
line between two digits with :meth:`~skae.VAE.interpolate`.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skae import VAE, LatentSpaceDisplay

X, y = load_digits(return_X_y=True)
X = X / 16
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

# %%
# Pixels in [0, 1]: a Bernoulli likelihood (``loss="bce"`` with a sigmoid
# output). ``score`` is the mean evidence lower bound (ELBO) per digit, in nats.

vae = VAE(
    n_components=2,
    output_activation="sigmoid",
    loss="bce",
    lr=3e-3,
    max_epochs=60,
    random_state=0,
).fit(X_train)
print(f"held-out ELBO: {vae.score(X_test):.2f} nats per digit")

# %%
# The latent space
# ----------------
# :class:`~skae.LatentSpaceDisplay` draws the codes ``transform`` returns, the
# posterior means of the held-out digits, coloured by their labels. Digits of
# the same class gather in regions of the plane, without any label being used
# in training. (Codes of more than two dimensions would be projected on their
# two leading principal components.)

display = LatentSpaceDisplay.from_estimator(vae, X_test, y_test)

# %%
# Samples from the prior
# ----------------------
# ``sample`` draws ``z`` from N(0, I) and decodes it (the decoder's mean, i.e.
# pixel probabilities): new digits that are in no data set.

samples = vae.sample(32, random_state=0)
fig, axes = plt.subplots(4, 8, figsize=(6, 3.2))
for ax, image in zip(axes.ravel(), samples):
    ax.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    ax.axis("off")
fig.suptitle("vae.sample(32)")

# %%
# Interpolating between two digits
# --------------------------------
# Take a typical held-out 0 and a typical held-out 7 (the ones whose codes are
# nearest their class's mean code). ``interpolate`` decodes evenly spaced
# points on the segment between their codes: the digit morphs smoothly from
# one to the other. Its first and last images are the two digits'
# reconstructions.

Z = vae.transform(X_test)


def typical_digit(digit):
    rows = np.flatnonzero(y_test == digit)
    codes = Z[rows]
    return X_test[rows[np.argmin(((codes - codes.mean(axis=0)) ** 2).sum(axis=1))]]


path = vae.interpolate(typical_digit(0), typical_digit(7), n_steps=10)

fig, axes = plt.subplots(1, 10, figsize=(8, 1.7))
for ax, image, t in zip(axes, path, np.linspace(0, 1, 10)):
    ax.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    ax.set_title(f"{t:.1f}", fontsize=8)
    ax.axis("off")
fig.suptitle("vae.interpolate: from a 0 to a 7 through the latent space")
fig.subplots_adjust(top=0.7)
plt.show()
