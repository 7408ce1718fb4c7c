"""skae's benchmark suite: speed against hand-written PyTorch, quality against PCA.

Run ``python benchmarks/run.py`` (everything, about 25 minutes on 2 CPU cores
with MNIST present) or ``python benchmarks/run.py --quick`` (about 4 minutes).
It prints one table per section and a summary of the goals, and writes every
figure (raw timings included) to ``benchmarks/results/results.json``.

Sections (``--only`` takes a comma-separated subset):

fit
    ``AE.fit`` against a hand-written torch loop training the *same* module
    (``skae._modules.MLPAutoencoder``) on the same data, with the same epochs,
    batch size, threads, optimiser (Adam) and data handling (one whole-tensor
    shuffle per epoch, then slicing). Rounds are interleaved (skae, torch,
    skae, torch, ...); the ratio is that of the minimum times. Goal <= 1.05x.
transform
    ``AE.transform`` / ``inverse_transform`` against calling
    ``net_.module_.encode`` / ``decode`` directly under
    ``torch.inference_mode()`` on a float32 tensor. Goal <= 1.10x.
quality
    Held-out reconstruction MSE, downstream logistic-regression accuracy and
    fit time of PCA, AE, SparseAE, ConvAE and VAE with default training, on
    sklearn's digits and on MNIST (when present).
defaults
    The "defaults that win" check: default ``AE(n_components=32)`` on MNIST
    (8,000 fit / 2,000 held out) with torch's default threads: MSE ratio to
    PCA(32) (goal <= 0.70) and fit time (goal <= 60 s on 2 cores).
scaling
    Fit time at 1x, 4x and 16x the rows (should be linear: constant s/row).
memory
    Peak memory of ``transform`` on a large array (200,000 x 784 float32),
    measured as the RSS high-water mark in a subprocess, above the input and
    output arrays.
gpu
    The fit comparison on CUDA (samples/s and ratio) when a GPU is present.

Timings are wall-clock (``time.perf_counter``); CPU times
(``time.process_time``) are recorded too, as they are less sensitive to
other processes sharing the cores. Nothing here asserts on timings.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "results.json"
DEFAULT_MNIST = HERE.parent.parent / "shared" / "data" / "mnist"
SECTIONS = ("fit", "transform", "quality", "defaults", "scaling", "memory", "gpu")

#: Model used by the speed sections: AE(n_components=8) with its default (256,) hidden layer.
SPEED_COMPONENTS = 8
SPEED_HIDDEN = (256,)
BATCH_SIZE = 64
LR = 1e-3

#: Goals from the project's issues.
GOAL_FIT = 1.05
GOAL_TRANSFORM = 1.10
GOAL_MSE_RATIO = 0.70
GOAL_DEFAULT_FIT_S = 60.0


# -- data ---------------------------------------------------------------------


def narrow_data(n_samples=10_000, n_features=20, random_state=0):
    """Standardised blobs: ``n_samples x 20`` float32."""
    from sklearn.datasets import make_blobs
    from sklearn.preprocessing import StandardScaler

    X, _ = make_blobs(n_samples, n_features, centers=10, cluster_std=2.0, random_state=random_state)
    return StandardScaler().fit_transform(X).astype(np.float32)


def synthetic_images(n_samples, n_features=784, random_state=0):
    """Low-rank synthetic 'images' in [0, 1]: ``sigmoid(Z @ W)``, float32."""
    rng = np.random.default_rng(random_state)
    Z = rng.standard_normal((n_samples, 16), dtype=np.float32)
    W = rng.standard_normal((16, n_features), dtype=np.float32) / 2.0
    return (1.0 / (1.0 + np.exp(-(Z @ W)))).astype(np.float32)


def load_mnist_or_none(folder):
    """``(X, y)`` from the MNIST IDX files in ``folder``, or ``None``."""
    if folder is None or not Path(folder).is_dir():
        return None
    from skae.datasets import load_mnist

    try:
        return load_mnist(folder)
    except (FileNotFoundError, ValueError) as exc:
        print(f"  (MNIST not usable in {folder}: {exc})")
        return None


def wide_data(mnist, n_samples=8_000):
    """``(X, source)``: the first 8,000 MNIST images, else synthetic images."""
    if mnist is not None:
        return mnist[0][:n_samples], "MNIST"
    return synthetic_images(n_samples), "synthetic"


def digits_split():
    """sklearn's digits /16, stratified 80/20 split, random_state=0."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    X = (data.data / 16.0).astype(np.float32)
    return train_test_split(X, data.target, test_size=0.2, stratify=data.target, random_state=0)


