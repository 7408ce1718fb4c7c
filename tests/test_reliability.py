"""Hostile input, interrupts, safe persistence, reproducibility and concurrency."""

import hashlib
import os
import pickle
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

import skae
from skae import AE, VAE, ConvAE, SparseAE

ESTIMATORS = {
    "AE": lambda **kw: AE(n_components=2, max_epochs=2, random_state=0, **kw),
    "SparseAE": lambda **kw: SparseAE(n_components=6, max_epochs=2, random_state=0, **kw),
    "ConvAE": lambda **kw: ConvAE(n_components=2, max_epochs=2, random_state=0, **kw),
    "VAE": lambda **kw: VAE(n_components=2, max_epochs=2, random_state=0, **kw),
}
rng = np.random.default_rng(0)
BASE = rng.random((30, 4))


def _with(value, where=(0, 0), dtype=float):
    X = BASE.astype(dtype)
    X[where] = value
    return X


def _pandas_mixed():
    pd = pytest.importorskip("pandas")
    return pd.DataFrame({"a": np.arange(30), "b": BASE[:, 1], "c": BASE[:, 2] > 0.5})


def _pandas_strings():
    pd = pytest.importorskip("pandas")
    return pd.DataFrame({"a": BASE[:, 0], "b": ["x"] * 30})


def _memmap(tmp_path):
    X = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=(30, 4))
    X[:] = BASE
    X.flush()
    return np.load(tmp_path / "x.npy", mmap_mode="r")


def _readonly():
    X = BASE.copy()
    X.flags.writeable = False
    return X


# (case id, X factory, expected): expected is None (must work, finite output) or
# (exception type, regex the message must match).
FIT_CASES = [
    ("nan", lambda t: _with(np.nan), (ValueError, "NaN")),
    ("+inf", lambda t: _with(np.inf), (ValueError, "infinity")),
    ("-inf", lambda t: _with(-np.inf), (ValueError, "infinity")),
    ("0 rows", lambda t: np.empty((0, 4)), (ValueError, "0 sample")),
    ("0 columns", lambda t: np.empty((30, 0)), (ValueError, "0 feature")),
    ("1-D", lambda t: BASE[:, 0], (ValueError, "2D array")),
    ("3-D", lambda t: BASE.reshape(30, 2, 2), (ValueError, "dim 3")),
    ("strings", lambda t: np.array([["a", "b"]] * 30), (ValueError, "convert|string")),
    ("complex", lambda t: BASE + 1j, (ValueError, "[Cc]omplex")),
    ("pandas strings", lambda t: _pandas_strings(), (ValueError, "convert|string")),
    ("huge 1e300", lambda t: BASE * 1e300, (ValueError, "too large for float32")),
    ("1 sample", lambda t: BASE[:1], None),
    ("1 feature", lambda t: BASE[:, :1], None),
    ("bool", lambda t: BASE > 0.5, None),
    ("int", lambda t: (BASE * 10).astype(np.int64), None),
    ("float16", lambda t: BASE.astype(np.float16), None),
    ("object of floats", lambda t: BASE.astype(object), None),
    ("list of lists", lambda t: BASE.tolist(), None),
    ("fortran", lambda t: np.asfortranarray(BASE), None),
    ("read-only", lambda t: _readonly(), None),
    ("memmap", _memmap, None),
    ("csr", lambda t: sp.csr_matrix(BASE * (BASE > 0.5)), None),
    ("csc", lambda t: sp.csc_matrix(BASE * (BASE > 0.5)), None),
    ("pandas mixed dtypes", lambda t: _pandas_mixed(), None),
    ("large 1e6", lambda t: BASE * 1e6, None),
]


def _check_outcome(est, X, expected):
    if expected is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a diverging run may warn
            est.fit(X)
        Z = est.transform(X)
        assert np.all(np.isfinite(Z))
        R = est.inverse_transform(Z)
        assert np.all(np.isfinite(R))
        assert np.all(np.isfinite(est.score_samples(X)))
    else:
        exc, match = expected
        with pytest.raises(exc, match=match):
            est.fit(X)


@pytest.mark.parametrize("name", list(ESTIMATORS))
@pytest.mark.parametrize("case, make_X, expected", FIT_CASES, ids=[c[0] for c in FIT_CASES])
def test_bad_input_matrix_fit(name, case, make_X, expected, tmp_path):
    _check_outcome(ESTIMATORS[name](), make_X(tmp_path), expected)


@pytest.fixture(scope="module")
def fitted():
    return {name: make().fit(BASE) for name, make in ESTIMATORS.items()}


