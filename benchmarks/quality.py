"""Quality sections: skae's estimators against PCA, and the defaults that win.

quality
    Held-out reconstruction MSE, downstream logistic-regression accuracy and
    fit time of PCA, AE, SparseAE, ConvAE and VAE with default training, on
    sklearn's digits and on MNIST (when present).
defaults
    The "defaults that win" check: default ``AE(n_components=32)`` on MNIST
    (8,000 fit / 2,000 held out) with torch's default threads: MSE ratio to
    PCA(32) (goal <= 0.70) and fit time (goal <= 60 s on 2 cores).
"""

import os

import numpy as np
import torch
from _common import digits_split, fmt_s, print_table, section, summary_row, timed

#: Goals from the project's issues.
GOAL_MSE_RATIO = 0.70
GOAL_DEFAULT_FIT_S = 60


def quality_estimators(n_components, image_shape, names):
    from sklearn.decomposition import PCA

    from skae import AE, VAE, ConvAE, SparseAE

    make = {
        "PCA": lambda: PCA(n_components, random_state=0),
        "AE": lambda: AE(n_components, random_state=0),
        "SparseAE": lambda: SparseAE(n_components, random_state=0),
        "ConvAE": lambda: ConvAE(n_components, input_shape=(1, *image_shape), random_state=0),
        "VAE": lambda: VAE(n_components, loss="bce", output_activation="sigmoid", random_state=0),
    }
    return {name: make[name]() for name in names}


def evaluate(est, X_train, X_test, y_train, y_test):
    """Fit ``est``; held-out MSE, logistic-regression accuracy and fit time."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    _, fit_s, _ = timed(lambda: est.fit(X_train))
    codes_train, codes_test = est.transform(X_train), est.transform(X_test)
    recon = est.inverse_transform(codes_test)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(codes_train, y_train)
    return {
        "mse": float(np.mean((recon - X_test) ** 2)),
        "accuracy": float(clf.score(codes_test, y_test)),
        "fit_s": fit_s,
        "n_iter": getattr(est, "n_iter_", None),
    }


def quality_plan(ctx, dataset):
    """``[(n_components, [estimator names])]`` for ``dataset``, and a note."""
    all_names = ["PCA", "AE", "SparseAE", "ConvAE", "VAE"]
    if dataset == "digits":
        ks = (8,) if ctx.quick else (2, 8, 32)
        return [(k, all_names) for k in ks], None
    if ctx.quick:
        return [], "MNIST quality skipped in --quick (the defaults section fits AE(32) on MNIST)"
    plan = [(k, [n for n in all_names if n != "ConvAE" or k == 32]) for k in (2, 8, 32)]
    return plan, "on MNIST, ConvAE runs at n_components=32 only (it is the slowest to train)"


@section("quality", "quality vs PCA: held-out MSE, logistic-regression accuracy, fit time", 30)
def section_quality(ctx):
    out = {"threads": ctx.threads, "datasets": {}}
    datasets = {"digits": (*digits_split(), (8, 8))}
    if ctx.mnist is not None:
        X, y = ctx.mnist
        datasets["MNIST"] = (X[:8000], X[8000:], y[:8000], y[8000:], (28, 28))
    else:
        print(f"  MNIST not found in {ctx.mnist_folder}: MNIST quality skipped.")
        out["datasets"]["MNIST"] = {"skipped": f"no MNIST in {ctx.mnist_folder}"}
    for dataset, (X_train, X_test, y_train, y_test, shape) in datasets.items():
        plan, note = quality_plan(ctx, dataset)
        if note:
            print(f"  note: {note}")
        if plan:
            print(
                f"  {dataset}: {len(X_train)} fit / {len(X_test)} held out, "
                f"{X_train.shape[1]} features"
            )
        rows = []
        for k, names in plan:
            for name, est in quality_estimators(k, shape, names).items():
                print(f"    fitting {name}(n_components={k}) ...", flush=True)
                r = {"estimator": name, "n_components": k}
                r.update(evaluate(est, X_train, X_test, y_train, y_test))
                rows.append(r)
        pca = {r["n_components"]: r["mse"] for r in rows if r["estimator"] == "PCA"}
        for r in rows:
            r["mse_ratio_pca"] = r["mse"] / pca[r["n_components"]]
        out["datasets"][dataset] = {"note": note, "rows": rows}
        if not rows:
            continue
        print(f"  {dataset}:")
        print_table(
            ["estimator", "k", "held-out MSE", "x PCA", "accuracy", "fit", "epochs"],
            [
                [
                    r["estimator"],
                    r["n_components"],
                    f"{r['mse']:.5f}",
                    f"{r['mse_ratio_pca']:.2f}",
                    f"{r['accuracy']:.3f}",
                    fmt_s(r["fit_s"]),
                    "-" if r["n_iter"] is None else r["n_iter"],
                ]
                for r in rows
            ],
        )
    return out


# -- the defaults that win ------------------------------------------------------------


@section("defaults", "the defaults that win: AE(n_components=32) on MNIST 8k/2k", 40)
def section_defaults(ctx):
    if ctx.mnist is None:
        print(f"  MNIST not found in {ctx.mnist_folder}: skipped.")
        return {"skipped": f"no MNIST in {ctx.mnist_folder}"}
    from sklearn.decomposition import PCA

    from skae import AE

    X, _ = ctx.mnist
    X_train, X_test = X[:8000], X[8000:]
    threads = ctx.default_threads
    torch.set_num_threads(threads)
    try:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(
            f"  fitting AE(n_components=32) with {threads} torch threads "
            f"(1-min load average {load:.1f}) ...",
            flush=True,
        )
        ae, fit_s, cpu_s = timed(lambda: AE(n_components=32, random_state=0).fit(X_train))
    finally:
        torch.set_num_threads(ctx.threads)
    pca = PCA(32, random_state=0).fit(X_train)
    mse_ae = float(np.mean((ae.inverse_transform(ae.transform(X_test)) - X_test) ** 2))
    mse_pca = float(np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2))
    r = {
        "threads": threads,
        "n_fit": len(X_train),
        "n_held_out": len(X_test),
        "mse_ae": mse_ae,
        "mse_pca": mse_pca,
        "mse_ratio": mse_ae / mse_pca,
        "fit_s": fit_s,
        "fit_cpu_s": cpu_s,
        "n_iter": ae.n_iter_,
        "load_average_before": load,
    }
    print_table(
        ["check", "figure", "goal"],
        [
            ["held-out MSE AE(32) / PCA(32)", f"{r['mse_ratio']:.3f}", f"<= {GOAL_MSE_RATIO}"],
            ["AE(32) held-out MSE", f"{mse_ae:.5f}", "-"],
            ["PCA(32) held-out MSE", f"{mse_pca:.5f}", "-"],
            [f"AE(32) fit ({threads} threads)", fmt_s(fit_s), f"<= {GOAL_DEFAULT_FIT_S} s"],
            ["AE(32) fit, CPU time", fmt_s(cpu_s), "-"],
            ["AE(32) epochs run", r["n_iter"], "-"],
        ],
    )
    r["summary"] = [
        summary_row("default AE(32) MSE / PCA(32), MNIST", r["mse_ratio"], GOAL_MSE_RATIO),
        summary_row(
            f"default AE(32) fit, MNIST 8k, {threads} threads",
            fit_s,
            GOAL_DEFAULT_FIT_S,
            " s",
            "{:.2f}",
        ),
    ]
    return r
