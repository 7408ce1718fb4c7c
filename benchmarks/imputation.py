"""Imputation benchmark: ``skae.AEImputer`` against scikit-learn's imputers (issue 23).

Data: the 17 ADBench tables of ``../shared/data/adbench`` (X only; y for the
downstream accuracy), scikit-learn's digits and breast cancer; each table
standardised (constant columns dropped), at most ``--max-rows`` rows (a
seeded random subset).

Missingness, drawn per seed:

- ``mcar10``, ``mcar20``, ``mcar40``: each cell missing completely at random;
- ``mar``: one random column stays observed; every other column is missing
  with a probability that grows with that column's rank (0 to 40 %, 20 % on
  average; the direction drawn per column);
- ``mnar``: each cell missing with a probability that grows with its own
  value's rank in its column (0 to 40 %, 20 % on average): large values are
  missing more often.

Peers: ``SimpleImputer(mean)``, ``KNNImputer()``, ``IterativeImputer()``
(BayesianRidge) and ``IterativeImputer(ExtraTreesRegressor)`` (the MissForest
analogue, 10 trees). Each imputer is fitted on the masked table and fills
it (fit + transform, timed); the RMSE is on the masked cells, in standardised
units. Downstream accuracy: a logistic regression, 3-fold cross-validated
on the imputed table (``mcar20`` only). The heavy peers run only where
affordable on 2 cores (``--max-iter-features``, ``--max-et-features``);
skipped cells are reported as such.

Also: SpamBase at 20 % MCAR, min-max scaled (GAIN's protocol, paper RMSE 0.0513).

Run::

    nice -n 10 python benchmarks/imputation.py --seeds 0,1,2 --patterns mcar20
    python benchmarks/imputation.py --quick

or as the ``imputation`` section of ``benchmarks/run.py`` (seed 0, mcar20,
small tables with ``--quick``).
"""

import argparse
import datetime
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import print_table, section, summary_row  # noqa: E402

SHARED = HERE.parent.parent / "shared" / "data"
DEFAULT_ADBENCH = SHARED / "adbench"
DEFAULT_OUT = HERE / "results" / "imputation.json"
PATTERNS = ("mcar10", "mcar20", "mcar40", "mar", "mnar")
METHODS = ("mean", "knn", "iterative", "iterative_et", "skae")
#: Goals of issue 23.
GOAL_GEOMEAN = 0.85
GOAL_SPAMBASE = 0.050
GAIN_SPAMBASE = 0.0513
QUICK_TABLES = ("breast_cancer", "wine", "glass", "Ionosphere", "yeast", "vowels")


def load_tables(folder, names=None):
    """``{name: (X, y)}``: ADBench tables, digits and breast cancer (raw)."""
    from sklearn.datasets import load_breast_cancer, load_digits

    tables = {}
    folder = Path(folder)
    if folder.is_dir():
        for path in sorted(folder.glob("*.npz")):
            data = np.load(path)
            tables[path.stem] = (np.asarray(data["X"], float), np.asarray(data["y"]))
    else:
        print(f"  {folder} not found: ADBench tables skipped.")
    digits = load_digits()
    tables["digits"] = (digits.data.astype(float), digits.target)
    cancer = load_breast_cancer()
    tables["breast_cancer"] = (cancer.data.astype(float), cancer.target)
    if names:
        tables = {k: v for k, v in tables.items() if k in names}
    return tables


def prepare(X, y, max_rows, seed=0):
    """Standardised ``X`` (constant columns dropped), at most ``max_rows`` rows."""
    rng = np.random.default_rng(seed)
    if len(X) > max_rows:
        rows = np.sort(rng.choice(len(X), max_rows, replace=False))
        X, y = X[rows], y[rows]
    X = X[:, X.std(axis=0) > 0]
    return (X - X.mean(axis=0)) / X.std(axis=0), y


def _ranks(values):
    return (np.argsort(np.argsort(values, axis=0), axis=0) + 0.5) / len(values)


def make_mask(X, pattern, seed):
    """Boolean mask of the missing cells for ``pattern`` (see the module docstring)."""
    rng = np.random.default_rng(1000 + seed)
    n, d = X.shape
    if pattern.startswith("mcar"):
        return rng.random((n, d)) < int(pattern[4:]) / 100
    if pattern == "mar":
        driver = rng.integers(d)
        rank = _ranks(X[:, driver])
        p = np.empty((n, d))
        for j in range(d):
            p[:, j] = 0.4 * (rank if rng.random() < 0.5 else 1 - rank)
        p[:, driver] = 0.0
        return rng.random((n, d)) < p
    if pattern == "mnar":
        return rng.random((n, d)) < 0.4 * _ranks(X)
    raise ValueError(pattern)


def make_imputer(method, seed):
    from sklearn.ensemble import ExtraTreesRegressor
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer

    import skae

    if method == "mean":
        return SimpleImputer()
    if method == "knn":
        return KNNImputer()
    if method == "iterative":
        return IterativeImputer(random_state=seed)
    if method == "iterative_et":
        et = ExtraTreesRegressor(n_estimators=10, random_state=seed, n_jobs=1)
        return IterativeImputer(estimator=et, random_state=seed)
    if method == "skae":
        return skae.AEImputer(random_state=seed)
    raise ValueError(method)


