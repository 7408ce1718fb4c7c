"""Anomaly detection: AEOutlierDetector against IsolationForest, MCD, k-NN, LOF, PCA and pyod.

Three parts (``--only`` takes a comma-separated subset); together they are the
``anomaly`` section of ``python benchmarks/run.py``:

adbench
    The 17 tables of ADBench's "Classical" collection in
    ``../shared/data/adbench`` (or ``--adbench``), under ADBench's
    unsupervised protocol: standardise ``X``, fit on all of ``X`` without the
    labels, score the same ``X``, and report ROC AUC and average precision
    (AP) with the anomalies as the positive class. Methods:

    - ``IsolationForest()`` (default settings, ``random_state=seed``);
    - MCD: the robust Mahalanobis distance of
      ``sklearn.covariance.MinCovDet(random_state=seed)`` (pyod's and
      ADBench's MCD). Where MCD cannot run as it is, it says so in the output
      and the JSON: with more than MCD_MAX_FEATURES features or fewer than
      MCD_ROWS_PER_FEATURE rows per feature (the determinant of a ``p x p``
      covariance needs ``n >> p``, and fast-MCD's cost grows as ``p**3``), it
      runs on the leading principal components (at most MCD_MAX_FEATURES,
      at most ``n / MCD_ROWS_PER_FEATURE``); a singular robust covariance
      (e.g. a binary feature constant on the MCD's support) gets a ridge of
      MCD_RIDGE times its mean variance, so that no direction has a zero or
      an infinite weight;
    - k-NN: the distance to the 5th nearest neighbour (other than the row
      itself), ADBench's KNN (pyod's ``KNN(method="largest")``);
    - PCA reconstruction error and ``PCA(k).score_samples`` (probabilistic
      PCA's likelihood), ``k = n_features // 4`` clipped to 1..16, the code
      size of the default ``AEOutlierDetector``;
    - ``LocalOutlierFactor()`` (``novelty=False``; ``negative_outlier_factor_``);
    - pyod's ``AutoEncoder`` with its defaults (``random_state=seed``);
    - ``AEOutlierDetector()`` with its defaults (``random_state=seed``).

    Stochastic methods run once per seed (``--seeds``, default 0,1,2) and per
    table the mean over seeds is reported; the others run once. The tables
    give the mean and median over the tables, the wins, the mean rank (1 =
    best), the worst seed's mean and the total fit time. Methods run one
    after the other on each table and seed (interleaved), so that timings
    share the machine's load.

    **Candidates and the rotation.** From the same fitted detector (and the
    same seed's IsolationForest and MCD), the candidate default scores
    (``CANDIDATES``) are computed. The rotation then chooses, on 12 of the
    17 tables (``--rotations`` random splits, ``RandomState(0)``), the
    candidate with the best mean of ROC AUC and AP, and reports its means on
    the 5 other tables; the peer (IsolationForest, MCD, k-NN) is chosen on
    the same 12 tables the same way. The held-out-fold mean (the mean over
    rotations of the held-out means) is printed beside the full means: a
    choice that only wins on the tables it was chosen on shows there.
threshold
    Flagged fraction of new inliers on small training sets: ``--small-rows``
    (default 150) training rows of one class, the rest of the class held out:
    each digit of sklearn's 8x8 digits (/16), the benign rows of
    ``load_breast_cancer`` and the inliers of the ADBench tables Pima,
    Waveform and yeast (standardised on the training rows). It reports the
    fraction of held-out inliers that ``AEOutlierDetector(contamination=c)``
    flags, per set (mean over seeds) and over the sets, for ``c = 0.1`` and
    ``"auto"``, with the default threshold calibration (cross-fitted on 150
    rows) and with the training scores (``calibration="training"``), and
    IsolationForest's for reference; "within 2x" counts the sets flagging 5
    to 20 %.
mnist
    One MNIST digit class is "normal"; images of the other digits are
    outliers. For each chosen class: fit on the class's images among the
    first 8,000 MNIST test images, mixed with 5 % of other digits; evaluate
    on the last 2,000 images: the class's images are inliers, every other
    digit an outlier. ROC AUC uses all of them; AP is averaged over 20 random
    draws of outliers making 5 % of the evaluation set. Methods:
    IsolationForest, the reconstruction error of a 16-component PCA,
    ``AEOutlierDetector()``, and skae 0.1.0's default detector settings on
    today's ``AE`` (0.1.0 itself scored a mean ROC AUC of 0.962 here).

Run from the repository root, after ``pip install pyod`` (a benchmark-only
dependency; without it, its column is skipped with a message)::

    python benchmarks/anomaly.py                     # everything, 3 seeds
    python benchmarks/anomaly.py --quick             # seed 0, tables <= 5,000 rows, 2 digits
    python benchmarks/anomaly.py --only adbench --seeds 0,1,2,3,4
    python benchmarks/anomaly.py --tables wine,glass --methods IsolationForest,skae
    python benchmarks/anomaly.py --report benchmarks/results/anomaly.json  # reprint a run

Results (every table, seed and timing) are written to
``benchmarks/results/anomaly.json`` (or ``--out``). Nothing is downloaded;
data sets that are absent are skipped with a message. Timings are
wall-clock (``time.perf_counter``) with ``--threads`` torch threads
(default 1).
"""