# -- timing helpers -------------------------------------------------------------


def sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device="cpu"):
    """Run ``fn()``; return ``(result, wall_s, cpu_s)``."""
    sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    sync(device)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def timed_repeat(fn, min_seconds=0.05, device="cpu"):
    """Per-call ``(wall_s, cpu_s)`` of ``fn``, repeated to last at least ``min_seconds``."""
    n = 1
    while True:

        def run(n=n):
            for _ in range(n):
                fn()

        _, wall, cpu = timed(run, device)
        if wall >= min_seconds or n >= 1_000_000:
            return wall / n, cpu / n
        n = max(2 * n, int(n * 1.2 * min_seconds / max(wall, 1e-9)))


def interleave(fns, rounds):
    """Call each of ``fns`` (name -> zero-arg timer) in turn, ``rounds`` times."""
    times = {name: {"wall": [], "cpu": []} for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            wall, cpu = fn()
            times[name]["wall"].append(wall)
            times[name]["cpu"].append(cpu)
    return times


def ratio_of_mins(times, ours, base, key="wall"):
    return min(times[ours][key]) / min(times[base][key])


# -- tables ---------------------------------------------------------------------


def print_table(headers, rows):
    """Print ``rows`` (lists of already formatted cells) under ``headers``."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
    line = "  ".join(
        f"{h:<{w}}" if i == 0 else f"{h:>{w}}" for i, (h, w) in enumerate(zip(headers, widths))
    )
    print(line)
    print("-" * len(line))
    for row in rows:
        print(
            "  ".join(
                f"{c!s:<{w}}" if i == 0 else f"{c!s:>{w}}"
                for i, (c, w) in enumerate(zip(row, widths))
            )
        )


def fmt_s(seconds):
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


# -- fit: skae against a hand-written torch loop ----------------------------------


def torch_fit(X, *, epochs, batch_size=BATCH_SIZE, lr=LR, seed=0, device="cpu"):
    """The hand-written baseline: skae's own module, Adam, shuffle + slice per epoch."""
    from skae._modules import MLPAutoencoder

    X_t = torch.tensor(X, dtype=torch.float32, device=device)
    torch.manual_seed(seed)
    module = MLPAutoencoder(X.shape[1], SPEED_COMPONENTS, hidden_layer_sizes=SPEED_HIDDEN)
    module.to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=lr)
    module.train()
    n = len(X_t)
    losses = []
    for _ in range(epochs):
        X_epoch = X_t[torch.randperm(n, device=device)]
        total = torch.zeros((), device=device)
        for start in range(0, n, batch_size):
            batch = X_epoch[start : start + batch_size]
            optimizer.zero_grad()
            loss = F.mse_loss(module(batch)["recon"], batch)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(batch)
        losses.append(total.item() / n)
    module.eval()
    return module, losses


def skae_fit(X, *, epochs, batch_size=BATCH_SIZE, lr=LR, seed=0, device="cpu"):
    from skae import AE

    return AE(
        SPEED_COMPONENTS,
        hidden_layer_sizes=SPEED_HIDDEN,
        max_epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        tol=0.0,
        random_state=seed,
        device=device,
    ).fit(X)


def compare_fit(X, *, epochs, rounds, device="cpu"):
    """Interleaved rounds of skae and the torch loop; figures of one dataset."""
    n_iter = []

    def ours():
        est, wall, cpu = timed(lambda: skae_fit(X, epochs=epochs, device=device), device)
        n_iter.append(est.n_iter_)
        return wall, cpu

    def base():
        _, wall, cpu = timed(lambda: torch_fit(X, epochs=epochs, device=device), device)
        return wall, cpu

    # Warm-up (not counted): first calls pay for lazy initialisation.
    skae_fit(X[:1024], epochs=1, device=device)
    torch_fit(X[:1024], epochs=1, device=device)
    times = interleave({"skae": ours, "torch": base}, rounds)
    samples = len(X) * epochs
    return {
        "n_samples": len(X),
        "n_features": X.shape[1],
        "epochs": epochs,
        "skae_n_iter": n_iter,
        "times": times,
        "skae_min_s": min(times["skae"]["wall"]),
        "torch_min_s": min(times["torch"]["wall"]),
        "ratio": ratio_of_mins(times, "skae", "torch"),
        "ratio_cpu": ratio_of_mins(times, "skae", "torch", "cpu"),
        "ratio_median": float(np.median(times["skae"]["wall"]) / np.median(times["torch"]["wall"])),
        "skae_samples_per_s": samples / min(times["skae"]["wall"]),
        "torch_samples_per_s": samples / min(times["torch"]["wall"]),
    }


