"""The quality targets of the default estimators on real MNIST, in one run.

    python benchmarks/quality_targets.py [--mnist FOLDER] [--only ae,vae,conv]

MNIST test set, first 8,000 images to fit, last 2,000 held out, pixels / 255,
default training (``max_epochs="auto"``), ``random_state=0``:

- ``AE(n_components=32)``: held-out MSE / PCA(32)'s (goal <= 0.70), fit <= 60 s;
- ``VAE(n_components=32, loss="bce", output_activation="sigmoid")``: held-out
  -ELBO in nats/image (goal <= 115);
- ``ConvAE(n_components=32, input_shape=(1, 28, 28))``: held-out MSE / PCA(32)'s
  (goal <= 0.70), with fit time.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA

from skae import AE, VAE, ConvAE
from skae.datasets import load_mnist

DEFAULT_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def mse(est, X):
    return float(np.mean((est.inverse_transform(est.transform(X)) - X) ** 2))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", default=str(DEFAULT_MNIST))
    parser.add_argument("--only", default="ae,vae,conv")
    args = parser.parse_args(argv)
    if not Path(args.mnist).is_dir():
        print(f"MNIST not found at {args.mnist}: nothing to measure.")
        return {}
    X, _ = load_mnist(args.mnist)
    Xtr, Xte = X[:8000], X[8000:]
    pca = mse(PCA(32).fit(Xtr), Xte)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; PCA(32) MSE {pca:.5f}")
    results = {"pca32_mse": pca}
    estimators = {
        "ae": AE(n_components=32, random_state=0),
        "vae": VAE(n_components=32, loss="bce", output_activation="sigmoid", random_state=0),
        "conv": ConvAE(n_components=32, input_shape=(1, 28, 28), random_state=0),
    }
    for name in args.only.split(","):
        est = estimators[name]
        start = time.perf_counter()
        est.fit(Xtr)
        fit_s = time.perf_counter() - start
        row = {"fit_s": round(fit_s, 1), "epochs": est.n_iter_}
        if name == "vae":
            row["heldout_neg_elbo"] = -est.score(Xte)
            print(
                f"VAE(32): held-out -ELBO {row['heldout_neg_elbo']:.1f} nats (goal <= 115)", end=""
            )
        else:
            row["mse"] = mse(est, Xte)
            row["ratio_to_pca"] = row["mse"] / pca
            label = type(est).__name__
            print(
                f"{label}(32): held-out MSE {row['mse']:.5f} = {row['ratio_to_pca']:.3f}x PCA "
                "(goal <= 0.70)",
                end="",
            )
        print(f", {row['epochs']} epochs, fit {fit_s:.1f} s")
        results[name] = row
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
