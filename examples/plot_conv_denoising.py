"""
=================================================
Denoising digits with a convolutional autoencoder
=================================================

With ``noise="gaussian"``, a :class:`~skae.ConvAE` sees corrupted inputs
during ``fit`` but is trained to reconstruct the clean ones: it becomes a
denoiser. Each row of ``X`` is read as a one-channel 8x8 image through
``input_shape=(1, 8, 8)``. After training we corrupt held-out digits, pass
them through ``transform`` and ``inverse_transform``, and draw them with
:class:`~skae.ReconstructionDisplay`.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from skae import ConvAE, ReconstructionDisplay

X, y = load_digits(return_X_y=True)
X = X / 16
X_train, X_test = train_test_split(X, test_size=0.25, stratify=y, random_state=0)

# %%
# Train a denoising ConvAE
# ------------------------
# The corruption (Gaussian, standard deviation ``noise_level``) is applied to
# the inputs only while fitting; the target stays the clean image. A larger
# learning rate and smaller batches than the defaults make up for the short
# training budget of this example.

cae = ConvAE(
    n_components=32,
    input_shape=(1, 8, 8),
    channels=(16, 32),
    noise="gaussian",
    noise_level=0.3,
    output_activation="sigmoid",
    loss="bce",
    batch_size=32,
    lr=3e-3,
    max_epochs=30,
    random_state=0,
).fit(X_train)

# %%
# Corrupt held-out digits the same way, then denoise them. For reference, PCA
# with the same number of components "denoises" by projection.

rng = np.random.default_rng(0)
X_noisy = np.clip(X_test + 0.3 * rng.standard_normal(X_test.shape), 0, 1)
X_denoised = cae.inverse_transform(cae.transform(X_noisy))
pca = PCA(n_components=32, random_state=0).fit(X_train)
X_pca = np.clip(pca.inverse_transform(pca.transform(X_noisy)), 0, 1)


def mse(A):
    return np.mean((A - X_test) ** 2)


print(f"MSE to the clean digits: noisy {mse(X_noisy):.4f}, ", end="")
print(f"ConvAE denoised {mse(X_denoised):.4f}, PCA projection {mse(X_pca):.4f}")

# %%
# Noisy, denoised and clean digits
# --------------------------------
# :class:`~skae.ReconstructionDisplay` draws rows over other rows:
# ``from_predictions`` takes images computed beforehand, and the display's
# ``ax_`` (a matplotlib Axes) takes the names of its two rows and a title.
# The autoencoder has learned what digits look like, so it removes most of
# the noise while keeping the strokes; PCA's projection keeps more of it.

panels = [
    ("Gaussian noise (sd 0.3)", X_test, X_noisy, ["clean", "noisy"]),
    ("ConvAE", X_noisy, X_denoised, ["noisy", "denoised"]),
    ("PCA (32)", X_noisy, X_pca, ["noisy", "projected"]),
]
fig, axes = plt.subplots(len(panels), 1, figsize=(8, 6), layout="constrained")
for ax, (name, top, bottom, labels) in zip(axes, panels):
    display = ReconstructionDisplay.from_predictions(top, bottom, image_shape=(8, 8), ax=ax)
    display.ax_.set_yticklabels(labels)
    display.ax_.set_title(name)
plt.show()