def fit_rows(results):
    rows = []
    for name, r in results.items():
        rows.append(
            [
                name,
                f"{r['n_samples']}x{r['n_features']}",
                r["epochs"],
                fmt_s(r["skae_min_s"]),
                fmt_s(r["torch_min_s"]),
                f"{r['ratio']:.3f}",
                f"{r['ratio_cpu']:.3f}",
                f"{r['skae_samples_per_s']:,.0f}",
                f"{r['torch_samples_per_s']:,.0f}",
            ]
        )
    return rows


FIT_HEADERS = [
    "data",
    "shape",
    "epochs",
    "skae (min)",
    "torch (min)",
    "ratio",
    "cpu ratio",
    "skae rows/s",
    "torch rows/s",
]


def run_fit_section(ctx, device="cpu"):
    results = {}
    for name, X in ctx["speed_data"].items():
        print(f"  {name} on {device}: {ctx['rounds']} interleaved rounds ...", flush=True)
        results[name] = compare_fit(X, epochs=ctx["epochs"], rounds=ctx["rounds"], device=device)
        if any(n != ctx["epochs"] for n in results[name]["skae_n_iter"]):
            print(f"  warning: skae ran {results[name]['skae_n_iter']} epochs")
    print_table(FIT_HEADERS, fit_rows(results))
    print(f"  goal: ratio <= {GOAL_FIT}")
    return results


def section_fit(ctx):
    return {"device": "cpu", "threads": ctx["threads"], "results": run_fit_section(ctx)}


def section_gpu(ctx):
    if not torch.cuda.is_available():
        print("  no GPU present (torch.cuda.is_available() is False): skipped.")
        return {"skipped": "no CUDA device"}
    name = torch.cuda.get_device_name(0)
    print(f"  device: {name}")
    return {"device": "cuda", "device_name": name, "results": run_fit_section(ctx, "cuda")}


# -- transform: skae against calling the module directly ------------------------------


def direct(fn, X):
    with torch.inference_mode():
        return fn(torch.from_numpy(X)).numpy()


def section_transform(ctx):
    results = {}
    for name, X in ctx["speed_data"].items():
        est = skae_fit(X, epochs=1)
        module = est.net_.module_
        codes = est.transform(X)
        for n_rows in (256, len(X)):
            Xs, Cs = X[:n_rows], codes[:n_rows]
            cases = {
                "transform": (partial(est.transform, Xs), partial(direct, module.encode, Xs)),
                "inverse_transform": (
                    partial(est.inverse_transform, Cs),
                    partial(direct, module.decode, Cs),
                ),
            }
            for case, (ours, base) in cases.items():
                np.testing.assert_allclose(ours(), base(), rtol=1e-5, atol=1e-6)
                times = interleave(
                    {
                        "skae": lambda f=ours: timed_repeat(f),
                        "torch": lambda f=base: timed_repeat(f),
                    },
                    ctx["rounds"],
                )
                results[f"{name}/{case}/{n_rows}"] = {
                    "data": name,
                    "method": case,
                    "n_rows": n_rows,
                    "n_features": X.shape[1],
                    "times": times,
                    "skae_min_s": min(times["skae"]["wall"]),
                    "torch_min_s": min(times["torch"]["wall"]),
                    "ratio": ratio_of_mins(times, "skae", "torch"),
                    "ratio_cpu": ratio_of_mins(times, "skae", "torch", "cpu"),
                }
    rows = [
        [
            f"{r['data']} {r['method']}",
            f"{r['n_rows']}x{r['n_features']}",
            fmt_s(r["skae_min_s"]),
            fmt_s(r["torch_min_s"]),
            f"{r['ratio']:.3f}",
            f"{r['ratio_cpu']:.3f}",
        ]
        for r in results.values()
    ]
    print_table(
        ["data / method", "input", "skae (min)", "direct (min)", "ratio", "cpu ratio"], rows
    )
    print(f"  goal: ratio <= {GOAL_TRANSFORM}; direct = module.encode/decode under inference_mode")
    return {"threads": ctx["threads"], "results": results}


