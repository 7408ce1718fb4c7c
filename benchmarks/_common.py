"""Shared helpers of skae's benchmarks: the section registry, timing, tables, data.

A benchmark *section* is a function registered with :func:`section`. It
takes the run's :class:`Context`, prints its own tables, and returns a
JSON-serialisable ``dict`` of figures (written to ``results.json`` under
the section's name). It may add a ``"summary"`` entry: a list of rows
``[check, figure, goal, status]`` (already formatted strings; build them
with :func:`summary_row`), which ``run.py`` prints in the final summary
table, knowing nothing about the section's own format.

``run.py`` imports every module of this folder (except itself and the
modules whose name starts with ``_``) once, so a new section is one new
file::

    # benchmarks/mysection.py
    from _common import print_table, section, summary_row

    @section("mysection", "what it measures", order=80)
    def mysection(ctx):
        ...
        print_table(["case", "time"], rows)
        return {"results": ..., "summary": [summary_row("my check", 1.02, 1.05, "x")]}

Modules of this folder must do nothing but define things at import time.
"""

import datetime
import json
import os
import platform
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "results.json"
DEFAULT_MNIST = HERE.parent.parent / "shared" / "data" / "mnist"

#: Model used by the speed sections: AE(n_components=8) with a (256,) hidden layer.
SPEED_COMPONENTS = 8
SPEED_HIDDEN = (256,)
BATCH_SIZE = 64
LR = 1e-3


# -- the section registry -------------------------------------------------------


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    order: int
    run: object


#: name -> Section, filled by :func:`section` as the benchmark modules are imported.
SECTIONS = {}


def section(name, title, order=100):
    """Register ``fn(ctx) -> dict`` as the benchmark section ``name``.

    ``title`` is printed above the section's output; sections run by
    increasing ``order`` (the built-in ones use 10 to 70), then by name.
    """

    def register(fn):
        if name in SECTIONS:
            raise ValueError(f"benchmark section {name!r} is registered twice")
        SECTIONS[name] = Section(name, title, order, fn)
        return fn

    return register


def ordered_sections():
    """The registered sections, in running order."""
    return sorted(SECTIONS.values(), key=lambda s: (s.order, s.name))


@dataclass
class Context:
    """What every section may read: the run's options and the shared data."""

    quick: bool = False
    rounds: int = 5
    epochs: int = 10
    threads: int = 1
    default_threads: int = 1
    mnist_folder: str = str(DEFAULT_MNIST)
    extra: dict = field(default_factory=dict)

    @cached_property
    def mnist(self):
        """``(X, y)`` of the MNIST test set (pixels in [0, 1]), or ``None``."""
        return load_mnist_or_none(self.mnist_folder)

    @cached_property
    def speed_data(self):
        """``{name: X}``: narrow (10,000 x 20) and wide (8,000 x 784) float32 data."""
        wide, source = wide_data(self.mnist)
        return {"narrow": narrow_data(), f"wide ({source})": wide}


# -- summary rows -----------------------------------------------------------------


def status(value, goal):
    """``"met"`` when ``value <= goal``, else ``"NOT met"``."""
    return "met" if value <= goal else "NOT met"


def summary_row(check, value, goal, unit="", fmt="{:.3f}"):
    """A summary row ``[check, figure, goal, status]`` for "lower is better" goals.

    ``goal=None`` gives a row without a goal (an informative figure).
    """
    figure = fmt.format(value) + unit
    if goal is None:
        return [check, figure, "-", "-"]
    return [check, figure, f"<= {goal}{unit}", status(value, goal)]


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


def heavy_tailed_manifold(law, n_samples=6000, n_features=24, n_latent=2, random_state=0):
    """Rows on a low-dimensional nonlinear manifold whose scale is heavy-tailed.

    ``x = s * f(u) + noise``: ``u`` uniform on ``[-1, 1]**n_latent``, ``f`` a
    fixed random one-hidden-layer tanh network into ``n_features``
    dimensions, and a per-row scale ``s`` drawn from ``law``: ``"t"``
    (``|Student-t with 2 degrees of freedom| + 0.1``: infinite variance) or
    ``"lognormal"`` (``exp(N(0, 1))``). A few rows carry most of the
    variance, and a nonlinear code of ``n_latent + 1`` units describes every
    row: the case where extreme rows decide the mean error.
    """
    rng = np.random.RandomState(random_state)
    u = rng.uniform(-1, 1, size=(n_samples, n_latent))
    hidden = np.tanh(u @ (2.0 * rng.normal(size=(n_latent, 32))) + rng.normal(size=32))
    f = hidden @ (rng.normal(size=(32, n_features)) / np.sqrt(32))
    if law == "t":
        s = np.abs(rng.standard_t(df=2, size=(n_samples, 1))) + 0.1
    elif law == "lognormal":
        s = rng.lognormal(0.0, 1.0, size=(n_samples, 1))
    else:
        raise ValueError(f"law must be 't' or 'lognormal', got {law!r}")
    return s * f + 0.02 * rng.normal(size=(n_samples, n_features))


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


# -- timing ---------------------------------------------------------------------


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


# -- tables and output ----------------------------------------------------------------


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


def write_json(results, path):
    """Write ``results`` to ``path`` (numpy scalars as floats), creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=float))


def machine_info(threads, default_threads):
    """Date, machine, library versions and thread settings of this run."""
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