import argparse
import json
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.stats import rankdata
from sklearn.covariance import MinCovDet
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.neighbors import LocalOutlierFactor, NearestNeighbors
from sklearn.preprocessing import StandardScaler

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _common import (  # noqa: E402
    DEFAULT_MNIST,
    load_mnist_or_none,
    machine_info,
    print_table,
    section,
    write_json,
)

from skae import AE, AEOutlierDetector  # noqa: E402

DEFAULT_ADBENCH = HERE.parent.parent / "shared" / "data" / "adbench"
DEFAULT_OUT = HERE / "results" / "anomaly.json"
PARTS = ("adbench", "threshold", "mnist")

#: MNIST part: outlier share of the training and AP evaluation sets.
CONTAMINATION = 0.05
N_DRAWS = 20
#: --quick keeps the tables with at most this many rows.
QUICK_MAX_ROWS = 5000
#: MCD: at most this many features, and at least this many rows per feature
#: (else it runs on the leading principal components); ridge of a singular
#: robust covariance, relative to its mean variance.
MCD_MAX_FEATURES = 50
MCD_ROWS_PER_FEATURE = 5
MCD_RIDGE = 1e-3
#: k-NN: the distance to this neighbour (ADBench's KNN).
KNN_K = 5
#: The rotation: tables to choose on, out of 17 (scaled for fewer tables).
CHOOSE_ON = 12
#: The peers that a default must beat (the issue's "best peer").
PEERS = ("IsolationForest", "MCD", "k-NN")
#: Column titles of the ADBench tables.
SHORT = {
    "IsolationForest": "IForest",
    "MCD": "MCD",
    "k-NN": "k-NN",
    "PCA reconstruction": "PCA rec.",
    "PCA likelihood": "PCA lik.",
    "LocalOutlierFactor": "LOF",
    "pyod AutoEncoder": "pyod AE",
    "skae AEOutlierDetector": "skae",
}
SKAE = "skae AEOutlierDetector"


@dataclass
class Options:
    seeds: tuple = (0, 1, 2)
    quick: bool = False
    tables: tuple = ()
    methods: tuple = ()
    parts: tuple = PARTS
    adbench: str = str(DEFAULT_ADBENCH)
    mnist: str = str(DEFAULT_MNIST)
    classes: tuple = (0, 1, 3, 7)
    rotations: int = 20
    small_rows: int = 150


