"""Anomaly detection benchmark: AEOutlierDetector against IsolationForest, PCA, LOF and pyod.

Two sections (``--only`` takes a comma-separated subset):

adbench
    The 17 tables of ADBench's "Classical" collection in
    ``../shared/data/adbench`` (or ``--adbench``), under ADBench's
    unsupervised protocol: standardise ``X``, fit on all of ``X`` without the
    labels, score the same ``X``, and report ROC AUC and average precision
    (AP) with the anomalies as the positive class. Methods:

    - ``IsolationForest()`` (default settings, ``random_state=seed``);
    - PCA reconstruction error, with ``k`` components;
    - ``PCA(k).score_samples``, the probabilistic PCA log-likelihood;
    - ``LocalOutlierFactor()`` (``novelty=False``; the score is
      ``negative_outlier_factor_``);
    - pyod's ``AutoEncoder`` with its defaults (``random_state=seed``,
      ``verbose=0``);
    - ``AEOutlierDetector()`` with its defaults (``random_state=seed``).

    ``k = n_features // 4`` clipped to 1..16, the code size of the default
    ``AEOutlierDetector``. Stochastic methods (IsolationForest, pyod,
    skae) run once per seed (``--seeds``, default 0,1,2) and per table the
    mean over seeds is reported; PCA and LOF are deterministic and run once.
    The tables give, per method, the mean and median over the tables, the
    wins (tables where the method has the best mean; ties count for each),
    the mean rank (1 = best; ties share the average rank), the total fit time
    (the sum over the tables, mean over seeds) and each seed's mean (the
    worst seed is the smallest). Methods run one after the other on each
    table and seed (interleaved), so that timings share the machine's load.
mnist
    One MNIST digit class is "normal"; images of the other digits are
    outliers. For each chosen class: fit on the class's images among the
    first 8,000 MNIST test images, mixed with 5 % of other digits (an
    unlabelled, contaminated training set); evaluate on the last 2,000
    images (never seen in training): the class's images are inliers, every
    other digit an outlier. ROC AUC uses all of them; AP depends on the
    outlier share, so it is averaged over 20 random draws of outliers making
    5 % of the evaluation set. Methods: IsolationForest, the reconstruction
    error of a 16-component PCA, ``AEOutlierDetector()``, and, for reference,
    skae 0.1.0's default detector settings on today's ``AE`` (row "0.1.0
    settings": ``AEOutlierDetector(AE(16, hidden_layer_sizes=(128,),
    max_epochs=50), score_type="estimator")``, the plain reconstruction error;
    0.1.0 itself scored a mean ROC AUC of 0.962 here). The last lines show
    what ``contamination="auto"`` flags on the held-out data.

Run from the repository root, after ``pip install pyod`` (a benchmark-only
dependency; it needs torch, which skae already installed)::

    python benchmarks/anomaly.py                     # everything, 3 seeds
    python benchmarks/anomaly.py --quick             # seed 0, tables <= 5,000 rows, 2 digits
    python benchmarks/anomaly.py --only adbench --seeds 0,1,2,3,4
    python benchmarks/anomaly.py --tables wine,glass --methods IsolationForest,skae

Results (every table, seed and timing) are written to
``benchmarks/results/anomaly.json`` (or ``--out``). Data sets that are not
present are skipped with a message; nothing is downloaded. Without pyod,
its column is skipped with a message. Timings are wall-clock
(``time.perf_counter``) with ``--threads`` torch threads (default 1).
"""

import argparse
import datetime
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from _common import load_mnist_or_none, print_table
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.neighbors import LocalOutlierFactor
from sklearn.preprocessing import StandardScaler

import skae
from skae import AE, AEOutlierDetector

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"
DEFAULT_ADBENCH = SHARED / "adbench"
DEFAULT_MNIST = SHARED / "mnist"
DEFAULT_OUT = HERE / "results" / "anomaly.json"
SECTIONS = ("adbench", "mnist")

#: MNIST section: outlier share of the training and AP evaluation sets.
CONTAMINATION = 0.05
N_DRAWS = 20
#: Column titles of the ADBench tables.
SHORT = {
    "IsolationForest": "IForest",
    "PCA reconstruction": "PCA rec.",
    "PCA likelihood": "PCA lik.",
    "LocalOutlierFactor": "LOF",
    "pyod AutoEncoder": "pyod AE",
    "skae AEOutlierDetector": "skae",
}
#: --quick keeps the tables with at most this many rows.
QUICK_MAX_ROWS = 5000


