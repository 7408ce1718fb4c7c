"""ONNX benchmarks: onnxruntime against skae's own inference, and the two torch exporters.

Two sections of ``benchmarks/run.py``: ``python benchmarks/run.py --only
onnx_latency,onnx_exporters`` (about 3 minutes on 2 CPU cores; ``--quick``
about 1 minute) prints their tables and summary rows and writes every figure
(raw timings included) to the run's JSON file. They need ``pip install
"skae[onnx]"`` (without it they are skipped with a message). Nothing is
downloaded: the data are sklearn's bundled digits.

onnx_latency
    ``AE(n_components=8)`` (default (256,) hidden layer) fitted on the digits
    (64 features): ``transform`` against running its ONNX export
    (:func:`skae.to_onnx`) in onnxruntime, for 1, 10 and 10,000 rows, in
    float32 and float64; ``PCA(8).transform`` on 1 and 10 rows for scale.
    Calls are interleaved one by one (every case once per pass; 30 passes
    per round, 10 with ``--quick``) and the figure is the minimum per-call
    time. Goals: a 1-row and a 10-row ``transform`` take at most 2x
    ``PCA.transform`` (in both dtypes), and a 10-row float64 ``transform``
    at most 2x a float32 one.
onnx_exporters
    torch's dynamo exporter (what skae uses) against the legacy TorchScript
    one, on the same wrapped modules (``AE`` encoder, ``ConvAE`` encoder,
    ``VAE`` score) with the same post-processing: export time, graph size,
    onnxruntime time for 1 and 1,000 rows (float32), and the largest
    relative difference from scikit-learn in float32 and float64.

torch and onnxruntime use ``--threads`` threads (default 1) and rounds are
``--rounds`` (default 5). Timings are wall-clock (``time.perf_counter``); CPU
times (``time.process_time``) are recorded too. Nothing here asserts on
timings.
"""

import importlib.util
import io
import time
import warnings

import numpy as np
import torch
from _common import fmt_s, interleave, print_table, section, summary_row, timed_repeat

N_COMPONENTS = 8
GOAL_VS_PCA = 2.0
GOAL_FLOAT64_VS_FLOAT32 = 2.0

#: Packages the sections need (the ``onnx`` extra).
REQUIRED = ("onnx", "onnxruntime", "skl2onnx", "onnxscript")


def missing_packages():
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def skipped(check):
    """The result of a section that cannot run: the ``onnx`` extra is not installed."""
    missing = ", ".join(missing_packages())
    print(f'  {missing} not installed (pip install "skae[onnx]"): skipped.')
    return {"skipped": f"missing {missing}", "summary": [[check, "skipped", "-", "-"]]}


def interleave_calls(fns, rounds, calls):
    """Per-call wall and CPU times of each of ``fns``, interleaved call by call.

    Each round makes ``calls`` passes; each pass calls every function once, so
    all of them run under the same load and cache conditions.
    """
    times = {name: {"wall": [], "cpu": []} for name in fns}
    for _ in range(rounds):
        for _ in range(calls):
            for name, fn in fns.items():
                wall, cpu = time.perf_counter(), time.process_time()
                fn()
                times[name]["wall"].append(time.perf_counter() - wall)
                times[name]["cpu"].append(time.process_time() - cpu)
    return times


def max_relative_error(actual, expected):
    """Largest ``|a - e|`` relative to the largest ``|e|`` (entries near zero included)."""
    expected = np.asarray(expected, dtype=np.float64).reshape(np.shape(actual))
    return float(np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-300))


# -- data, models, sessions ---------------------------------------------------------


def digits():
    from sklearn.datasets import load_digits

    return load_digits().data / 16.0


