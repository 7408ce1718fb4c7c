"""Property-based fuzzing: every outcome is a finite result or a documented error."""

import warnings

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402

from skae import AE, VAE, ConvAE, SparseAE  # noqa: E402

ELEMENTS = st.one_of(
    st.floats(-10, 10, width=32),
    st.sampled_from([0.0, 1.0, np.nan, np.inf, -np.inf, 1e30, -1e30, 1e-30]),
)
DTYPES = st.sampled_from([np.float64, np.float32, np.float16, np.int64, np.bool_])


@st.composite
def data_and_estimator(draw):
    n_samples = draw(st.integers(0, 12))
    n_features = draw(st.integers(0, 6))
    X = draw(arrays(np.float64, (n_samples, n_features), elements=ELEMENTS))
    dtype = draw(DTYPES)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        X = X.astype(dtype)
    Est = draw(st.sampled_from([AE, SparseAE, ConvAE, VAE]))
    params = {
        "n_components": draw(st.integers(1, 5)),
        "hidden_layer_sizes": draw(st.sampled_from([(), (4,), (6, 3)])),
        "activation": draw(st.sampled_from(["relu", "tanh", "elu"])),
        "noise": draw(st.sampled_from([None, "gaussian", "mask"])),
        "noise_level": draw(st.sampled_from([0.0, 0.2, 0.5])),
        "batch_size": draw(st.integers(1, 16)),
        "early_stopping": draw(st.booleans()),
        "max_epochs": 2,
        "random_state": 0,
    }
    if draw(st.booleans()):
        params.update(loss="bce", output_activation="sigmoid")
    if Est is ConvAE:
        params["channels"] = draw(st.sampled_from([(2,), (2, 3)]))
    return X, Est(**params)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data_and_estimator())
def test_fit_transform_result_or_documented_error(case):
    X, est = case
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # divergence warnings
            est.fit(X)
    except (ValueError, TypeError) as exc:  # documented errors (InvalidParameterError too)
        assert str(exc), "errors must say what is wrong"
        assert "Traceback" not in str(exc)
        event(f"documented error: {type(exc).__name__}")
        return
    Z = est.transform(X)
    assert Z.shape == (X.shape[0], est.n_components)
    assert np.all(np.isfinite(Z))
    assert np.all(np.isfinite(est.inverse_transform(Z)))
    assert np.all(np.isfinite(est.score_samples(X)))
    event("finite result")