AFTER_FIT_CASES = [
    ("transform wrong n_features", "transform", lambda: BASE[:, :3], "3 features"),
    ("transform nan", "transform", lambda: _with(np.nan), "NaN"),
    ("score_samples inf", "score_samples", lambda: _with(np.inf), "infinity"),
    ("inverse wrong width", "inverse_transform", lambda: np.zeros((2, 5)), "expecting"),
    ("inverse nan", "inverse_transform", lambda: np.full((2, 2), np.nan), "NaN"),
    ("transform 1-D", "transform", lambda: BASE[0], "2D array"),
    ("transform complex", "transform", lambda: BASE + 1j, "[Cc]omplex"),
]


@pytest.mark.parametrize("name", list(ESTIMATORS))
@pytest.mark.parametrize(
    "case, method, make_X, match", AFTER_FIT_CASES, ids=[c[0] for c in AFTER_FIT_CASES]
)
def test_bad_input_matrix_after_fit(fitted, name, case, method, make_X, match):
    est = fitted[name]
    X = make_X()
    if method == "inverse_transform" and name == "SparseAE" and X.shape[1] == 2:
        X = np.full((2, 6), np.nan)
    with pytest.raises(ValueError, match=match):
        getattr(est, method)(X)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: ConvAE(input_shape=(1, 3)), "holds 3 values per sample, but X has 4"),
        (lambda: ConvAE(input_shape=(2, 2, 2)), "holds 8 values per sample, but X has 4"),
        (lambda: ConvAE(input_shape=(4, -1)), "input_shape must be"),
        (lambda: ConvAE(channels=(8, 0)), "channels must be"),
        (lambda: VAE(loss="bce"), "output_activation='sigmoid'"),
        (lambda: SparseAE(loss="bce", output_activation="sigmoid"), None),
    ],
)
def test_parameter_data_mismatches(make, match):
    est = make().set_params(max_epochs=1)
    if match is None:
        est.fit(BASE)  # data in [0, 1]: fine
        assert np.all(np.isfinite(est.transform(BASE)))
    else:
        with pytest.raises(ValueError, match=match):
            est.fit(BASE)


@pytest.mark.parametrize("name", list(ESTIMATORS))
@pytest.mark.parametrize(
    "params",
    [{"n_components": 0}, {"batch_size": 0}, {"max_epochs": "forever"}, {"tol": -1}],
)
def test_invalid_parameters_raise_invalid_parameter_error(name, params):
    with pytest.raises(InvalidParameterError):
        ESTIMATORS[name]().set_params(**params).fit(BASE)


def test_sparse_matches_dense():
    X = BASE * (BASE > 0.5)
    dense = AE(n_components=2, max_epochs=3, random_state=0).fit(X)
    sparse = AE(n_components=2, max_epochs=3, random_state=0).fit(sp.csr_matrix(X))
    # same data, same seed: chunked sparse batches equal the dense ones here
    np.testing.assert_allclose(dense.transform(X), sparse.transform(sp.csr_matrix(X)), rtol=1e-5)


# -- interrupts --------------------------------------------------------------


def _interrupt_after(monkeypatch, n_batches):
    import skae._losses as losses

    calls = {"n": 0}
    real = losses.mean_reconstruction_error

    def interrupted(out, x, kind):
        calls["n"] += 1
        if calls["n"] > n_batches:
            raise KeyboardInterrupt
        return real(out, x, kind)

    monkeypatch.setattr(losses, "mean_reconstruction_error", interrupted)


def test_interrupt_keeps_last_completed_epoch(digits, monkeypatch):
    Xtr = digits[0]
    reference = AE(n_components=4, max_epochs=2, random_state=0).fit(Xtr)
    per_epoch = int(np.ceil(len(Xtr) / 64))
    _interrupt_after(monkeypatch, 2 * per_epoch + 3)  # Ctrl-C in the middle of epoch 3
    est = AE(n_components=4, max_epochs=10, random_state=0)
    with pytest.warns(RuntimeWarning, match="interrupted.*last completed epoch \\(2\\)"):
        est.fit(Xtr)
    assert est.n_iter_ == 2 and len(est.loss_curve_) == 2
    np.testing.assert_array_equal(est.transform(Xtr), reference.transform(Xtr))


def test_interrupt_in_first_epoch_propagates(digits, monkeypatch):
    _interrupt_after(monkeypatch, 2)
    est = AE(n_components=4, max_epochs=10, random_state=0)
    with pytest.raises(KeyboardInterrupt):
        est.fit(digits[0])
    assert not hasattr(est, "net_")