# -- quality against PCA ------------------------------------------------------------


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
        ks = (8,) if ctx["quick"] else (2, 8, 32)
        return [(k, all_names) for k in ks], None
    if ctx["quick"]:
        return [], "MNIST quality skipped in --quick (the defaults section fits AE(32) on MNIST)"
    plan = [(k, [n for n in all_names if n != "ConvAE" or k == 32]) for k in (2, 8, 32)]
    return plan, "on MNIST, ConvAE runs at n_components=32 only (it is the slowest to train)"


def section_quality(ctx):
    out = {"threads": ctx["threads"], "datasets": {}}
    datasets = {"digits": (*digits_split(), (8, 8))}
    if ctx["mnist"] is not None:
        X, y = ctx["mnist"]
        datasets["MNIST"] = (X[:8000], X[8000:], y[:8000], y[8000:], (28, 28))
    else:
        print(f"  MNIST not found in {ctx['mnist_folder']}: MNIST quality skipped.")
        out["datasets"]["MNIST"] = {"skipped": f"no MNIST in {ctx['mnist_folder']}"}
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


def section_defaults(ctx):
    if ctx["mnist"] is None:
        print(f"  MNIST not found in {ctx['mnist_folder']}: skipped.")
        return {"skipped": f"no MNIST in {ctx['mnist_folder']}"}
    from sklearn.decomposition import PCA

    from skae import AE

    X, _ = ctx["mnist"]
    X_train, X_test = X[:8000], X[8000:]
    threads = ctx["default_threads"]
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
        torch.set_num_threads(ctx["threads"])
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
            [f"AE(32) fit ({threads} threads)", fmt_s(fit_s), f"<= {GOAL_DEFAULT_FIT_S:.0f} s"],
            ["AE(32) fit, CPU time", fmt_s(cpu_s), "-"],
            ["AE(32) epochs run", r["n_iter"], "-"],
        ],
    )
    return r


# -- scaling -------------------------------------------------------------------------------


def section_scaling(ctx):
    from skae import AE

    epochs = 2
    bases = {
        "narrow": (1000 if ctx["quick"] else 4000, 20),
        "wide": (500 if ctx["quick"] else 1000, 784),
    }
    rounds = 1 if ctx["quick"] else 3
    out = {"epochs": epochs, "threads": ctx["threads"], "rounds": rounds, "results": {}}
    rows = []
    for name, (base, n_features) in bases.items():
        sizes = [base * m for m in (1, 4, 16)]
        largest = sizes[-1]
        X_all = narrow_data(largest) if n_features == 20 else synthetic_images(largest)
        fns = {}
        for n in sizes:
            X = X_all[:n]

            def fit(X=X):
                est = AE(SPEED_COMPONENTS, max_epochs=epochs, tol=0.0, random_state=0, device="cpu")
                _, wall, cpu = timed(lambda: est.fit(X))
                return wall, cpu

            fns[n] = fit
        AE(SPEED_COMPONENTS, max_epochs=1, device="cpu").fit(X_all[:256])  # warm-up
        times = interleave(fns, rounds)
        per_row_1x = min(times[sizes[0]]["wall"]) / sizes[0]
        for mult, n in zip((1, 4, 16), sizes):
            best = min(times[n]["wall"])
            r = {
                "data": name,
                "multiple": mult,
                "n_samples": n,
                "n_features": n_features,
                "times": times[n],
                "min_s": best,
                "s_per_row": best / n,
                "us_per_row_epoch": best / n / epochs * 1e6,
                "per_row_vs_1x": best / n / per_row_1x,
            }
            out["results"][f"{name}/{mult}x"] = r
            rows.append(
                [
                    f"{name} {mult}x",
                    f"{n}x{n_features}",
                    fmt_s(best),
                    f"{r['s_per_row']:.3e}",
                    f"{r['us_per_row_epoch']:.1f}",
                    f"{r['per_row_vs_1x']:.2f}",
                ]
            )
    print_table(
        ["data", "shape", f"fit ({epochs} ep)", "s/row", "us/row/epoch", "s/row vs 1x"], rows
    )
    print("  linear scaling: s/row vs 1x stays near 1.0")
    return out


# -- memory of transform -----------------------------------------------------------


