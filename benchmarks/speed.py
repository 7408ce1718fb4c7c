"""Speed sections: skae against hand-written PyTorch, and how it scales.

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
scaling
    Fit time at 1x, 4x and 16x the rows (should be linear: constant s/row).
memory
    Peak memory of ``transform`` on a large array (200,000 x 784 float32),
    measured as the RSS high-water mark in a subprocess (this file, run with
    ``--memory-child``), above the input and output arrays.
gpu
    The fit comparison on CUDA (samples/s and ratio) when a GPU is present.
"""

import argparse
import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import torch
from _common import (
    BATCH_SIZE,
    LR,
    SPEED_COMPONENTS,
    SPEED_HIDDEN,
    fmt_s,
    interleave,
    narrow_data,
    print_table,
    ratio_of_mins,
    section,
    summary_row,
    synthetic_images,
    timed,
    timed_repeat,
)
from torch.nn import functional as F

#: Goals from the project's issues.
GOAL_FIT = 1.05
GOAL_TRANSFORM = 1.10


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
        # the hand-written loop's model and data: no linear path, no validation split
        init="random",
        early_stopping=False,
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
    for name, X in ctx.speed_data.items():
        print(f"  {name} on {device}: {ctx.rounds} interleaved rounds ...", flush=True)
        results[name] = compare_fit(X, epochs=ctx.epochs, rounds=ctx.rounds, device=device)
        if any(n != ctx.epochs for n in results[name]["skae_n_iter"]):
            print(f"  warning: skae ran {results[name]['skae_n_iter']} epochs")
    print_table(FIT_HEADERS, fit_rows(results))
    print(f"  goal: ratio <= {GOAL_FIT}")
    return results


def fit_summary(results, label="fit"):
    return [
        summary_row(f"{label} time skae/torch, {name}", r["ratio"], GOAL_FIT, "x")
        for name, r in results.items()
    ]


@section("fit", "fit time: skae AE vs a hand-written torch loop (same module, Adam, batch 64)", 10)
def section_fit(ctx):
    results = run_fit_section(ctx)
    return {
        "device": "cpu",
        "threads": ctx.threads,
        "results": results,
        "summary": fit_summary(results),
    }


@section("gpu", "GPU: fit time on CUDA", 70)
def section_gpu(ctx):
    if not torch.cuda.is_available():
        print("  no GPU present (torch.cuda.is_available() is False): skipped.")
        return {"skipped": "no CUDA device", "summary": [["GPU fit", "no GPU", "-", "-"]]}
    name = torch.cuda.get_device_name(0)
    print(f"  device: {name}")
    results = run_fit_section(ctx, "cuda")
    return {
        "device": "cuda",
        "device_name": name,
        "results": results,
        "summary": fit_summary(results, "GPU fit"),
    }


# -- transform: skae against calling the module directly ------------------------------


def direct(fn, X):
    with torch.inference_mode():
        return fn(torch.from_numpy(X)).numpy()


@section("transform", "transform / inverse_transform vs the module's encode / decode", 20)
def section_transform(ctx):
    results = {}
    for name, X in ctx.speed_data.items():
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
                    ctx.rounds,
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
    summary = [
        summary_row(
            f"{r['method']} skae/direct, {r['data']} {r['n_rows']} rows",
            r["ratio"],
            GOAL_TRANSFORM,
            "x",
        )
        for r in results.values()
        if r["n_rows"] != 256
    ]
    return {"threads": ctx.threads, "results": results, "summary": summary}


@section("scaling", "scaling: fit time at 1x, 4x, 16x rows", 50)
def section_scaling(ctx):
    from skae import AE

    epochs = 2
    bases = {
        "narrow": (1000 if ctx.quick else 4000, 20),
        "wide": (500 if ctx.quick else 1000, 784),
    }
    rounds = 1 if ctx.quick else 3
    out = {"epochs": epochs, "threads": ctx.threads, "rounds": rounds, "results": {}}
    rows = []
    for name, (base, n_features) in bases.items():
        sizes = [base * m for m in (1, 4, 16)]
        largest = sizes[-1]
        X_all = narrow_data(largest) if n_features == 20 else synthetic_images(largest)
        fns = {}
        for n in sizes:
            X = X_all[:n]

            def fit(X=X):
                est = AE(
                    SPEED_COMPONENTS,
                    max_epochs=epochs,
                    tol=0.0,
                    early_stopping=False,
                    random_state=0,
                    device="cpu",
                )
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
    out["summary"] = [
        [f"fit s/row at 16x vs 1x, {r['data']}", f"{r['per_row_vs_1x']:.2f}", "~1 (linear)", "-"]
        for r in out["results"].values()
        if r["multiple"] == 16
    ]
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


@section("memory", "peak memory of transform on a large array", 60)
def section_memory(ctx):
    if not sys.platform.startswith("linux") and not hasattr(os, "getrusage"):
        return {"skipped": "needs Linux /proc or resource"}
    rows = 50_000 if ctx.quick else 200_000
    out = {"threads": ctx.threads, "results": {}}
    table = []
    for mode in ("skae", "direct"):
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--memory-child",
            str(rows),
            mode,
            "--threads",
            str(ctx.threads),
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
    skae_row = out["results"].get("skae", {})
    if "extra_mb" in skae_row:
        out["summary"] = [
            [
                f"transform peak above in+out, {rows}x784",
                f"{skae_row['extra_mb']:.1f} MB",
                "small, bounded",
                "-",
            ]
        ]
    return out


def _memory_child_main(argv=None):
    """``speed.py --memory-child ROWS MODE --threads N``: print one JSON line."""
    parser = argparse.ArgumentParser(description="peak RSS of one transform (internal)")
    parser.add_argument("--memory-child", nargs=2, metavar=("ROWS", "MODE"), required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    rows, mode = args.memory_child
    print(json.dumps(memory_child(int(rows), mode, args.threads)))


if __name__ == "__main__":
    _memory_child_main()