# -- persistence -------------------------------------------------------------


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_save_load_bit_identical(fitted, name, tmp_path):
    est = fitted[name]
    path = tmp_path / "model.safetensors"
    skae.save(est, path)
    loaded = skae.load(path)
    assert type(loaded) is type(est)
    assert loaded.get_params() == est.get_params()
    np.testing.assert_array_equal(loaded.transform(BASE), est.transform(BASE))
    np.testing.assert_array_equal(loaded.score_samples(BASE), est.score_samples(BASE))
    np.testing.assert_array_equal(loaded.loss_curve_, est.loss_curve_)
    assert loaded.n_iter_ == est.n_iter_
    loaded.fit(BASE)  # refitting a loaded model works


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_pickle_and_joblib_bit_identical(fitted, name, tmp_path):
    est = fitted[name]
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.transform(BASE), est.transform(BASE))
    joblib.dump(est, tmp_path / "m.joblib")
    restored = joblib.load(tmp_path / "m.joblib")
    np.testing.assert_array_equal(restored.score_samples(BASE), est.score_samples(BASE))


@pytest.fixture
def saved(fitted, tmp_path):
    path = tmp_path / "model.safetensors"
    skae.save(fitted["AE"], path)
    return path


def test_load_refuses_truncated_file(saved):
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable skae file"):
        skae.load(saved)


def test_load_refuses_tampered_weights(saved):
    data = bytearray(saved.read_bytes())
    data[-3] ^= 0xFF  # flip bits inside the last tensor
    saved.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="integrity check"):
        skae.load(saved)


def test_load_refuses_tampered_metadata(saved):
    data = saved.read_bytes()
    assert b'\\"n_components\\": 2' in data
    saved.write_bytes(data.replace(b'\\"n_components\\": 2', b'\\"n_components\\": 3'))
    with pytest.raises(ValueError, match="integrity check"):
        skae.load(saved)


def test_load_refuses_mismatched_weights(fitted, tmp_path):
    # A consistent file whose weights do not fit its parameters.
    from safetensors.torch import load_file, save_file

    from skae._persistence import _digest

    path = tmp_path / "m.safetensors"
    skae.save(fitted["AE"], path)
    with open(path, "rb") as f:
        from safetensors import safe_open

        with safe_open(f.name, framework="pt") as g:
            meta = g.metadata()
    tensors = load_file(path)
    name = next(iter(tensors))
    tensors[name] = torch.zeros(3, 3)
    meta["sha256"] = _digest(meta["skae"], tensors)
    save_file(tensors, path, metadata=meta)
    with pytest.raises(ValueError, match="do not match its parameters"):
        skae.load(path)


def test_load_refuses_foreign_safetensors(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="not one written by skae.save"):
        skae.load(tmp_path / "other.safetensors")


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_pickle_payload_cannot_execute(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.safetensors"
    if writer == "pickle":
        path.write_bytes(pickle.dumps(_Payload(str(marker))))
    else:
        torch.save({"x": _Payload(str(marker))}, path)
        marker.unlink(missing_ok=True)  # torch.save itself ran nothing, but be strict
    with pytest.raises(ValueError, match="not a readable skae file"):
        skae.load(path)
    assert not marker.exists()


def test_save_rejects_unfitted_and_foreign(tmp_path):
    from sklearn.decomposition import PCA
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        skae.save(AE(), tmp_path / "m.safetensors")
    with pytest.raises(TypeError, match="PCA"):
        skae.save(PCA(), tmp_path / "m.safetensors")


@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates a CPU-only machine")
def test_cuda_model_loads_on_cpu_machine(fitted, tmp_path):
    # A model saved/pickled with device="cuda" (as when fitted on a GPU) must load,
    # run and refit on a CPU-only machine.
    est = pickle.loads(pickle.dumps(fitted["AE"]))
    est.device = "cuda"
    with pytest.warns(UserWarning, match="CUDA is not available"):
        restored = pickle.loads(pickle.dumps(est))
    assert restored.device == "cpu"
    restored.fit(BASE)
    path = tmp_path / "m.safetensors"
    skae.save(est, path)
    with pytest.warns(UserWarning, match="CUDA is not available"):
        loaded = skae.load(path)
    assert loaded.device == "cpu"
    np.testing.assert_array_equal(loaded.transform(BASE), fitted["AE"].transform(BASE))
    loaded.fit(BASE)


# -- reproducibility and isolation --------------------------------------------

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