def _rss_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def memory_child(rows, mode, threads):
    """Child process: peak RSS of one transform of a ``rows x 784`` float32 array."""
    torch.set_num_threads(threads)
    from skae import AE

    rng = np.random.default_rng(0)
    est = AE(32, max_epochs=1, random_state=0, device="cpu")
    est.fit(rng.random((512, 784), dtype=np.float32))
    module = est.net_.module_
    X = rng.random((rows, 784), dtype=np.float32)

    def run():
        if mode == "skae":
            return est.transform(X)
        return direct(module.encode, X)

    # Warm-up on a few rows: one-time allocations are not the per-call cost.
    est.transform(X[:16])
    direct(module.encode, X[:16])
    method = "VmHWM after clear_refs"
    try:
        before = _rss_kb("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the high-water mark to the current RSS
        Z = run()
        peak = _rss_kb("VmHWM")
    except OSError:
        import resource

        method = "ru_maxrss (not reset)"
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        Z = run()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if sys.platform == "darwin":
            before, peak = before // 1024, peak // 1024
    mb = 1024 * 1024
    return {
        "mode": mode,
        "rows": rows,
        "method": method,
        "input_mb": X.nbytes / mb,
        "output_mb": Z.nbytes / mb,
        "rss_before_mb": before / 1024,
        "peak_mb": peak / 1024,
        "extra_mb": (peak - before) / 1024 - Z.nbytes / mb,
    }


def section_memory(ctx):
    if not sys.platform.startswith("linux") and not hasattr(os, "getrusage"):
        return {"skipped": "needs Linux /proc or resource"}
    rows = 50_000 if ctx["quick"] else 200_000
    out = {"threads": ctx["threads"], "results": {}}
    table = []
    for mode in ("skae", "direct"):
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--memory-child",
            str(rows),
            mode,
            "--threads",
            str(ctx["threads"]),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(f"  {mode}: child failed:\n{proc.stderr[-2000:]}")
            out["results"][mode] = {"failed": proc.stderr[-2000:]}
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        out["results"][mode] = r
        label = "skae transform" if mode == "skae" else "encode(whole tensor)"
        table.append(
            [
                label,
                f"{rows}x784",
                f"{r['input_mb']:.0f} MB",
                f"{r['output_mb']:.1f} MB",
                f"{r['extra_mb']:.1f} MB",
            ]
        )
    print_table(["call", "input", "input size", "output size", "peak above in+out"], table)
    print("  peak RSS in a fresh subprocess (Linux VmHWM), AE(n_components=32), float32 input")
    return out


# -- summary ----------------------------------------------------------------------------


def summary_rows(results):
    rows = []

    def status(value, goal):
        return "met" if value <= goal else "NOT met"

    fit = results.get("fit", {}).get("results", {})
    for name, r in fit.items():
        rows.append(
            [
                f"fit time skae/torch, {name}",
                f"{r['ratio']:.3f}x",
                f"<= {GOAL_FIT}x",
                status(r["ratio"], GOAL_FIT),
            ]
        )
    tr = results.get("transform", {}).get("results", {})
    for r in tr.values():
        if r["n_rows"] == 256:
            continue
        rows.append(
            [
                f"{r['method']} skae/direct, {r['data']} {r['n_rows']} rows",
                f"{r['ratio']:.3f}x",
                f"<= {GOAL_TRANSFORM}x",
                status(r["ratio"], GOAL_TRANSFORM),
            ]
        )
    d = results.get("defaults", {})
    if "mse_ratio" in d:
        rows.append(
            [
                "default AE(32) MSE / PCA(32), MNIST",
                f"{d['mse_ratio']:.3f}",
                f"<= {GOAL_MSE_RATIO}",
                status(d["mse_ratio"], GOAL_MSE_RATIO),
            ]
        )
        rows.append(
            [
                f"default AE(32) fit, MNIST 8k, {d['threads']} threads",
                fmt_s(d["fit_s"]),
                f"<= {GOAL_DEFAULT_FIT_S:.0f} s",
                status(d["fit_s"], GOAL_DEFAULT_FIT_S),
            ]
        )
    sc = results.get("scaling", {}).get("results", {})
    for r in sc.values():
        if r["multiple"] == 16:
            rows.append(
                [
                    f"fit s/row at 16x vs 1x, {r['data']}",
                    f"{r['per_row_vs_1x']:.2f}",
                    "~1 (linear)",
                    "-",
                ]
            )
    mem = results.get("memory", {}).get("results", {}).get("skae", {})
    if "extra_mb" in mem:
        rows.append(
            [
                f"transform peak above in+out, {mem['rows']}x784",
                f"{mem['extra_mb']:.1f} MB",
                "small, bounded",
                "-",
            ]
        )
    gpu = results.get("gpu", {})
    if "results" in gpu:
        for name, r in gpu["results"].items():
            rows.append(
                [
                    f"GPU fit skae/torch, {name}",
                    f"{r['ratio']:.3f}x",
                    f"<= {GOAL_FIT}x",
                    status(r["ratio"], GOAL_FIT),
                ]
            )
    elif "gpu" in results:
        rows.append(["GPU fit", "no GPU", "-", "-"])
    return rows


# -- main -------------------------------------------------------------------------------


def machine_info(threads, default_threads):
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    import sklearn
    import skorch

    import skae

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_cores": cores,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "skorch": skorch.__version__,
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "skae": skae.__version__,
        "torch_threads": threads,
        "torch_default_threads": default_threads,
        "cuda": torch.cuda.is_available(),
        "load_average_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds, epochs and models")
    parser.add_argument("--rounds", type=int, help="interleaved timing rounds (default 5, quick 3)")
    parser.add_argument(
        "--epochs", type=int, help="epochs of the fit comparison (default 10, quick 3)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--out", default=str(DEFAULT_OUT), help=f"JSON file (default {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--only", help=f"comma-separated sections to run, among: {', '.join(SECTIONS)}"
    )
    parser.add_argument(
        "--mnist", metavar="FOLDER", default=str(DEFAULT_MNIST), help="MNIST IDX folder"
    )
    parser.add_argument("--memory-child", nargs=2, metavar=("ROWS", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.only:
        args.only = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = sorted(set(args.only) - set(SECTIONS))
        if unknown:
            parser.error(f"unknown section(s) {unknown}; choose among {list(SECTIONS)}")
    else:
        args.only = list(SECTIONS)
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be >= 1")
    if args.threads < 1:
        parser.error("--threads must be >= 1")
    return args


def main(argv=None):
    default_threads = torch.get_num_threads()
    args = parse_args(argv)
    if args.memory_child:
        print(
            json.dumps(memory_child(int(args.memory_child[0]), args.memory_child[1], args.threads))
        )
        return None
    torch.set_num_threads(args.threads)
    mnist = load_mnist_or_none(args.mnist)
    wide, wide_source = wide_data(mnist)
    ctx = {
        "quick": args.quick,
        "rounds": args.rounds or (3 if args.quick else 5),
        "epochs": args.epochs or (3 if args.quick else 10),
        "threads": args.threads,
        "default_threads": default_threads,
        "mnist": mnist,
        "mnist_folder": args.mnist,
        "speed_data": {"narrow": narrow_data(), f"wide ({wide_source})": wide},
    }
    results = {
        "meta": {
            **machine_info(args.threads, default_threads),
            "quick": args.quick,
            "rounds": ctx["rounds"],
            "fit_epochs": ctx["epochs"],
            "mnist": mnist is not None,
            "sections": args.only,
        }
    }
    meta = results["meta"]
    print(
        f"skae benchmarks  {meta['date']}  {meta['cpu']} ({meta['cpu_cores']} cores)  "
        f"torch {meta['torch']}  threads={args.threads} (default {default_threads})  "
        f"rounds={ctx['rounds']}{'  --quick' if args.quick else ''}"
    )
    titles = {
        "fit": "fit time: skae AE vs a hand-written torch loop (same module, Adam, batch 64)",
        "transform": "transform / inverse_transform vs the module's encode / decode",
        "quality": "quality vs PCA: held-out MSE, logistic-regression accuracy, fit time",
        "defaults": "the defaults that win: AE(n_components=32) on MNIST 8k/2k",
        "scaling": "scaling: fit time at 1x, 4x, 16x rows",
        "memory": "peak memory of transform on a large array",
        "gpu": "GPU: fit time on CUDA",
    }
    sections = {
        "fit": section_fit,
        "transform": section_transform,
        "quality": section_quality,
        "defaults": section_defaults,
        "scaling": section_scaling,
        "memory": section_memory,
        "gpu": section_gpu,
    }
    start = time.perf_counter()
    for name in SECTIONS:
        if name not in args.only:
            continue
        print(f"\n== {name}: {titles[name]}", flush=True)
        t0 = time.perf_counter()
        results[name] = sections[name](ctx)
        results[name]["section_s"] = time.perf_counter() - t0
    meta["total_s"] = time.perf_counter() - start
    meta["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None

    print("\n== summary")
    print_table(["check", "figure", "goal", "status"], summary_rows(results))
    print(f"total {meta['total_s']:.0f} s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=float))
    print(f"results written to {out}")
    return results


if __name__ == "__main__":
    main()
