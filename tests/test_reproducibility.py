"""Reproducibility, isolation from global state, and concurrent fits."""

import hashlib
import os
import subprocess
import sys

import joblib
import numpy as np
import pytest
import torch
from _helpers import BASE, ESTIMATORS
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skae
from skae import AE, VAE

_FIT_SCRIPT = """
import hashlib, sys, numpy as np, torch
torch.set_num_threads(1)
from skae import {name}
X = np.random.default_rng(0).random((60, 5))
est = {name}(n_components=2, max_epochs=3, noise="gaussian", random_state=42).fit(X)
state = est.net_.module_.state_dict().values()
print(hashlib.sha256(b"".join(t.numpy().tobytes() for t in state)).hexdigest())
"""


def _weights_digest(est):
    state = est.net_.module_.state_dict().values()
    return hashlib.sha256(b"".join(t.numpy().tobytes() for t in state)).hexdigest()


@pytest.mark.parametrize("name", ["AE", "VAE"])
def test_bit_identical_across_processes(name):
    # The trained weights (torch tensors, the same shapes in both processes) are
    # compared bit for bit; inference on numpy input is not part of the claim.
    X = np.random.default_rng(0).random((60, 5))
    est = getattr(skae, name)(n_components=2, max_epochs=3, noise="gaussian", random_state=42)
    here = _weights_digest(est.fit(X))
    out = subprocess.run(
        [sys.executable, "-c", _FIT_SCRIPT.format(name=name)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert out.stdout.strip() == here


def test_fit_leaves_global_state_alone():
    torch_state = torch.random.get_rng_state()
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002
    threads = torch.get_num_threads()
    for make in ESTIMATORS.values():
        make(noise="mask").fit(BASE)
    VAE(max_epochs=1).fit(BASE).sample(3)  # random_state=None: fresh OS entropy
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002
    assert torch.get_num_threads() == threads


# -- concurrency ----------------------------------------------------------------


def test_grid_search_n_jobs_2_matches_n_jobs_1(digits):
    Xtr, _, ytr, _ = digits
    pipe = make_pipeline(StandardScaler(), AE(max_epochs=3, random_state=0))
    grid = {"ae__n_components": [2, 8]}
    serial = GridSearchCV(pipe, grid, cv=2, n_jobs=1).fit(Xtr[:400])
    parallel = GridSearchCV(pipe, grid, cv=2, n_jobs=2).fit(Xtr[:400])
    assert serial.best_params_ == parallel.best_params_
    np.testing.assert_allclose(
        serial.cv_results_["mean_test_score"], parallel.cv_results_["mean_test_score"], rtol=1e-5
    )


def test_threaded_fits_stay_reproducible():
    # Fits in threads of one process (joblib's threading backend, Dask workers with
    # several threads) must not reseed each other's RNG.
    with joblib.parallel_backend("threading", n_jobs=4):
        results = joblib.Parallel()(
            joblib.delayed(
                lambda: (
                    AE(n_components=2, max_epochs=3, noise="gaussian", random_state=0)
                    .fit(BASE)
                    .transform(BASE)
                )
            )()
            for _ in range(4)
        )
    for Z in results[1:]:
        np.testing.assert_array_equal(Z, results[0])
