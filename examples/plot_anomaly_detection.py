"""
======================================
Anomaly detection with an autoencoder
======================================

:class:`skae.AEOutlierDetector` trains an autoencoder on unlabelled data and
flags the samples that lie far *off* the manifold it learned (they are
reconstructed badly) or far from the bulk of the data *inside* it (their code
is unusual). Here the "normal" data are images of one digit (sklearn's 8x8
digits); images of the other digits are the anomalies. The training set is
contaminated with a few of them, as it would be in practice, and the
detector is evaluated on held-out images.
"""

# %%
# Data: one digit is normal, 5 % of the training set are other digits
# -------------------------------------------------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

from skae import AEOutlierDetector, AnomalyScoreDisplay, ReconstructionDisplay

X, y = load_digits(return_X_y=True)
X = X / 16.0  # pixels in [0, 1]
NORMAL = 0
n_fit = int(0.8 * len(X))
X_fit, y_fit, X_test, y_test = X[:n_fit], y[:n_fit], X[n_fit:], y[n_fit:]

rng = np.random.RandomState(0)
inliers = np.flatnonzero(y_fit == NORMAL)
n_out = round(0.05 * len(inliers) / 0.95)
outliers = rng.choice(np.flatnonzero(y_fit != NORMAL), n_out, replace=False)
X_train = X_fit[np.r_[inliers, outliers]]
is_inlier = np.where(y_test == NORMAL, 1, -1)
print(f"{len(X_train)} training images ({n_out} anomalies), {len(X_test)} test images")

# %%
# Fit the detector
# ----------------
# ``estimator=None`` uses a default autoencoder sized to the data (here a
# 16-unit code for the 64 pixels, and 100 epochs on these 151 images).
# ``contamination="auto"`` sets the threshold ``offset_`` from a robust
# z-score of the training scores. ``score_samples`` is higher for more normal
# samples and ``decision_function`` is negative for outliers, as in
# :class:`~sklearn.ensemble.IsolationForest`. Digit 0 is an easy class: both
# detectors rank the test images almost perfectly. The user guide's benchmark
# compares them on harder cases (MNIST, several digits, 17 tables). The
# threshold is set on the training images, which the autoencoder reconstructs
# better than new ones: with only 151 of them it flags some of the new
# inliers too (a few percent with thousands of training rows); check the
# false-alarm rate on held-out normal data when it matters.
detector = AEOutlierDetector(random_state=0).fit(X_train)
decision = detector.decision_function(X_test)
forest = IsolationForest(random_state=0).fit(X_train)

auc_forest = roc_auc_score(is_inlier, forest.decision_function(X_test))
print(f"ROC AUC, AEOutlierDetector: {roc_auc_score(is_inlier, decision):.3f}")
print(f"ROC AUC, IsolationForest:   {auc_forest:.3f}")
flagged = detector.predict(X_test) == -1
print(
    f"flagged: {flagged[is_inlier == 1].mean():.1%} of the test inliers, "
    f"{flagged[is_inlier == -1].mean():.1%} of the test anomalies"
)

# %%
# Score distributions
# -------------------
# :class:`~skae.AnomalyScoreDisplay` draws the histogram of ``score_samples``
# with the threshold ``offset_``, split by the true labels (``-1`` marks the
# outliers, as ``predict`` does). Inliers sit to the right of the threshold,
# the other digits mostly to its left. With ``rows``, it also draws what makes
# chosen rows anomalous: each pixel's share of the reconstruction term of
# their scores (``reconstruction_error(X, per_feature=True)`` in units of the
# residual scale), here for the two most anomalous test images.
order = np.argsort(decision)
display = AnomalyScoreDisplay.from_estimator(detector, X_test, is_inlier, rows=order[:2], bins=40)
display.ax_contributions_.set_xlabel("pixel (row * 8 + column)")

# %%
# Off the manifold and inside it
# ------------------------------
# The default score, ``score_type="combined"``, is minus the sum of two
# distances, each about 1 for a typical training image: the reconstruction
# error in units of the training residuals' robust scale (``off``), and the
# robust Mahalanobis distance of the code, per code unit (``inside``). Some
# other digits are reconstructed well but have unusual codes, others the
# reverse; the sum catches both. ``score_type="reconstruction"`` and
# ``score_type="density"`` use one term only.
inner = detector.estimator_
codes = inner.transform(X_test)
off = np.mean(((X_test - inner.inverse_transform(codes)) / detector.residual_scale_) ** 2, axis=1)
inside = np.mean(((codes - detector.code_location_) @ detector.code_whitening_) ** 2, axis=1)
assert np.allclose(detector.score_samples(X_test), -(off + inside))

fig, ax = plt.subplots(figsize=(5.5, 4.5))
for label, mask, marker in [
    (f"digit {NORMAL}", is_inlier == 1, "o"),
    ("other", is_inlier == -1, "x"),
]:
    ax.scatter(off[mask], inside[mask], s=12, marker=marker, alpha=0.6, label=label)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("off: reconstruction error / residual scale**2")
ax.set_ylabel("inside: code Mahalanobis distance**2 / k")
ax.legend()
fig.tight_layout()

# %%
# The most anomalous test images
# ------------------------------
# :class:`~skae.ReconstructionDisplay` shows them over their reconstructions
# by the detector's inner autoencoder: where they differ is what the detector
# could not explain.
most = order[:10]
print("true digits of the most anomalous test images:", y_test[most])
display = ReconstructionDisplay.from_estimator(detector, X_test[most], image_shape=(8, 8))
plt.show()