def code_size(n_features):
    """Components of the PCA baselines: the default AEOutlierDetector's code size."""
    return int(min(16, max(1, n_features // 4)))


# -- peers: each returns outlier scores (higher = more anomalous) ---------------------


class Method:
    """A named detector: ``make(X, seed)`` then ``outlierness(model, X)``."""

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


class MCD:
    """Robust Mahalanobis distance of MinCovDet, with the fall-backs the docstring lists."""

    def __init__(self, random_state):
        self.random_state = random_state

    def fit(self, X):
        n, p = X.shape
        self.notes_ = []
        width = min(MCD_MAX_FEATURES, max(1, n // MCD_ROWS_PER_FEATURE))
        self.pca_ = None
        if p > width:
            self.pca_ = PCA(width, random_state=0).fit(X)
            self.notes_.append(f"{p} features: on the first {width} principal components")
        Z = self._project(X)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.mcd_ = MinCovDet(random_state=self.random_state).fit(Z)
        covariance = self.mcd_.covariance_
        values = np.linalg.eigvalsh(covariance)
        singular = any("not full rank" in str(w.message) for w in caught) or (
            values.min() <= 1e-10 * max(values.max(), 1e-300)
        )
        if singular:
            ridge = MCD_RIDGE * max(float(np.trace(covariance)) / len(covariance), 1e-12)
            covariance = covariance + ridge * np.eye(len(covariance))
            self.notes_.append(f"singular robust covariance: ridge {ridge:.2g}")
        self.precision_ = np.linalg.inv(covariance)
        return self

    def _project(self, X):
        return X if self.pca_ is None else self.pca_.transform(X)

    def outlierness(self, X):
        centred = self._project(X) - self.mcd_.location_
        return np.einsum("ij,jk,ik->i", centred, self.precision_, centred)


class KNNDistance:
    """Distance to the KNN_K-th nearest training row (the row itself excluded on ``X``)."""

    def fit(self, X):
        self.nn_ = NearestNeighbors(n_neighbors=KNN_K).fit(X)
        return self

    def outlierness(self, X):
        return self.nn_.kneighbors()[0][:, -1]  # the training rows, themselves excluded


def adbench_methods():
    """The compared methods, in table order (skae last)."""
    methods = [
        Method(
            "IsolationForest",
            lambda X, seed: IsolationForest(random_state=seed),
            lambda m, X: -m.score_samples(X),
            stochastic=True,
        ),
        Method("MCD", lambda X, seed: MCD(seed), lambda m, X: m.outlierness(X), stochastic=True),
        Method("k-NN", lambda X, seed: KNNDistance(), lambda m, X: m.outlierness(X)),
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
            SKAE,
            lambda X, seed: AEOutlierDetector(random_state=seed),
            lambda m, X: -m.score_samples(X),
            stochastic=True,
        )
    )
    return methods


# -- candidate default scores, from the fitted detector and the same seed's peers ------


def detector_terms(detector, X):
    """``off`` and ``inside`` (see AEOutlierDetector's Notes) of ``X``, in numpy float64."""
    errors = detector.reconstruction_error(X, per_feature=True)
    off = (errors / np.square(detector.residual_scale_)).mean(axis=1)
    codes = np.asarray(detector.estimator_.transform(X), dtype=np.float64)
    inside = np.square((codes - detector.code_location_) @ detector.code_whitening_).mean(axis=1)
    return off, inside


def robust_z(values):
    median = np.median(values)
    mad = 1.4826 * np.median(np.abs(values - median))
    return (values - median) / max(mad, 1e-12)


def rank01(values):
    return rankdata(values) / len(values)


def minus_log_p(values):
    """``-log`` of each row's p-value among the rows: the share of rows at least as anomalous."""
    return -np.log(rankdata(-np.asarray(values), method="max") / (len(values) + 1))


#: name -> outlierness from {"off", "inside", "skae", "IsolationForest", "MCD"} scores
#: of the training rows (under the ADBench protocol, the scored rows).
CANDIDATES = {
    "combined": lambda s: s["off"] + s["inside"],
    "reconstruction": lambda s: s["off"],
    "density": lambda s: s["inside"],
    "skae default": lambda s: s["skae"],
    "rank(combined, IF)": lambda s: rank01(s["off"] + s["inside"]) + rank01(s["IsolationForest"]),
    "rank(combined, IF, IF)": lambda s: (
        rank01(s["off"] + s["inside"]) + 2 * rank01(s["IsolationForest"])
    ),
    "rank(combined, combined, IF)": lambda s: (
        2 * rank01(s["off"] + s["inside"]) + rank01(s["IsolationForest"])
    ),
    "z(log combined) + z(IF)": lambda s: (
        robust_z(np.log(s["off"] + s["inside"])) + robust_z(s["IsolationForest"])
    ),
    "fisher(combined, IF)": lambda s: (
        minus_log_p(s["off"] + s["inside"]) + minus_log_p(s["IsolationForest"])
    ),
    "fisher(combined, MCD)": lambda s: minus_log_p(s["off"] + s["inside"]) + minus_log_p(s["MCD"]),
    "fisher(combined, IF, MCD)": lambda s: (
        minus_log_p(s["off"] + s["inside"])
        + minus_log_p(s["IsolationForest"])
        + minus_log_p(s["MCD"])
    ),
    "rank(combined, MCD)": lambda s: rank01(s["off"] + s["inside"]) + rank01(s["MCD"]),
    "rank(combined, IF, MCD)": lambda s: (
        rank01(s["off"] + s["inside"]) + rank01(s["IsolationForest"]) + rank01(s["MCD"])
    ),
}


# -- tables -----------------------------------------------------------------------------


def ranks(values):
    """Rank of each value, 1 = highest; ties share their average rank."""
    return rankdata(-np.asarray(values))


def summarise(results, methods, tables, metric):
    """``(means, summary)``: per table x method means over seeds, and per-method summaries."""
    means = np.array(
        [[np.mean([r[metric] for r in results[m][t]]) for m in methods] for t in tables]
    )
    best = means.max(axis=1, keepdims=True)
    wins = np.isclose(means, best, rtol=0, atol=1e-12).sum(axis=0)
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


def print_summary(results, names, tables, metric, label):
    means, summary = summarise(results, names, tables, metric)
    print(f"{label} per table (mean over seeds for the stochastic methods)\n")
    rows = [[t, *(f"{v:.3f}" for v in means[i])] for i, t in enumerate(tables)]
    rows.append(["mean", *(f"{summary[n]['mean']:.3f}" for n in names)])
    rows.append(["median", *(f"{summary[n]['median']:.3f}" for n in names)])
    rows.append(["wins", *(str(summary[n]["wins"]) for n in names)])
    rows.append(["mean rank", *(f"{summary[n]['mean_rank']:.2f}" for n in names)])
    worst = [
        f"{summary[n]['worst_seed_mean']:.3f}" if len(summary[n]["per_seed_mean"]) > 1 else "-"
        for n in names
    ]
    rows.append(["worst seed mean", *worst])
    if metric == "auc" and all("fit_s" in results[n][tables[0]][0] for n in names):
        rows.append(["fit time (s)", *(f"{fit_seconds(results, n, tables):.1f}" for n in names)])
    print_table(["table", *(SHORT.get(n, n) for n in names)], rows)
    print()
    return means, summary


# -- the rotation --------------------------------------------------------------------------


def rotation(results, candidates, peers, tables, n_rotations, seed=0):
    """Choose on CHOOSE_ON of the 17 tables, report on the others; see the docstring."""
    n = len(tables)
    n_choose = min(n - 1, max(1, round(CHOOSE_ON * n / 17)))
    auc = {m: summarise(results, [m], tables, "auc")[0][:, 0] for m in [*candidates, *peers]}
    ap = {m: summarise(results, [m], tables, "ap")[0][:, 0] for m in [*candidates, *peers]}
    rng = np.random.RandomState(seed)
    rounds = []
    for _ in range(n_rotations):
        order = rng.permutation(n)
        choose, hold = order[:n_choose], order[n_choose:]

        def pick(names, choose=choose):
            return max(names, key=lambda m: auc[m][choose].mean() + ap[m][choose].mean())

        cand, peer = pick(candidates), pick(peers)
        rounds.append(
            {
                "held_out": [tables[i] for i in hold],
                "candidate": cand,
                "candidate_auc": float(auc[cand][hold].mean()),
                "candidate_ap": float(ap[cand][hold].mean()),
                "peer": peer,
                "peer_auc": float(auc[peer][hold].mean()),
                "peer_ap": float(ap[peer][hold].mean()),
                "best_peer_auc": float(max(auc[p][hold].mean() for p in peers)),
                "best_peer_ap": float(max(ap[p][hold].mean() for p in peers)),
            }
        )
    chosen = {}
    for r in rounds:
        chosen[r["candidate"]] = chosen.get(r["candidate"], 0) + 1
    keys = ("candidate_auc", "candidate_ap", "peer_auc", "peer_ap", "best_peer_auc", "best_peer_ap")
    held = {k: float(np.mean([r[k] for r in rounds])) for k in keys}
    held_by = {}  # each method's held-out-fold mean, with no choice
    rng = np.random.RandomState(seed)
    for _ in range(n_rotations):
        hold = rng.permutation(n)[n_choose:]
        for m in [*candidates, *peers]:
            held_by.setdefault(m, []).append((auc[m][hold].mean(), ap[m][hold].mean()))
    held_by = {m: tuple(float(v) for v in np.mean(pairs, axis=0)) for m, pairs in held_by.items()}
    full = {m: (float(auc[m].mean()), float(ap[m].mean())) for m in [*candidates, *peers]}
    print(
        f"Rotation: {n_rotations} random splits, choose on {n_choose} tables by mean ROC AUC + "
        f"AP, report on the other {n - n_choose}\n"
    )
    rows = [
        [
            ", ".join(r["held_out"]),
            r["candidate"],
            f"{r['candidate_auc']:.3f}/{r['candidate_ap']:.3f}",
            r["peer"],
            f"{r['peer_auc']:.3f}/{r['peer_ap']:.3f}",
        ]
        for r in rounds
    ]
    rows.append(
        [
            "held-out-fold mean",
            "",
            f"{held['candidate_auc']:.3f}/{held['candidate_ap']:.3f}",
            "",
            f"{held['peer_auc']:.3f}/{held['peer_ap']:.3f}",
        ]
    )
    print_table(["held-out tables", "chosen score", "AUC/AP", "chosen peer", "AUC/AP"], rows)
    print(
        f"\nbest peer on each held-out fold (an upper bound for the peers): mean "
        f"{held['best_peer_auc']:.3f}/{held['best_peer_ap']:.3f}; chosen: "
        + ", ".join(f"{c} {k}x" for c, k in sorted(chosen.items(), key=lambda x: -x[1]))
    )
    print("\nROC AUC/AP: full means (all tables), and held-out-fold means of each method as it is")
    for m in [*candidates, *peers]:
        print(
            f"  {m:<32} {full[m][0]:.3f}/{full[m][1]:.3f}   held out "
            f"{held_by[m][0]:.3f}/{held_by[m][1]:.3f}"
        )
    print()
    return {
        "rounds": rounds,
        "held_out_mean": held,
        "full_mean": full,
        "held_out_by_method": held_by,
        "chosen": chosen,
    }


# -- the ADBench part ------------------------------------------------------------------------


def load_adbench(folder, names=None, max_rows=None):
    tables = {}
    for path in sorted(Path(folder).glob("*.npz")):
        if names and path.stem not in names:
            continue
        data = np.load(path, allow_pickle=False)
        if max_rows and len(data["X"]) > max_rows:
            continue
        tables[path.stem] = (data["X"], data["y"].astype(int))
    return tables


def _record(y, scores, seed, fit_s=None):
    rec = {
        "seed": seed,
        "auc": float(roc_auc_score(y, scores)),
        "ap": float(average_precision_score(y, scores)),
    }
    if fit_s is not None:
        rec["fit_s"] = fit_s
    return rec


def report_adbench(report, n_rotations):
    """Print the tables and the rotation of a saved ``adbench`` report again."""
    results, tables = report["results"], list(report["tables"])
    names = list(results)
    for metric, label in (("auc", "ROC AUC"), ("ap", "Average precision")):
        print_summary(results, names, tables, metric, label)
    peers = [p for p in PEERS if p in names]
    if report.get("candidates"):
        merged = {**results, **report["candidates"]}
        candidates = list(report["candidates"])
        report["rotation"] = rotation(merged, candidates, peers, tables, n_rotations)
        rotation(merged, ["skae default"], peers, tables, n_rotations)
    return report


def part_adbench(opts):
    if not Path(opts.adbench).is_dir():
        print(f"-- adbench: {opts.adbench} not found; skipped.\n")
        return None
    tables = load_adbench(opts.adbench, opts.tables, QUICK_MAX_ROWS if opts.quick else None)
    methods = [
        m
        for m in adbench_methods()
        if not opts.methods or any(w.lower() in m.name.lower() for w in opts.methods)
    ]
    names = [m.name for m in methods]
    seeds = list(opts.seeds)
    with_candidates = SKAE in names and "IsolationForest" in names and "MCD" in names
    print(
        f"-- adbench: {len(tables)} tables, seeds {seeds}, torch threads {torch.get_num_threads()}"
    )
    results = {m: {t: [] for t in tables} for m in names}
    cands = {c: {t: [] for t in tables} for c in CANDIDATES} if with_candidates else {}
    notes = {}
    start_all = time.perf_counter()
    for table, (X, y) in tables.items():
        X = StandardScaler().fit_transform(X)
        line = [f"  {table} {X.shape[0]}x{X.shape[1]}:"]
        for seed in seeds:
            scores_of = {}
            for method in methods:
                if not method.stochastic and seed != seeds[0]:
                    continue
                start = time.perf_counter()
                model = method.make(X, seed).fit(X)
                fit_s = time.perf_counter() - start
                scores = np.asarray(method.outlierness(model, X), dtype=np.float64)
                results[method.name][table].append(_record(y, scores, seed, fit_s))
                scores_of[method.name] = scores
                if getattr(model, "notes_", None):
                    notes[table] = model.notes_
                if method.name == SKAE and with_candidates:
                    scores_of["off"], scores_of["inside"] = detector_terms(model, X)
            if with_candidates:
                scores_of["skae"] = scores_of[SKAE]
                for name, candidate in CANDIDATES.items():
                    cands[name][table].append(_record(y, candidate(scores_of), seed))
        for name in names:
            auc = np.mean([r["auc"] for r in results[name][table]])
            line.append(f"{SHORT.get(name, name)} {auc:.3f}")
        print(" ".join(line), flush=True)
    print(f"  ({time.perf_counter() - start_all:.0f} s)\n")
    for table, table_notes in notes.items():
        print(f"  MCD on {table}: {'; '.join(table_notes)}")
    print()

    table_names = list(tables)
    report = {"tables": {t: list(tables[t][0].shape) for t in tables}, "results": results}
    report["mcd_notes"] = notes
    for metric, label in (("auc", "ROC AUC"), ("ap", "Average precision")):
        _, report[metric] = print_summary(results, names, table_names, metric, label)
    for n in names:
        if len(report["auc"][n]["per_seed_mean"]) > 1:
            auc, ap = report["auc"][n]["per_seed_mean"], report["ap"][n]["per_seed_mean"]
            per_seed = ", ".join(f"seed {s}: {auc[s]:.3f}/{ap[s]:.3f}" for s in auc)
            print(f"{n}, mean ROC AUC/AP per seed: {per_seed}")
    print()
    report["fit_seconds"] = {n: fit_seconds(results, n, table_names) for n in names}
    peers = [p for p in PEERS if p in names]
    if SKAE in names and peers:
        report["gap"] = {
            metric: report[metric][SKAE]["mean"] - max(report[metric][p]["mean"] for p in peers)
            for metric in ("auc", "ap")
        }
        print(
            f"skae's mean minus the best of {', '.join(peers)}: ROC AUC "
            f"{report['gap']['auc']:+.3f}, AP {report['gap']['ap']:+.3f} (goal: +0.020 each)\n"
        )
    if with_candidates and len(tables) >= 3:
        candidate_names = list(CANDIDATES)
        merged = {**results, **cands}
        for metric, label in (("auc", "Candidates' ROC AUC"), ("ap", "Candidates' AP")):
            print_summary(merged, candidate_names, table_names, metric, label)
        report["candidates"] = cands
        report["rotation"] = rotation(merged, candidate_names, peers, table_names, opts.rotations)
        report["rotation_default"] = rotation(
            merged, ["skae default"], peers, table_names, opts.rotations
        )
    return report


# -- the threshold part: flagged fraction of new inliers on small training sets ------------


def small_sets(opts):
    """``{name: (inliers, scale)}``: one class each; ``scale`` standardises on the training rows."""
    from sklearn.datasets import load_breast_cancer, load_digits

    digits = load_digits()
    sets = {f"digits {d}": (digits.data[digits.target == d] / 16.0, False) for d in range(10)}
    cancer = load_breast_cancer()
    sets["breast cancer (benign)"] = (cancer.data[cancer.target == 1], True)
    for name in ("Pima", "Waveform", "yeast"):
        path = Path(opts.adbench) / f"{name}.npz"
        if path.is_file():
            data = np.load(path, allow_pickle=False)
            sets[f"{name} (inliers)"] = (data["X"][data["y"] == 0], True)
    return sets


def part_threshold(opts):
    sets = small_sets(opts)
    has_calibration = "calibration" in AEOutlierDetector().get_params()
    arms = {}
    for c in (0.1, "auto"):
        arms[f"skae contamination={c}"] = lambda seed, c=c: AEOutlierDetector(
            contamination=c, random_state=seed
        )
        if has_calibration:
            arms[f"skae contamination={c}, training scores"] = lambda seed, c=c: AEOutlierDetector(
                contamination=c, calibration="training", random_state=seed
            )
    arms["IsolationForest contamination=0.1"] = lambda seed: IsolationForest(
        contamination=0.1, random_state=seed
    )
    seeds = list(opts.seeds)
    print(
        f"-- threshold: {opts.small_rows} training rows of one class, the rest held out; "
        f"{len(sets)} sets, seeds {seeds}"
    )
    flagged = {a: [] for a in arms}
    seconds = dict.fromkeys(arms, 0.0)
    for seed in seeds:
        for rows, scale in sets.values():
            order = np.random.RandomState(seed).permutation(len(rows))
            train, test = rows[order[: opts.small_rows]], rows[order[opts.small_rows :]]
            if scale:
                scaler = StandardScaler().fit(train)
                train, test = scaler.transform(train), scaler.transform(test)
            for arm, make in arms.items():
                start = time.perf_counter()
                model = make(seed).fit(train)
                seconds[arm] += time.perf_counter() - start
                flagged[arm].append(float(np.mean(model.predict(test) == -1)))
    per_set = {a: np.reshape(v, (len(seeds), len(sets))).mean(axis=0) for a, v in flagged.items()}
    print("\nFlagged fraction of new inliers per set (mean over seeds)\n")
    rows = [[name, *(f"{per_set[a][i]:.1%}" for a in arms)] for i, name in enumerate(sets)]
    print_table(["set", *(a.replace("contamination=", "c=") for a in arms)], rows)
    rows = [
        [
            arm,
            f"{np.mean(v):.1%}",
            f"{np.median(per_set[arm]):.1%}",
            f"{np.min(per_set[arm]):.1%}",
            f"{np.max(per_set[arm]):.1%}",
            f"{within_2x(per_set[arm])}/{len(sets)}",
            f"{seconds[arm] / len(seeds):.1f} s",
        ]
        for arm, v in flagged.items()
    ]
    print("\nOver the sets (per set: mean over seeds); within 2x: sets flagging c/2 to 2c\n")
    headers = ["detector", "mean", "median set", "min set", "max set", "within 2x", "fit / seed"]
    print_table(headers, rows)
    print()
    return {
        "sets": list(sets),
        "flagged": flagged,
        "per_set": {a: v.tolist() for a, v in per_set.items()},
        "fit_seconds": seconds,
    }


def within_2x(fractions, c=0.1):
    """How many of ``fractions`` are within a factor 2 of ``c``."""
    return int(np.sum((np.asarray(fractions) >= c / 2) & (np.asarray(fractions) <= 2 * c)))


# -- the MNIST part ----------------------------------------------------------------------------


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


def part_mnist(opts):
    X, y, name = load_mnist(opts.mnist)
    digits = list(opts.classes)
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
    print(f"-- mnist: {name}; fit on the first {n_fit} rows (+{CONTAMINATION:.0%} other digits),")
    print(
        f"evaluate on the last {len(X) - n_fit}; AP at {CONTAMINATION:.0%} outliers; "
        f"seeds {list(opts.seeds)}.\n"
    )
    results = {m: {s: [] for s in list(opts.seeds)} for m in methods}
    seconds = dict.fromkeys(methods, 0.0)
    flagged = []
    for seed in list(opts.seeds):
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
        cells = np.mean([per_seed[s] for s in list(opts.seeds)], axis=0)  # digits x (auc, ap)
        seed_means = {s: np.mean(per_seed[s], axis=0).tolist() for s in list(opts.seeds)}
        worst = min(v[0] for v in seed_means.values())
        mean_auc, mean_ap = cells.mean(axis=0)
        rows.append(
            [
                method,
                *(f"{a:.3f}/{p:.3f}" for a, p in cells),
                f"{mean_auc:.3f}/{mean_ap:.3f}",
                f"{worst:.3f}",
                f"{seconds[method] / len(list(opts.seeds)):.1f} s",
            ]
        )
        report[method] = {
            "per_digit": {d: c.tolist() for d, c in zip(digits, cells)},
            "mean_auc": float(mean_auc),
            "mean_ap": float(mean_ap),
            "per_seed_mean": {s: v for s, v in seed_means.items()},
            "fit_score_seconds_per_seed": seconds[method] / len(list(opts.seeds)),
        }
    print_table(headers, rows)
    train, inl, outl = np.mean(flagged, axis=0)
    print(
        f'\nAEOutlierDetector, contamination="auto" (mean over digits and seeds): flags '
        f"{train:.1%} of the training rows ({CONTAMINATION:.0%} are outliers);\non held-out "
        f"data, {inl:.1%} of the inliers and {outl:.1%} of the outliers.\n"
    )
    report["flagged"] = {"train": train, "eval_inliers": inl, "eval_outliers": outl}
    return {"data": name, "digits": digits, "results": report}


# -- entry points ----------------------------------------------------------------------------


def run_anomaly(opts):
    out = {}
    if "adbench" in opts.parts:
        out["adbench"] = part_adbench(opts)
    if "threshold" in opts.parts:
        out["threshold"] = part_threshold(opts)
    if "mnist" in opts.parts:
        out["mnist"] = part_mnist(opts)
    out["summary"] = summary_rows(out)
    return out


def summary_rows(out):
    rows = []
    adbench = out.get("adbench")
    if adbench and "gap" in adbench:
        for metric, label in (("auc", "ROC AUC"), ("ap", "AP")):
            gap = adbench["gap"][metric]
            status = "met" if gap >= 0.02 else "NOT met"
            rows.append(
                [f"anomaly: skae mean {label} - best peer", f"{gap:+.3f}", ">= +0.02", status]
            )
    if adbench and "rotation_default" in adbench:
        held = adbench["rotation_default"]["held_out_mean"]
        gap = held["candidate_auc"] - held["peer_auc"]
        status = "met" if gap > 0 else "NOT met"
        rows.append(["anomaly: held-out ROC AUC - chosen peer", f"{gap:+.3f}", "> 0", status])
    threshold = out.get("threshold")
    if threshold:
        per_set = threshold["per_set"]["skae contamination=0.1"]
        mean = np.mean(threshold["flagged"]["skae contamination=0.1"])
        inside = within_2x(per_set)
        status = "met" if inside == len(per_set) else "NOT met"
        rows.append(
            [
                "anomaly: new inliers flagged, 150 rows, c=0.1",
                f"{mean:.1%}; {inside}/{len(per_set)} sets in 5-20 %",
                "every set 5-20 %",
                status,
            ]
        )
    mnist = out.get("mnist")
    if mnist:
        auc = mnist["results"]["AEOutlierDetector"]["mean_auc"]
        status = "met" if auc >= 0.971 else "NOT met"
        rows.append(["anomaly: MNIST one-digit mean ROC AUC", f"{auc:.3f}", ">= 0.971", status])
    return rows


@section(
    "anomaly", "anomaly detection: AEOutlierDetector vs IsolationForest, MCD, k-NN, LOF, pyod", 95
)
def anomaly(ctx):
    seeds = (0,) if ctx.quick else (0, 1, 2)
    opts = Options(seeds=seeds, quick=ctx.quick, mnist=ctx.mnist_folder)
    if ctx.quick:
        opts.classes = (0, 1)
    return run_anomaly(opts)


def _ints(text):
    return tuple(int(s) for s in text.split(",") if s.strip())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(PARTS), help=f"parts among {PARTS}")
    parser.add_argument("--seeds", default="0,1,2", help="seeds of the stochastic methods")
    parser.add_argument("--quick", action="store_true", help="seed 0, small tables, 2 digits")
    parser.add_argument("--tables", default="", help="ADBench tables (default: all)")
    parser.add_argument("--methods", default="", help="ADBench methods (default: all)")
    parser.add_argument("--rotations", type=int, default=20, help="rotation splits (default 20)")
    parser.add_argument("--small-rows", type=int, default=150, help="threshold part: rows")
    parser.add_argument("--adbench", default=str(DEFAULT_ADBENCH), help="ADBench .npz folder")
    parser.add_argument("--mnist", default=str(DEFAULT_MNIST), help="MNIST folder")
    parser.add_argument("--classes", default="0,1,3,7", help="MNIST inlier digits")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="JSON results file")
    parser.add_argument(
        "--report", metavar="JSON", help="reprint the adbench tables and rotation of a results file"
    )
    args = parser.parse_args(argv)
    if args.report:
        return report_adbench(json.loads(Path(args.report).read_text())["adbench"], args.rotations)
    parts = tuple(p.strip() for p in args.only.split(",") if p.strip())
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {unknown}; choose among {PARTS}")
    opts = Options(
        seeds=(0,) if args.quick else _ints(args.seeds),
        quick=args.quick,
        tables=tuple(t for t in args.tables.split(",") if t),
        methods=tuple(m for m in args.methods.split(",") if m),
        parts=parts,
        adbench=args.adbench,
        mnist=args.mnist,
        classes=(0, 1) if args.quick else _ints(args.classes),
        rotations=args.rotations,
        small_rows=args.small_rows,
    )
    default_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    out = run_anomaly(opts)
    print_table(["check", "figure", "goal", "status"], out["summary"])
    out["meta"] = {**machine_info(args.threads, default_threads), "options": vars(args)}
    out["meta"]["total_s"] = time.perf_counter() - start
    write_json(out, args.out)
    print(f"\ntotal {out['meta']['total_s']:.0f} s; results written to {args.out}")
    return out


if __name__ == "__main__":
    main()