def code_size(n_features):
    """Components of the PCA baselines: the default AEOutlierDetector's code size."""
    return int(min(16, max(1, n_features // 4)))


# -- methods: each returns outlier scores (higher = more anomalous) -----------


class Method:
    """A named detector: ``fit(X, seed)`` then ``outlierness(X)``."""

    stochastic = False

    def __init__(self, name, make, outlierness, stochastic=False):
        self.name = name
        self.make = make
        self.outlierness = outlierness
        self.stochastic = stochastic


def pca_reconstruction_error(model, X):
    return np.square(X - model.inverse_transform(model.transform(X))).sum(axis=1)


def pyod_autoencoder(seed):
    from pyod.models.auto_encoder import AutoEncoder

    return AutoEncoder(random_state=seed, verbose=0)


def adbench_methods():
    """The compared methods, in table order."""
    methods = [
        Method(
            "IsolationForest",
            lambda X, seed: IsolationForest(random_state=seed),
            lambda m, X: -m.score_samples(X),
            stochastic=True,
        ),
        Method(
            "PCA reconstruction",
            lambda X, seed: PCA(code_size(X.shape[1]), random_state=0),
            pca_reconstruction_error,
        ),
        Method(
            "PCA likelihood",
            lambda X, seed: PCA(code_size(X.shape[1]), random_state=0),
            lambda m, X: -m.score_samples(X),
        ),
        Method(
            "LocalOutlierFactor",
            lambda X, seed: LocalOutlierFactor(),
            lambda m, X: -m.negative_outlier_factor_,
        ),
    ]
    try:
        import pyod  # noqa: F401

        methods.append(
            Method(
                "pyod AutoEncoder",
                lambda X, seed: pyod_autoencoder(seed),
                lambda m, X: m.decision_function(X),
                stochastic=True,
            )
        )
    except ImportError:
        print("pyod is not installed (pip install pyod): its AutoEncoder is skipped.\n")
    methods.append(
        Method(
            "skae AEOutlierDetector",
            lambda X, seed: AEOutlierDetector(random_state=seed),
            lambda m, X: -m.score_samples(X),
            stochastic=True,
        )
    )
    return methods


# -- tables -------------------------------------------------------------------


def ranks(values):
    """Rank of each value, 1 = highest; ties share their average rank."""
    values = np.asarray(values)
    order = (-values).argsort(kind="stable")
    rank = np.empty(len(values))
    rank[order] = np.arange(1, len(values) + 1)
    for v in np.unique(values):
        tied = values == v
        rank[tied] = rank[tied].mean()
    return rank


def summarise(results, methods, tables, metric):
    """Per-method summary rows for ``metric`` ("auc" or "ap")."""
    # per table and method: the mean over seeds
    means = np.array(
        [[np.mean([r[metric] for r in results[m][t]]) for m in methods] for t in tables]
    )
    best = means.max(axis=1, keepdims=True)
    wins = (np.isclose(means, best, rtol=0, atol=1e-12)).sum(axis=0)
    mean_rank = np.mean([ranks(row) for row in means], axis=0)
    summary = {}
    for j, m in enumerate(methods):
        seeds = sorted({r["seed"] for t in tables for r in results[m][t]})
        per_seed = {
            s: float(np.mean([r[metric] for t in tables for r in results[m][t] if r["seed"] == s]))
            for s in seeds
        }
        summary[m] = {
            "mean": float(means[:, j].mean()),
            "median": float(np.median(means[:, j])),
            "wins": int(wins[j]),
            "mean_rank": float(mean_rank[j]),
            "per_seed_mean": per_seed,
            "worst_seed_mean": min(per_seed.values()),
        }
    return means, summary


def fit_seconds(results, method, tables):
    """Sum over tables of the mean (over seeds) fit time."""
    return float(sum(np.mean([r["fit_s"] for r in results[method][t]]) for t in tables))


# -- sections -----------------------------------------------------------------


def load_adbench(folder, names=None, max_rows=None):
    paths = sorted(Path(folder).glob("*.npz"))
    tables = {}
    for path in paths:
        if names and path.stem not in names:
            continue
        data = np.load(path, allow_pickle=False)
        if max_rows and len(data["X"]) > max_rows:
            continue
        tables[path.stem] = (data["X"], data["y"].astype(int))
    return tables


def section_adbench(args, out):
    if not Path(args.adbench).is_dir():
        print(f"== adbench: {args.adbench} not found; skipped.\n")
        return
    tables = load_adbench(
        args.adbench, args.tables and args.tables.split(","), QUICK_MAX_ROWS if args.quick else None
    )
    methods = [
        m
        for m in adbench_methods()
        if not args.methods or any(w.lower() in m.name.lower() for w in args.methods)
    ]
    seeds = args.seeds
    print(f"== adbench: {len(tables)} tables, seeds {seeds}, torch threads {args.threads}")
    results = {m.name: {t: [] for t in tables} for m in methods}
    start_all = time.perf_counter()
    for table, (X, y) in tables.items():
        X = StandardScaler().fit_transform(X)
        line = [f"  {table} {X.shape[0]}x{X.shape[1]}:"]
        for seed in seeds:
            for method in methods:
                if not method.stochastic and seed != seeds[0]:
                    continue
                start = time.perf_counter()
                model = method.make(X, seed).fit(X)
                fit_s = time.perf_counter() - start
                start = time.perf_counter()
                scores = np.asarray(method.outlierness(model, X), dtype=np.float64)
                score_s = time.perf_counter() - start
                results[method.name][table].append(
                    {
                        "seed": seed,
                        "auc": float(roc_auc_score(y, scores)),
                        "ap": float(average_precision_score(y, scores)),
                        "fit_s": fit_s,
                        "score_s": score_s,
                    }
                )
        for method in methods:
            auc = np.mean([r["auc"] for r in results[method.name][table]])
            line.append(f"{SHORT.get(method.name, method.name)} {auc:.3f}")
        print(" ".join(line), flush=True)
    print(f"  ({time.perf_counter() - start_all:.0f} s)\n")

    names = [m.name for m in methods]
    table_names = list(tables)
    report = {
        "tables": {t: {"shape": list(tables[t][0].shape)} for t in tables},
        "results": results,
    }
    for metric, label in (("auc", "ROC AUC"), ("ap", "average precision")):
        means, summary = summarise(results, names, table_names, metric)
        report[metric] = summary
        print(f"{label} per table (mean over seeds for IsolationForest, pyod and skae)\n")
        short = [SHORT.get(n, n) for n in names]
        rows = [[t, *(f"{v:.3f}" for v in means[i])] for i, t in enumerate(table_names)]
        rows.append(["mean", *(f"{summary[n]['mean']:.3f}" for n in names)])
        rows.append(["median", *(f"{summary[n]['median']:.3f}" for n in names)])
        rows.append(["wins", *(str(summary[n]["wins"]) for n in names)])
        rows.append(["mean rank", *(f"{summary[n]['mean_rank']:.2f}" for n in names)])
        worst = [
            f"{summary[n]['worst_seed_mean']:.3f}" if len(summary[n]["per_seed_mean"]) > 1 else "-"
            for n in names
        ]
        rows.append(["worst seed mean", *worst])
        if metric == "auc":
            fits = [f"{fit_seconds(results, n, table_names):.1f}" for n in names]
            rows.append(["fit time (s)", *fits])
        print_table(["table", *short], rows)
        print()
    for n in names:
        if len(report["auc"][n]["per_seed_mean"]) > 1:
            auc, ap = report["auc"][n]["per_seed_mean"], report["ap"][n]["per_seed_mean"]
            per_seed = ", ".join(f"seed {s}: {auc[s]:.3f}/{ap[s]:.3f}" for s in auc)
            print(f"{n}, mean ROC AUC/AP per seed: {per_seed}")
    report["fit_seconds"] = {n: fit_seconds(results, n, table_names) for n in names}
    out["adbench"] = report
    print()


def load_mnist(folder):
    """MNIST test set from ``folder``, else sklearn's digits; pixels in [0, 1]."""
    mnist = load_mnist_or_none(folder)
    if mnist is not None:
        return mnist[0].astype(np.float64), mnist[1], "MNIST (10,000 test images, 28x28)"
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


def section_mnist(args, out):
    X, y, name = load_mnist(args.mnist)
    digits = [0, 1] if args.quick else [int(c) for c in args.classes.split(",")]
    n_fit = int(0.8 * len(X))
    k = min(16, X.shape[1] // 4)
    methods = {
        "IsolationForest": lambda seed: IsolationForest(random_state=seed),
        f"PCA ({k} comp.)": lambda seed: PCAReconstruction(k),
        "AEOutlierDetector": lambda seed: AEOutlierDetector(random_state=seed),
        "0.1.0 settings": lambda seed: AEOutlierDetector(
            AE(k, hidden_layer_sizes=(128,), max_epochs=50),
            score_type="estimator",
            random_state=seed,
        ),
    }
    print(f"== mnist: {name}; fit on the first {n_fit} rows (+{CONTAMINATION:.0%} other digits),")
    print(
        f"evaluate on the last {len(X) - n_fit}; AP at {CONTAMINATION:.0%} outliers; "
        f"seeds {args.seeds}.\n"
    )
    results = {m: {s: [] for s in args.seeds} for m in methods}
    seconds = dict.fromkeys(methods, 0.0)
    flagged = []
    for seed in args.seeds:
        for digit in digits:
            X_train, X_eval, is_inlier = split(X, y, digit, n_fit)
            for method, make in methods.items():
                start = time.perf_counter()
                model = make(seed).fit(X_train)
                scores = model.score_samples(X_eval)
                seconds[method] += time.perf_counter() - start
                auc = roc_auc_score(is_inlier, scores)
                results[method][seed].append((auc, average_precision_at(is_inlier, scores, digit)))
                if method == "AEOutlierDetector":
                    flags = model.predict(X_eval) == -1
                    flagged.append(
                        (
                            np.mean(model.predict(X_train) == -1),
                            flags[is_inlier == 1].mean(),
                            flags[is_inlier == 0].mean(),
                        )
                    )
    print("ROC AUC / average precision (higher is better); mean over seeds per digit\n")
    headers = ["method", *(f"digit {d}" for d in digits), "mean", "worst seed", "fit+score"]
    rows, report = [], {}
    for method, per_seed in results.items():
        cells = np.mean([per_seed[s] for s in args.seeds], axis=0)  # digits x (auc, ap)
        seed_means = {s: np.mean(per_seed[s], axis=0).tolist() for s in args.seeds}
        worst = min(v[0] for v in seed_means.values())
        mean_auc, mean_ap = cells.mean(axis=0)
        rows.append(
            [
                method,
                *(f"{a:.3f}/{p:.3f}" for a, p in cells),
                f"{mean_auc:.3f}/{mean_ap:.3f}",
                f"{worst:.3f}",
                f"{seconds[method] / len(args.seeds):.1f} s",
            ]
        )
        report[method] = {
            "per_digit": {d: c.tolist() for d, c in zip(digits, cells)},
            "mean_auc": float(mean_auc),
            "mean_ap": float(mean_ap),
            "per_seed_mean": {s: v for s, v in seed_means.items()},
            "fit_score_seconds_per_seed": seconds[method] / len(args.seeds),
        }
    print_table(headers, rows)
    train, inl, outl = np.mean(flagged, axis=0)
    print(
        f'\nAEOutlierDetector, contamination="auto" (mean over digits and seeds): flags '
        f"{train:.1%} of the training rows ({CONTAMINATION:.0%} are outliers);\non held-out "
        f"data, {inl:.1%} of the inliers and {outl:.1%} of the outliers.\n"
    )
    report["flagged"] = {"train": train, "eval_inliers": inl, "eval_outliers": outl}
    out["mnist"] = {"data": name, "digits": digits, "results": report}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help="sections: adbench,mnist")
    parser.add_argument("--seeds", default="0,1,2", help="seeds of the stochastic methods")
    parser.add_argument("--quick", action="store_true", help="seed 0, small tables, 2 digits")
    parser.add_argument("--tables", default="", help="ADBench tables (default: all)")
    parser.add_argument("--methods", default="", help="ADBench methods (default: all)")
    parser.add_argument("--adbench", default=str(DEFAULT_ADBENCH), help="ADBench .npz folder")
    parser.add_argument("--mnist", default=str(DEFAULT_MNIST), help="MNIST folder")
    parser.add_argument("--classes", default="0,1,3,7", help="MNIST inlier digits")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="JSON results file")
    args = parser.parse_args()
    args.seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    args.methods = [m for m in args.methods.split(",") if m]
    torch.set_num_threads(args.threads)
    out = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "skae": skae.__version__,
        "torch": torch.__version__,
        "platform": platform.platform(),
        "threads": args.threads,
        "seeds": args.seeds,
    }
    sections = args.only.split(",")
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose among {SECTIONS}")
    if "adbench" in sections:
        section_adbench(args, out)
    if "mnist" in sections:
        section_mnist(args, out)
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=str))
    print(f"Results written to {path}")


if __name__ == "__main__":
    main()