def affordable(method, X, args):
    if method == "iterative":
        return X.shape[1] <= args.max_iter_features
    if method == "iterative_et":
        return X.shape[1] <= args.max_et_features
    return True


def impute(method, Xm, seed):
    """``(imputed, seconds of fit + transform, estimator)``."""
    imputer = make_imputer(method, seed)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        filled = imputer.fit_transform(Xm)
    return filled, time.perf_counter() - start, imputer


def accuracy(X, y, seed):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    cv = StratifiedKFold(3, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(cross_val_score(LogisticRegression(max_iter=500), X, y, cv=cv).mean())


def reused_records(paths):
    """Records of earlier runs (``--reuse``: JSON results or JSON-lines logs), by key."""
    found = {}
    for path in paths:
        text = Path(path).read_text()
        if path.endswith(".jsonl"):
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            records = json.loads(text)["records"]
        for r in records:
            found[(r["table"], r["pattern"], r["seed"], r["method"])] = r
    return found


def run_grid(args, tables):
    """Every (table, pattern, seed, method): RMSE, time, accuracy.

    Each record is also appended to ``args.out`` with the suffix ``.jsonl``
    as it is measured; ``--reuse`` takes earlier records of the peers (never
    of skae, whose code changes) instead of measuring them again.
    """
    records = []
    reuse = reused_records(args.reuse)
    log = Path(args.out).with_suffix(".jsonl")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    for name, (X_raw, y_raw) in tables.items():
        X, y = prepare(X_raw, y_raw, args.max_rows)
        for pattern in args.patterns:
            for seed in args.seeds:
                mask = make_mask(X, pattern, seed)
                keep = ~mask.all(axis=0)  # a column with no observed value: imputers drop it
                Xc, mc = X[:, keep], mask[:, keep]
                Xm = np.where(mc, np.nan, Xc)
                for method in args.methods:
                    earlier = reuse.get((name, pattern, seed, method))
                    if earlier is not None and method != "skae":
                        records.append(earlier)
                        with log.open("a") as f:
                            f.write(json.dumps(earlier) + "\n")
                        continue
                    record = {"table": name, "pattern": pattern, "seed": seed, "method": method}
                    record.update(n=X.shape[0], d=X.shape[1])
                    if not affordable(method, X, args):
                        record["skipped"] = True
                        records.append(record)
                        continue
                    filled, seconds, imputer = impute(method, Xm, seed)
                    record["rmse"] = float(np.sqrt(np.mean((filled - Xc)[mc] ** 2)))
                    record["seconds"] = seconds
                    if method == "skae":
                        record["fallback"] = bool(imputer.fallback_)
                        record["epochs"] = int(imputer.n_iter_)
                    if pattern == "mcar20" and len(np.unique(y)) > 1:
                        record["accuracy"] = accuracy(filled, y, seed)
                    records.append(record)
                    with log.open("a") as f:
                        f.write(json.dumps(record) + "\n")
                    print(
                        f"  {name:14s} {pattern:7s} seed {seed} {method:13s} "
                        f"rmse {record['rmse']:.4f}  {seconds:7.2f} s"
                        + (" (fallback)" if record.get("fallback") else ""),
                        flush=True,
                    )
    return records


def geomean(values):
    values = [v for v in values if v is not None and v > 0]
    return math.exp(np.mean(np.log(values))) if values else float("nan")


def report(records, methods):
    """Print the per-table tables and return the goal figures."""
    done = [r for r in records if "rmse" in r]
    key = {(r["table"], r["pattern"], r["seed"], r["method"]): r for r in done}
    figures = {}
    for pattern in sorted({r["pattern"] for r in done}, key=PATTERNS.index):
        tables = sorted({r["table"] for r in done if r["pattern"] == pattern})
        seeds = sorted({r["seed"] for r in done if r["pattern"] == pattern})
        rows, ratios, worse, slower = [], [], [], []
        for table in tables:
            row = [table]
            for method in methods:
                vals = [key.get((table, pattern, s, method)) for s in seeds]
                vals = [v["rmse"] for v in vals if v]
                row.append(f"{np.mean(vals):.4f}" if vals else "skip")
            for method in methods:
                vals = [key.get((table, pattern, s, method)) for s in seeds]
                vals = [v["seconds"] for v in vals if v]
                row.append(f"{np.mean(vals):.2f}" if vals else "-")
            for s in seeds:
                ours, mean = (
                    key.get((table, pattern, s, "skae")),
                    key.get((table, pattern, s, "mean")),
                )
                it = key.get((table, pattern, s, "iterative"))
                if ours and it:
                    ratios.append(ours["rmse"] / it["rmse"])
                if ours and mean and ours["rmse"] > mean["rmse"]:
                    worse.append(f"{table}/{s} ({ours['rmse']:.4f} > {mean['rmse']:.4f})")
                if ours and it and ours["d"] >= 50 and ours["seconds"] > it["seconds"]:
                    slower.append(f"{table}/{s}")
            rows.append(row)
        headers = ["table", *[f"rmse {m}" for m in methods], *[f"s {m}" for m in methods]]
        print(f"\n{pattern}: mean RMSE on the masked cells over seeds {seeds}, fit+transform s")
        print_table(headers, rows)
        g = geomean(ratios)
        print(
            f"  skae / iterative RMSE, geometric mean over {len(ratios)} (table, seed): {g:.3f}; "
            f"median {np.median(ratios) if ratios else float('nan'):.3f}; "
            f"worse than the mean: {worse or 'never'}; slower than iterative on >= 50 "
            f"features: {slower or 'never'}"
        )
        figures[pattern] = {"geomean": g, "worse": worse, "slower": slower, "n": len(ratios)}
    acc = [r for r in done if "accuracy" in r]
    if acc:
        tables = sorted({r["table"] for r in acc})
        rows = []
        for table in tables:
            row = [table]
            for method in methods:
                vals = [r["accuracy"] for r in acc if r["table"] == table and r["method"] == method]
                row.append(f"{np.mean(vals):.3f}" if vals else "skip")
            rows.append(row)
        print("\nmcar20: downstream accuracy (logistic regression, 3-fold CV), mean over seeds")
        print_table(["table", *methods], rows)
    return figures


def spambase(args, tables):
    """SpamBase, 20 % MCAR, min-max scaled: RMSE of each method (GAIN's protocol)."""
    if "SpamBase" not in tables:
        return None
    X, _ = tables["SpamBase"]
    X = X[:, X.max(axis=0) > X.min(axis=0)]
    X = (X - X.min(axis=0)) / (X.max(axis=0) - X.min(axis=0))
    rows, out = [], {}
    for method in ("mean", "iterative", "skae"):
        rmses, secs = [], []
        for seed in args.seeds:
            mask = make_mask(X, "mcar20", seed)
            filled, seconds, _ = impute(method, np.where(mask, np.nan, X), seed)
            rmses.append(float(np.sqrt(np.mean((filled - X)[mask] ** 2))))
            secs.append(seconds)
        out[method] = {"rmse": rmses, "seconds": secs}
        rows.append([method, f"{np.mean(rmses):.4f}", f"{np.mean(secs):.2f}"])
    rows.append(["GAIN (paper)", f"{GAIN_SPAMBASE}", "-"])
    print(f"\nSpamBase, 20 % MCAR, min-max scaled, seeds {args.seeds}")
    print_table(["method", "rmse", "s"], rows)
    return out


def run(args):
    torch.set_num_threads(1)
    tables = load_tables(args.adbench, args.tables)
    records = run_grid(args, tables)
    figures = report(records, args.methods)
    spam = spambase(args, tables) if args.spambase else None
    return {"records": records, "figures": figures, "spambase": spam}


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="seed 0, mcar20, 6 small tables")
    parser.add_argument("--seeds", default="0,1,2", help="seeds (default 0,1,2)")
    parser.add_argument("--tables", default="", help="comma-separated tables (default: all)")
    parser.add_argument("--patterns", default=",".join(PATTERNS), help="missingness patterns")
    parser.add_argument("--methods", default=",".join(METHODS), help="imputers")
    parser.add_argument("--max-rows", type=int, default=5000, help="rows per table (5000)")
    parser.add_argument("--max-iter-features", type=int, default=100, help="IterativeImputer")
    parser.add_argument("--max-et-features", type=int, default=30, help="ExtraTrees variant")
    parser.add_argument("--no-spambase", dest="spambase", action="store_false")
    parser.add_argument("--adbench", default=str(DEFAULT_ADBENCH), help="ADBench .npz folder")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="JSON results file")
    parser.add_argument(
        "--reuse", default="", help="comma-separated earlier results (.json/.jsonl) of the peers"
    )
    args = parser.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",") if s]
    args.tables = [t for t in args.tables.split(",") if t]
    args.patterns = [p for p in args.patterns.split(",") if p]
    args.methods = [m for m in args.methods.split(",") if m]
    args.reuse = [p for p in args.reuse.split(",") if p]
    if args.quick:
        args.seeds, args.patterns = [0], ["mcar20"]
        args.tables = args.tables or list(QUICK_TABLES)
    unknown = (set(args.patterns) - set(PATTERNS)) | (set(args.methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown patterns or methods {sorted(unknown)}")
    return args


@section("imputation", "AEImputer against scikit-learn's imputers (RMSE, time)", 90)
def section_imputation(ctx):
    argv = ["--seeds", "0", "--patterns", "mcar20", "--no-spambase"]
    if ctx.quick:
        argv.append("--quick")
    result = run(parse(argv))
    figure = result["figures"].get("mcar20", {})
    return {
        **result,
        "summary": [
            summary_row(
                "imputation: skae/iterative RMSE (geo)", figure.get("geomean"), GOAL_GEOMEAN
            )
        ],
    }


def main(argv=None):
    args = parse(argv)
    out = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "argv": sys.argv[1:],
        **run(args),
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=str))
    print(f"Results written to {path}")


if __name__ == "__main__":
    main()
