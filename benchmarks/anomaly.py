"""Anomaly detection benchmark: AEOutlierDetector vs IsolationForest and PCA.

One MNIST digit class is "normal"; images of the other digits are outliers.
For each chosen class:

- fit on the class's images among the first 8,000 MNIST test images, mixed
  with 5 % of other digits (an unlabelled, contaminated training set);
- evaluate on the last 2,000 images (never seen in training): the class's
  images are inliers, every other digit an outlier. ROC AUC uses all of
  them (it does not depend on the outlier share); average precision (AP)
  depends on it, so it is averaged over 20 random draws of outliers making
  5 % of the evaluation set.

Methods: IsolationForest with default settings, PCA reconstruction error
(16 components, the default AE code size on 784 pixels), and
``AEOutlierDetector()`` with its default inner autoencoder. The last columns
show what ``contamination="auto"`` flags on the held-out data.

Run from the repository root: ``python benchmarks/anomaly.py`` (about 2
minutes on 2 CPU cores). MNIST is read from ../shared/data/mnist (or
``--data``); without it, sklearn's 8x8 digits are used instead (with a
message), split 80/20 in the same way.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score

from skae import AEOutlierDetector

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
CONTAMINATION = 0.05
N_DRAWS = 20


def load(folder):
    """MNIST test set from ``folder``, else sklearn's digits; pixels in [0, 1]."""
    if Path(folder).is_dir():
        from skae.datasets import load_mnist

        try:
            X, y = load_mnist(folder)
            return X.astype(np.float64), y, "MNIST (10,000 test images, 28x28)"
        except FileNotFoundError:
            pass
    print(f"MNIST not found in {folder}: falling back to sklearn's 8x8 digits.\n")
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.data / 16.0, data.target, "sklearn digits (1,797 images, 8x8)"


class PCAReconstruction:
    """Negative PCA reconstruction error as a normality score."""

    def __init__(self, n_components):
        self.n_components = n_components

    def fit(self, X):
        self.pca_ = PCA(n_components=self.n_components, random_state=0).fit(X)
        return self

    def score_samples(self, X):
        reconstruction = self.pca_.inverse_transform(self.pca_.transform(X))
        return -np.mean((X - reconstruction) ** 2, axis=1)


def split(X, y, digit, n_fit):
    """Contaminated training set and held-out evaluation set for one digit."""
    rng = np.random.RandomState(digit)
    X_fit, y_fit, X_eval, y_eval = X[:n_fit], y[:n_fit], X[n_fit:], y[n_fit:]
    inliers = np.flatnonzero(y_fit == digit)
    n_out = int(round(CONTAMINATION * len(inliers) / (1 - CONTAMINATION)))
    outliers = rng.choice(np.flatnonzero(y_fit != digit), n_out, replace=False)
    train = rng.permutation(np.r_[inliers, outliers])
    return X_fit[train], X_eval, (y_eval == digit).astype(int)


def average_precision_at(is_inlier, scores, seed):
    """AP for detecting outliers that make CONTAMINATION of the evaluation set."""
    rng = np.random.RandomState(seed)
    inliers, outliers = np.flatnonzero(is_inlier), np.flatnonzero(is_inlier == 0)
    n_out = int(round(CONTAMINATION * len(inliers) / (1 - CONTAMINATION)))
    values = []
    for _ in range(N_DRAWS):
        idx = np.r_[inliers, rng.choice(outliers, n_out, replace=False)]
        values.append(average_precision_score(1 - is_inlier[idx], -scores[idx]))
    return float(np.mean(values))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="MNIST folder")
    parser.add_argument("--classes", default="0,1,3,7", help="inlier digits")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: these small nets gain nothing from more, and "
        "oversubscribed cores slow them down many times)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    X, y, name = load(args.data)
    digits = [int(c) for c in args.classes.split(",")]
    n_fit = int(0.8 * len(X))
    n_components = min(16, X.shape[1] // 4)
    methods = {
        "IsolationForest": lambda: IsolationForest(random_state=0),
        f"PCA ({n_components} comp.)": lambda: PCAReconstruction(n_components),
        "AEOutlierDetector": lambda: AEOutlierDetector(random_state=0),
    }
    print(f"Data: {name}; fit on the first {n_fit} rows (+{CONTAMINATION:.0%} other digits),")
    print(f"torch threads: {args.threads}.", end=" ")
    print(f"Evaluate on the last {len(X) - n_fit}. AP at {CONTAMINATION:.0%} outliers.\n")
    results = {m: [] for m in methods}
    seconds = dict.fromkeys(methods, 0.0)
    flagged = []
    for digit in digits:
        X_train, X_eval, is_inlier = split(X, y, digit, n_fit)
        for method, make in methods.items():
            start = time.perf_counter()
            model = make().fit(X_train)
            scores = model.score_samples(X_eval)
            seconds[method] += time.perf_counter() - start
            auc = roc_auc_score(is_inlier, scores)
            results[method].append((auc, average_precision_at(is_inlier, scores, digit)))
            if isinstance(model, AEOutlierDetector):
                out = model.predict(X_eval) == -1
                flagged.append(
                    (
                        np.mean(model.predict(X_train) == -1),
                        out[is_inlier == 1].mean(),
                        out[is_inlier == 0].mean(),
                    )
                )

    width = max(map(len, methods))
    header = f"{'method':<{width}}  " + "  ".join(f"{f'digit {d}':<11}" for d in digits)
    print("ROC AUC / average precision (higher is better)\n")
    print(header + f"  {'mean':<11}  fit+score")
    for method, rows in results.items():
        cells = "  ".join(f"{auc:.3f}/{ap:.3f}" for auc, ap in rows)
        mean_auc, mean_ap = np.mean(rows, axis=0)
        print(f"{method:<{width}}  {cells}  {mean_auc:.3f}/{mean_ap:.3f}  {seconds[method]:6.1f} s")
    train, inl, out = np.mean(flagged, axis=0)
    print(
        f'\nAEOutlierDetector, contamination="auto" (mean over digits): flags {train:.1%} of '
        f"the training rows ({CONTAMINATION:.0%} are outliers);\non held-out data, "
        f"{inl:.1%} of the inliers and {out:.1%} of the outliers."
    )


if __name__ == "__main__":
    main()
