"""AEImputer's behaviour: quality against the column mean, the imputer API, bad input."""

import warnings

import numpy as np
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skae import AEImputer

FAST = {"max_epochs": 30, "random_state": 0}


def correlated_table(n=600, seed=0):
    """Eight columns driven by two latent factors (one of them nonlinearly), plus noise."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    X = np.column_stack(
        [z[:, 0], z[:, 1], z @ [1.0, -0.5], z @ [0.3, 0.8], np.sin(2 * z[:, 0]), z[:, 0] * z[:, 1]]
        + [z @ rng.normal(size=2) for _ in range(2)]
    )
    return X + 0.05 * rng.normal(size=X.shape)


def with_missing(X, rate=0.2, seed=1):
    mask = np.random.default_rng(seed).random(X.shape) < rate
    return np.where(mask, np.nan, X), mask


def rmse(filled, X, mask):
    return float(np.sqrt(np.mean((filled - X)[mask] ** 2)))


def test_beats_the_column_mean_on_a_correlated_table():
    X = correlated_table()
    Xm, mask = with_missing(X)
    imputer = AEImputer(random_state=0).fit(Xm)
    ours = rmse(imputer.transform(Xm), X, mask)
    mean = rmse(SimpleImputer().fit_transform(Xm), X, mask)
    assert not imputer.fallback_
    assert ours < 0.6 * mean
    assert imputer.validation_score_ < imputer.mean_validation_score_


def test_observed_cells_are_kept_and_nan_in_transform_is_filled():
    X = correlated_table(300)
    Xm, mask = with_missing(X)
    imputer = AEImputer(**FAST).fit(Xm)
    new, new_mask = with_missing(correlated_table(50, seed=3), rate=0.3, seed=4)
    filled = imputer.transform(new)
    assert np.isfinite(filled).all()
    np.testing.assert_array_equal(filled[~new_mask], new[~new_mask])
    # A row with every value missing gets a finite imputation.
    assert np.isfinite(imputer.transform(np.full((1, X.shape[1]), np.nan))).all()


def test_complete_data_in_fit_still_imputes_new_missing_values():
    X = correlated_table(300)
    imputer = AEImputer(**FAST).fit(X)
    Xm, mask = with_missing(X[:50])
    assert np.isfinite(imputer.transform(Xm)).all()


def test_falls_back_to_the_mean_on_noise():
    X = np.random.default_rng(0).normal(size=(300, 4))
    Xm, _ = with_missing(X)
    with pytest.warns(UserWarning, match="did not beat the column means"):
        imputer = AEImputer(**FAST).fit(Xm)
    assert imputer.fallback_
    np.testing.assert_allclose(imputer.transform(Xm), SimpleImputer().fit_transform(Xm))


def test_add_indicator_and_feature_names():
    X = correlated_table(200)
    Xm, _ = with_missing(X)
    Xm[:, 2] = X[:, 2]  # a column with no missing value: no indicator column
    imputer = AEImputer(add_indicator=True, **FAST).fit(Xm)
    out = imputer.transform(Xm)
    n_missing_cols = X.shape[1] - 1
    assert out.shape == (len(X), X.shape[1] + n_missing_cols)
    np.testing.assert_array_equal(out[:, X.shape[1] :], np.isnan(np.delete(Xm, 2, axis=1)))
    names = imputer.get_feature_names_out()
    assert len(names) == out.shape[1]
    assert names[X.shape[1]] == "missingindicator_x0"


def test_empty_features_are_dropped_or_kept():
    X = correlated_table(200)
    Xm, _ = with_missing(X)
    Xm[:, 1] = np.nan
    dropped = AEImputer(**FAST).fit(Xm)
    assert dropped.transform(Xm).shape == (len(X), X.shape[1] - 1)
    assert "x1" not in dropped.get_feature_names_out()
    kept = AEImputer(keep_empty_features=True, **FAST).fit(Xm)
    out = kept.transform(Xm)
    assert out.shape == X.shape
    np.testing.assert_array_equal(out[:, 1], 0.0)


def test_pandas_output():
    pd = pytest.importorskip("pandas")
    X = correlated_table(200)
    Xm, _ = with_missing(X)
    frame = pd.DataFrame(Xm, columns=[f"c{i}" for i in range(X.shape[1])])
    imputer = AEImputer(add_indicator=True, **FAST).set_output(transform="pandas")
    out = imputer.fit_transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns[: X.shape[1]]) == list(frame.columns)
    assert out.columns[X.shape[1]] == "missingindicator_c0"


def test_pipeline_and_grid_search_before_a_classifier():
    X = correlated_table(300)
    y = (X[:, 0] + X[:, 4] > 0).astype(int)
    Xm, _ = with_missing(X)
    pipe = make_pipeline(AEImputer(**FAST), LogisticRegression())
    assert pipe.fit(Xm, y).score(Xm, y) > 0.8
    search = GridSearchCV(pipe, {"aeimputer__mask_rate": [0.2, 0.4]}, cv=2).fit(Xm, y)
    assert search.best_params_["aeimputer__mask_rate"] in (0.2, 0.4)


def test_other_missing_values_placeholder():
    X = np.abs(correlated_table(200)) + 1
    mask = np.random.default_rng(1).random(X.shape) < 0.2
    Xm = np.where(mask, -1.0, X)
    filled = AEImputer(missing_values=-1.0, **FAST).fit(Xm).transform(Xm)
    assert not (filled == -1.0).any()
    with pytest.raises(ValueError, match="NaN"):
        AEImputer(missing_values=-1.0, **FAST).fit(np.where(mask, np.nan, X))


@pytest.mark.parametrize(
    "X, error, match",
    [
        (np.array([[1.0, np.inf], [2.0, 3.0]]), ValueError, "infinity"),
        (np.array([["a", "b"], ["c", "d"]]), ValueError, "convert"),
        (np.zeros((0, 3)), ValueError, "0 sample"),
    ],
)
def test_bad_input(X, error, match):
    with pytest.raises(error, match=match):
        AEImputer(**FAST).fit(X)


def test_bad_parameters_and_feature_count():
    X = correlated_table(100)
    with pytest.raises(ValueError, match="mask_rate"):
        AEImputer(mask_rate=1.0).fit(X)
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        AEImputer(hidden_layer_sizes=(0,)).fit(X)
    imputer = AEImputer(**FAST).fit(X)
    with pytest.raises(ValueError, match="features"):
        imputer.transform(X[:, :3])


def test_deterministic_at_float_rounding():
    X = correlated_table(300)
    Xm, _ = with_missing(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = AEImputer(**FAST).fit(Xm).transform(Xm)
        b = AEImputer(**FAST).fit(Xm).transform(Xm)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_float32_is_preserved():
    X = correlated_table(200).astype(np.float32)
    Xm, _ = with_missing(X)
    assert AEImputer(**FAST).fit(Xm).transform(Xm).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "params",
    [{}, {"add_indicator": True}, {"keep_empty_features": True, "add_indicator": True}],
    ids=["plain", "indicator", "empty-kept"],
)
def test_onnx_export_handles_nan_in_the_graph(dtype, params):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("skl2onnx")
    pytest.importorskip("onnxscript")
    import skae

    X = correlated_table(200)
    Xm, _ = with_missing(X)
    Xm[:, 5] = np.nan  # an empty feature
    Xm = Xm.astype(dtype)
    imputer = AEImputer(**params, **FAST).fit(Xm)
    model = skae.to_onnx(imputer, Xm[:2])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: Xm})
    assert out.dtype == dtype
    np.testing.assert_allclose(out, imputer.transform(Xm), rtol=1e-4, atol=1e-4)


def test_onnx_export_of_a_pipeline_and_of_the_mean_fallback():
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("skl2onnx")
    pytest.importorskip("onnxscript")
    from sklearn.preprocessing import StandardScaler

    import skae

    X = np.random.default_rng(0).normal(size=(300, 4)).astype(np.float32)
    Xm, _ = with_missing(X)
    with pytest.warns(UserWarning, match="did not beat"):
        pipe = make_pipeline(AEImputer(**FAST), StandardScaler()).fit(Xm)
    assert pipe[0].fallback_
    model = skae.to_onnx(pipe, Xm[:2])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: Xm})
    np.testing.assert_allclose(out, pipe.transform(Xm), rtol=1e-4, atol=1e-4)


def test_imputed_values_stay_within_the_observed_range():
    X = correlated_table(300)
    Xm, _ = with_missing(X)
    imputer = AEImputer(**FAST).fit(Xm)
    row = np.full((1, X.shape[1]), np.nan)
    row[0, 0] = 1e3 * np.nanmax(np.abs(Xm[:, 0]))  # far outside the training rows
    filled = imputer.transform(row)[0, 1:]
    assert np.all(filled >= np.nanmin(Xm[:, 1:], axis=0) - 1e-9)
    assert np.all(filled <= np.nanmax(Xm[:, 1:], axis=0) + 1e-9)


def test_the_guard_counts_the_mean_not_the_typical_cell():
    import torch

    from skae._selection import beats_reference, lower_mean

    # A sparse column: the network is slightly worse on the many typical cells and far
    # better on the few rare ones, so its mean squared error is half the reference's.
    reference = torch.cat([torch.full((950,), 0.01), torch.full((50,), 10.0)])
    losses = torch.cat([torch.full((950,), 0.02), torch.full((50,), 4.0)])
    losses = losses * (1 + 0.01 * torch.linspace(-1, 1, 1000))
    assert lower_mean(losses, reference, 2.0)
    assert not beats_reference(losses, reference)
    assert not lower_mean(reference * 1.01, reference, 2.0)
    assert not lower_mean(losses[:1], reference[:1], 2.0)