def rows_10k(X):
    """10,000 rows: the digits repeated, with a little noise (float64)."""
    rng = np.random.default_rng(0)
    X = np.tile(X, (-(-10_000 // len(X)), 1))[:10_000]
    return np.clip(X + 0.01 * rng.standard_normal(X.shape), 0, 1)


def ort_version():
    import onnxruntime

    return onnxruntime.__version__


def session(model, threads):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


# -- latency: onnxruntime vs transform vs PCA ----------------------------------------


def calls_per_round(ctx):
    """Passes per round of the interleaved per-call timings."""
    return 10 if ctx.quick else 30


@section("onnx_latency", "ONNX: onnxruntime vs skae transform vs PCA.transform (AE(8), digits)", 75)
def section_latency(ctx):
    if missing_packages():
        return skipped("ONNX latency")
    from sklearn.decomposition import PCA

    import skae

    X = digits()
    ae = skae.AE(N_COMPONENTS, max_epochs=5, random_state=0).fit(X)
    pca = PCA(N_COMPONENTS).fit(X)
    big = rows_10k(X)
    fns, checks = {}, []
    for dtype in (np.float32, np.float64):
        name = np.dtype(dtype).name
        sess = session(skae.to_onnx(ae, X[:1].astype(dtype)), ctx.threads)
        for n_rows in (1, 10, 10_000):
            rows = np.ascontiguousarray((big if n_rows > len(X) else X)[:n_rows].astype(dtype))
            feed = {"X": rows}
            checks.append((sess.run(None, feed)[0], ae.transform(rows), dtype))
            fns[f"skae/{name}/{n_rows}"] = lambda rows=rows: ae.transform(rows)
            fns[f"onnxruntime/{name}/{n_rows}"] = lambda s=sess, f=feed: s.run(None, f)
            if n_rows <= 10:
                fns[f"pca/{name}/{n_rows}"] = lambda rows=rows: pca.transform(rows)
    for actual, expected, dtype in checks:
        rtol = 1e-4 if dtype == np.float32 else 1e-10
        assert max_relative_error(actual, expected) <= rtol, "onnxruntime disagrees with skae"
    # Small and large inputs are interleaved separately: a call after a 10,000-row
    # call would find the caches cold.
    small = {k: f for k, f in fns.items() if not k.endswith("/10000")}
    large = {k: f for k, f in fns.items() if k.endswith("/10000")}
    calls = calls_per_round(ctx)
    times = interleave_calls(small, ctx.rounds, calls)
    times.update(interleave_calls(large, ctx.rounds, max(1, calls // 5)))
    best = {name: min(t["wall"]) for name, t in times.items()}
    best_cpu = {name: min(t["cpu"]) for name, t in times.items()}
    median = {name: float(np.median(t["wall"])) for name, t in times.items()}
    rows, ratios = [], {}
    for dtype in ("float32", "float64"):
        for n_rows in (1, 10, 10_000):
            skae_key, ort_key = f"skae/{dtype}/{n_rows}", f"onnxruntime/{dtype}/{n_rows}"
            pca_key = f"pca/{dtype}/{n_rows}"
            ratios[f"skae/onnxruntime/{dtype}/{n_rows}"] = best[skae_key] / best[ort_key]
            if pca_key in best:
                ratios[f"skae/pca/{dtype}/{n_rows}"] = best[skae_key] / best[pca_key]
                ratios[f"skae/pca/{dtype}/{n_rows}/cpu"] = best_cpu[skae_key] / best_cpu[pca_key]
                ratios[f"skae/pca/{dtype}/{n_rows}/median"] = median[skae_key] / median[pca_key]
            rows.append(
                [
                    f"{n_rows:,} row{'s' if n_rows > 1 else ''}",
                    dtype,
                    fmt_s(best[pca_key]) if pca_key in best else "-",
                    fmt_s(best[skae_key]),
                    fmt_s(best[ort_key]),
                    f"{best[skae_key] / best[pca_key]:.2f}" if pca_key in best else "-",
                    f"{best[skae_key] / best[ort_key]:.1f}",
                ]
            )
    for n_rows in (1, 10):
        for kind, figures in (("", best), ("/cpu", best_cpu), ("/median", median)):
            ratios[f"skae/float64_vs_float32/{n_rows}{kind}"] = (
                figures[f"skae/float64/{n_rows}"] / figures[f"skae/float32/{n_rows}"]
            )
    print_table(
        [
            "input",
            "dtype",
            "PCA.transform",
            "skae transform",
            "onnxruntime",
            "skae / PCA",
            "skae / onnxruntime",
        ],
        rows,
    )
    print("  per call: min over all calls (wall); calls interleaved case by case")
    print(
        f"  goals: 1- and 10-row transform <= {GOAL_VS_PCA}x PCA.transform; "
        f"10-row float64 <= {GOAL_FLOAT64_VS_FLOAT32}x float32"
    )
    checks = [
        (f"transform / PCA.transform, {n} row{'s' if n > 1 else ''}, {dtype}", key, GOAL_VS_PCA)
        for n in (1, 10)
        for dtype in ("float32", "float64")
        for key in [f"skae/pca/{dtype}/{n}"]
    ]
    checks.append(
        (
            "transform float64 / float32, 10 rows",
            "skae/float64_vs_float32/10",
            GOAL_FLOAT64_VS_FLOAT32,
        )
    )
    summary = []
    for label, key, goal in checks:
        value = ratios[key]
        print(
            f"  {label}: {value:.2f} (cpu {ratios[key + '/cpu']:.2f}, median "
            f"{ratios[key + '/median']:.2f})  {'ok' if value <= goal else 'MISSED'}"
        )
        summary.append(summary_row(label, value, goal, "x", "{:.2f}"))
    for n_rows in (1, 10_000):
        for dtype in ("float32", "float64"):
            label = f"transform / onnxruntime, {n_rows:,} row{'s' if n_rows > 1 else ''}, {dtype}"
            value = ratios[f"skae/onnxruntime/{dtype}/{n_rows}"]
            summary.append(summary_row(label, value, None, "x", "{:.1f}"))
    return {
        "times": times,
        "min_s": best,
        "min_cpu_s": best_cpu,
        "median_s": median,
        "ratios": ratios,
        "onnxruntime": ort_version(),
        "summary": summary,
    }


# -- exporters: dynamo vs legacy TorchScript -------------------------------------------


def export_legacy(module, n_inputs, dtype):
    """The legacy TorchScript exporter, with skae's post-processing (float64 kernels...)."""
    import onnx

    from skae._onnx import TORCH_OPSET, _prepare, _rewrite

    module = _prepare(module, dtype)
    example = torch.zeros(3, n_inputs, dtype=dtype)
    with torch.no_grad():
        module(example)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its DeprecationWarning, TracerWarnings
        torch.onnx.export(
            module,
            (example,),
            buffer,
            dynamo=False,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
            opset_version=TORCH_OPSET,
        )
    model = onnx.load_from_string(buffer.getvalue())
    _rewrite(model, model.graph.input[0].type.tensor_type.elem_type)
    return model


@section("onnx_exporters", "ONNX: torch exporters, dynamo (used) vs legacy TorchScript", 76)
def section_exporters(ctx):
    if missing_packages():
        return skipped("ONNX exporters")
    import skae
    from skae._inference import Encoder, scorer
    from skae._onnx import export_module

    X = digits()
    cases = {
        "AE encoder": (skae.AE(N_COMPONENTS, max_epochs=5, random_state=0), "transform"),
        "ConvAE encoder": (
            skae.ConvAE(N_COMPONENTS, input_shape=(1, 8, 8), max_epochs=2, random_state=0),
            "transform",
        ),
        "VAE score": (
            skae.VAE(2, loss="bce", output_activation="sigmoid", max_epochs=5, random_state=0),
            "score_samples",
        ),
    }
    exporters = {"dynamo": export_module, "legacy": export_legacy}
    results, rows = {}, []
    for case, (est, method) in cases.items():
        est.fit(X)
        module = Encoder(est.net_.module_) if method == "transform" else scorer(est)
        expected = {dt: getattr(est, method)(X.astype(dt)) for dt in (np.float32, np.float64)}
        for exporter, export in exporters.items():
            export_s, models = [], {}
            for _ in range(1 if ctx.quick else 3):
                for dtype in (torch.float32, torch.float64):
                    start = time.perf_counter()
                    models[dtype] = export(module, X.shape[1], dtype)
                    if dtype == torch.float32:
                        export_s.append(time.perf_counter() - start)
            errors, fixed_batch = {}, False
            for dtype, np_dtype in ((torch.float32, np.float32), (torch.float64, np.float64)):
                sess = session(models[dtype], ctx.threads)
                actual = sess.run(None, {"x": X.astype(np_dtype)})[0]
                errors[np.dtype(np_dtype).name] = max_relative_error(actual, expected[np_dtype])
                try:
                    sess.run(None, {"x": X[:1].astype(np_dtype)})
                except Exception:  # noqa: BLE001 - any runtime error means a fixed batch
                    fixed_batch = True
            sess = session(models[torch.float32], ctx.threads)
            one, many = {"x": X[:1].astype(np.float32)}, {"x": X[:1000].astype(np.float32)}
            times = interleave(
                {
                    "1": lambda s=sess, f=one: timed_repeat(lambda: s.run(None, f)),
                    "1000": lambda s=sess, f=many: timed_repeat(lambda: s.run(None, f)),
                },
                ctx.rounds,
            )
            model = models[torch.float32]
            result = {
                "export_s": export_s,
                "nodes": len(model.graph.node),
                "bytes": model.ByteSize(),
                "run_times": times,
                "run_1_min_s": min(times["1"]["wall"]),
                "run_1000_min_s": min(times["1000"]["wall"]),
                "max_relative_error": errors,
                "dynamic_batch": not fixed_batch,
            }
            results[f"{case}/{exporter}"] = result
            rows.append(
                [
                    case,
                    exporter,
                    fmt_s(min(export_s)),
                    result["nodes"],
                    f"{result['bytes'] / 1024:.0f} KiB",
                    fmt_s(result["run_1_min_s"]),
                    fmt_s(result["run_1000_min_s"]),
                    f"{errors['float32']:.1e}",
                    f"{errors['float64']:.1e}",
                    "yes" if result["dynamic_batch"] else "NO",
                ]
            )
    print_table(
        [
            "model",
            "exporter",
            "export",
            "nodes",
            "size",
            "ort 1 row",
            "ort 1000 rows",
            "err f32",
            "err f64",
            "any batch",
        ],
        rows,
    )
    print("  export: float32, min over rounds; err: max |onnx - sklearn| / max |sklearn|")
    return {"results": results}
