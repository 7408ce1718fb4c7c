"""skae's benchmark suite: speed against hand-written PyTorch, quality against PCA.

Run ``python benchmarks/run.py`` (everything, about 25 minutes on 2 CPU cores
with MNIST present) or ``python benchmarks/run.py --quick`` (about 4 minutes).
It prints one table per section and a summary of the goals, and writes every
figure (raw timings included) to ``benchmarks/results/results.json``.

The sections are registered by the modules of this folder (``speed.py``:
fit, transform, scaling, memory, gpu; ``quality.py``: quality, defaults;
``onnx_bench.py``: onnx_latency, onnx_exporters; ``suite.py``: suite;
``anomaly.py``: anomaly, about 10 minutes more on a quiet machine; see
``_common.py`` and ``README.md`` to add one). This file imports them once,
runs the chosen ones in order and prints the summary rows they return.
Timings are wall-clock (``time.perf_counter``); CPU times
(``time.process_time``) are recorded too, as they are less sensitive to
other processes sharing the cores. Nothing here asserts on timings.
"""

import argparse
import importlib
import importlib.machinery
import os
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the benchmark modules import _common as a top-level module

from _common import (  # noqa: E402
    DEFAULT_MNIST,
    DEFAULT_OUT,
    Context,
    machine_info,
    ordered_sections,
    print_table,
    write_json,
)


def discover():
    """Import every benchmark module of this folder once; return the sections in order."""
    elsewhere = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    for path in sorted(HERE.glob("*.py")):
        if path.stem == "run" or path.stem.startswith("_"):
            continue
        shadowed = path.stem in sys.stdlib_module_names or (
            importlib.machinery.PathFinder.find_spec(path.stem, elsewhere) is not None
        )
        if shadowed:  # this folder comes first on sys.path: it would hide that module
            raise RuntimeError(
                f"benchmarks/{path.name} has the name of an installed module; rename it "
                f"(e.g. bench_{path.name})."
            )
        importlib.import_module(path.stem)
    return ordered_sections()


def parse_args(argv, names):
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
        "--only", help=f"comma-separated sections to run, among: {', '.join(names)}"
    )
    parser.add_argument(
        "--mnist", metavar="FOLDER", default=str(DEFAULT_MNIST), help="MNIST IDX folder"
    )
    args = parser.parse_args(argv)
    if args.only:
        args.only = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            parser.error(f"unknown section(s) {unknown}; choose among {names}")
    else:
        args.only = list(names)
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be >= 1")
    if args.threads < 1:
        parser.error("--threads must be >= 1")
    return args


def main(argv=None):
    default_threads = torch.get_num_threads()
    sections = discover()
    args = parse_args(argv, [s.name for s in sections])
    torch.set_num_threads(args.threads)
    ctx = Context(
        quick=args.quick,
        rounds=args.rounds or (3 if args.quick else 5),
        epochs=args.epochs or (3 if args.quick else 10),
        threads=args.threads,
        default_threads=default_threads,
        mnist_folder=args.mnist,
    )
    meta = {
        **machine_info(args.threads, default_threads),
        "quick": args.quick,
        "rounds": ctx.rounds,
        "fit_epochs": ctx.epochs,
        "mnist": ctx.mnist is not None,
        "sections": args.only,
    }
    results = {"meta": meta}
    print(
        f"skae benchmarks  {meta['date']}  {meta['cpu']} ({meta['cpu_cores']} cores)  "
        f"torch {meta['torch']}  threads={args.threads} (default {default_threads})  "
        f"rounds={ctx.rounds}{'  --quick' if args.quick else ''}"
    )
    start = time.perf_counter()
    summary = []
    for entry in sections:
        if entry.name not in args.only:
            continue
        print(f"\n== {entry.name}: {entry.title}", flush=True)
        t0 = time.perf_counter()
        result = entry.run(ctx)
        result["section_s"] = time.perf_counter() - t0
        results[entry.name] = result
        summary.extend(result.get("summary", []))
    meta["total_s"] = time.perf_counter() - start
    meta["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None

    print("\n== summary")
    print_table(["check", "figure", "goal", "status"], summary)
    print(f"total {meta['total_s']:.0f} s")
    write_json(results, args.out)
    print(f"results written to {args.out}")
    return results


if __name__ == "__main__":
    main()
