"""Hostile input and parameters: every outcome is a finite result or a clear error."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from _helpers import BASE, ESTIMATORS
from sklearn.utils._param_validation import InvalidParameterError

from skae import AE, VAE, ConvAE, SparseAE


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


@pytest.mark.parametrize("Est", [AE, ConvAE, VAE])
def test_code_as_wide_as_the_input_warns(Est):
    X = BASE[:, :3]
    with pytest.warns(UserWarning, match=r"n_components=3 >= n_features=3.*SparseAE"):
        Est(n_components=3, max_epochs=1, random_state=0).fit(X)
    with pytest.warns(UserWarning, match=r"n_components=100 >= n_features=3"):
        Est(n_components=100, max_epochs=1, random_state=0).partial_fit(X)


@pytest.mark.parametrize(
    "make",
    [
        lambda: AE(n_components=2, max_epochs=1),  # narrower than the input
        lambda: SparseAE(n_components=10, max_epochs=1),  # overcomplete by design
    ],
)
def test_no_code_size_warning_when_it_makes_sense(make):
    with warnings.catch_warnings():
        # Only the code-size warning is an error here (one epoch may leave a unit dead).
        warnings.filterwarnings("error", message="n_components=", category=UserWarning)
        est = make().set_params(random_state=0).fit(BASE[:, :3])
        est.partial_fit(BASE[:, :3])


def test_code_size_warning_only_on_the_first_partial_fit():
    est = AE(n_components=3, random_state=0)
    with pytest.warns(UserWarning, match="n_components=3"):
        est.partial_fit(BASE[:, :3])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        est.partial_fit(BASE[:, :3])
