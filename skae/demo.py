"""skae's demo: every estimator against PCA, on digits or on MNIST.

Run ``python -m skae.demo`` (sklearn's bundled 8x8 digits, no download) or
``python -m skae.demo --mnist FOLDER`` (the original MNIST IDX files in a
local folder). It prints a table of held-out reconstruction error,
downstream logistic-regression accuracy and fit time, with PCA as a row, and
saves a figure of reconstructions (needs matplotlib).
"""

import argparse
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import AE, VAE, ConvAE, ReconstructionDisplay, SparseAE


def load_data(mnist=None):
    """Return ``(X_train, X_test, y_train, y_test, image_shape, name)``."""
    if mnist:
        from skae.datasets import load_mnist

        X, y = load_mnist(mnist)
        n_fit = int(0.8 * len(X))
        return X[:n_fit], X[n_fit:], y[:n_fit], y[n_fit:], (28, 28), "MNIST"
    data = load_digits()
    X = data.data / 16.0
    splits = train_test_split(X, data.target, test_size=0.2, stratify=data.target, random_state=0)
    return (*splits, (8, 8), "digits")


def make_estimators(n_components, image_shape, random_state=0):
    """PCA and the four skae estimators, with settings for [0, 1] pixels."""
    pixels = {"loss": "bce", "output_activation": "sigmoid"}
    return {
        "PCA": PCA(n_components, random_state=random_state),
        "AE": AE(n_components, random_state=random_state),
        "SparseAE": SparseAE(n_components, random_state=random_state),
        "ConvAE": ConvAE(
            n_components,
            input_shape=(1, *image_shape),
            output_activation="sigmoid",
            random_state=random_state,
        ),
        "VAE": VAE(n_components, random_state=random_state, **pixels),
    }


def evaluate(estimators, X_train, X_test, y_train, y_test, progress=True):
    """Fit each estimator; return one row of figures per estimator."""
    from tqdm.auto import tqdm

    rows, recons = [], {}
    bar = tqdm(estimators.items(), disable=not progress, desc="fitting", unit="model")
    for name, est in bar:
        bar.set_postfix_str(name)
        start = time.perf_counter()
        est.fit(X_train)
        fit_time = time.perf_counter() - start
        recon = est.inverse_transform(est.transform(X_test))
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        clf.fit(est.transform(X_train), y_train)
        rows.append(
            {
                "estimator": name,
                "mse": float(np.mean((recon - X_test) ** 2)),
                "accuracy": float(clf.score(est.transform(X_test), y_test)),
                "fit_s": fit_time,
            }
        )
        recons[name] = recon
    return rows, recons


def format_table(rows):
    pca = next((r["mse"] for r in rows if r["estimator"] == "PCA"), None)
    lines = [f"{'estimator':<10} {'held-out MSE':>12} {'x PCA':>6} {'accuracy':>8} {'fit (s)':>8}"]
    for r in rows:
        ratio = f"{r['mse'] / pca:6.2f}" if pca else "     -"
        lines.append(
            f"{r['estimator']:<10} {r['mse']:12.5f} {ratio} {r['accuracy']:8.3f} {r['fit_s']:8.1f}"
        )
    return "\n".join(lines)


def save_figure(X_test, recons, image_shape, path, n_images=10):
    """Held-out images over each estimator's reconstructions, one panel per estimator."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(recons), 1, figsize=(1.5 + 0.75 * n_images, 1.9 * len(recons)), layout="constrained"
    )
    for ax, (name, recon) in zip(np.atleast_1d(axes), recons.items()):
        display = ReconstructionDisplay.from_predictions(
            X_test, recon, n_samples=n_images, image_shape=image_shape, ax=ax
        )
        display.ax_.set_title(name)
    fig.suptitle("Held-out digits and their reconstructions")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", metavar="FOLDER", help="folder with MNIST IDX files")
    parser.add_argument("--n-components", type=int, default=8)
    parser.add_argument("--figure", default="skae_demo.png", help="where to save the figure")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    X_train, X_test, y_train, y_test, shape, name = load_data(args.mnist)
    print(
        f"{name}: {len(X_train)} train / {len(X_test)} held-out samples, "
        f"{X_train.shape[1]} features, n_components={args.n_components}"
    )
    estimators = make_estimators(args.n_components, shape)
    rows, recons = evaluate(
        estimators, X_train, X_test, y_train, y_test, progress=not args.no_progress
    )
    print(format_table(rows))
    try:
        save_figure(X_test, recons, shape, args.figure)
    except ImportError:
        print('matplotlib is not installed: no figure (pip install "skae[plot]").')
    else:
        print(f"figure saved to {args.figure}")
    return rows


if __name__ == "__main__":
    main()
