"""ONNX export (skae.to_onnx): every estimator, dtype, method and activation, in pipelines.

Each exported model runs in onnxruntime and must match scikit-learn: within
1e-4 relative (float32), 1e-10 (float64), or 1e-5 for float64 graphs that
run some operators in float32 (convolutions, GELU: onnxruntime has no
float64 kernel for them). Relative to the output's largest value for entries
near zero. Models are tiny and trained for a few epochs: the export, not the
fit, is under test.
"""

import functools
import sys

import numpy as np
import pytest
import torch
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

import skae
from skae import AE, VAE, AEOutlierDetector, ConvAE, SparseAE

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")
pytest.importorskip("onnxscript")

TINY = {"hidden_layer_sizes": (8,), "max_epochs": 3, "random_state": 0}
DTYPES = [np.float32, np.float64]


@pytest.fixture(scope="module", autouse=True)
def reuse_torch_onnx_registry():
    """Speed: build torch's ONNX operator registry once, not once per export.

    Test-only (it patches a private torch function, if present); the
    exports are the same.
    """
    try:
        from torch.onnx._internal.exporter import _registration
    except ImportError:  # pragma: no cover - another torch version
        yield
        return
    original = _registration.ONNXRegistry.__dict__.get("from_torchlib")
    if not isinstance(original, classmethod):  # pragma: no cover - another torch version
        yield
        return
    cached = functools.lru_cache(maxsize=None)(original.__func__)
    _registration.ONNXRegistry.from_torchlib = classmethod(
        lambda cls, *args, **kwargs: cached(cls, *args, **kwargs)
    )
    yield
    _registration.ONNXRegistry.from_torchlib = original


@pytest.fixture(scope="module")
def data():
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = digits.data / 16
    return X[:300], X[300:360], digits.target[:300]


def session(model):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def run(model, X):
    sess = session(model)
    return sess.run(None, {sess.get_inputs()[0].name: X})


def assert_matches(actual, expected, dtype, float32_ops=False):
    """Close within rtol; entries near zero within rtol times the largest entry."""
    assert actual.dtype == dtype
    if dtype == np.float32:
        rtol = 1e-4
    else:
        rtol = 1e-5 if float32_ops else 1e-10
    expected = np.asarray(expected).reshape(actual.shape)
    scale = max(float(np.abs(expected).max()), 1e-12)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


ESTIMATORS = {
    "AE-gelu": lambda: AE(3, activation="gelu", **TINY),
    "AE-bce": lambda: AE(3, loss="bce", output_activation="sigmoid", **TINY),
    "SparseAE-selu": lambda: SparseAE(12, activation="selu", **TINY),
    "SparseAE-l1": lambda: SparseAE(12, sparsity="l1", **TINY),
    "ConvAE-leaky": lambda: ConvAE(
        3,
        input_shape=(1, 8, 8),
        channels=(2, 3),
        activation="leaky_relu",
        max_epochs=2,
        random_state=0,
    ),
    "VAE-elu": lambda: VAE(2, activation="elu", **TINY),
    "VAE-bce": lambda: VAE(2, loss="bce", output_activation="sigmoid", **TINY),
}

# Exports that compute some operators in float32 in a float64 graph.
FLOAT32_OPS = {"AE-gelu", "ConvAE-leaky"}


@pytest.fixture(scope="module")
def estimators(data):
    X = data[0]
    return {name: make().fit(X) for name, make in ESTIMATORS.items()}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("method", ["transform", "inverse_transform"])
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_estimator_matches_sklearn(estimators, data, name, method, dtype):
    est = estimators[name]
    X = data[1].astype(dtype)
    if method == "inverse_transform":
        X = est.transform(X)
    model = skae.to_onnx(est, X[:2], method=method)
    onnx.checker.check_model(model, full_check=True)
    assert [o.name for o in model.graph.output] == ["variable"]
    assert not model.graph.input[0].type.tensor_type.shape.dim[0].HasField("dim_value")
    sess = session(model)
    for rows in (X, X[:1]):  # any number of rows (traced with 3)
        (actual,) = sess.run(None, {"X": rows})
        expected = getattr(est, method)(rows)
        assert actual.shape == expected.shape
        assert_matches(actual, expected, dtype, float32_ops=name in FLOAT32_OPS)


@pytest.mark.parametrize(
    "name, dtype",
    [
        ("AE-gelu", np.float32),
        ("AE-bce", np.float64),
        ("ConvAE-leaky", np.float32),
        ("VAE-bce", np.float32),
    ],
)
def test_score_samples_matches_sklearn(estimators, data, name, dtype):
    est = estimators[name]
    X = data[1].astype(dtype)
    model = skae.to_onnx(est, X, method="score_samples")
    (actual,) = run(model, X)
    assert actual.shape == (len(X), 1)
    assert_matches(actual, est.score_samples(X), dtype, float32_ops=name in FLOAT32_OPS)


@pytest.mark.parametrize(
    "activation", ["relu", "leaky_relu", "elu", "selu", "gelu", "silu", "tanh", "sigmoid"]
)
def test_every_activation_in_float64(data, activation):
    # float64 is the hard case: onnxruntime lacks float64 kernels for several of them.
    X = data[0]
    ae = AE(2, activation=activation, hidden_layer_sizes=(8, 6), max_epochs=2, random_state=0)
    ae.fit(X)
    model = skae.to_onnx(ae, X[:2], method="score_samples")
    (actual,) = run(model, data[1])
    assert_matches(actual, ae.score_samples(data[1]), np.float64, activation == "gelu")


def test_binary_cross_entropy_is_exported_stably(estimators, data):
    # Logits far below -10: log(sigmoid(x)) would give -inf in onnxruntime float32.
    ae = AE(3, loss="bce", output_activation="sigmoid", **TINY).fit(data[0])
    with torch.no_grad():
        bias = ae.net_.module_.decoder[-1].bias
        bias[::2] -= 60.0
        bias[1::2] += 60.0
    X = data[1].astype(np.float32)
    model = skae.to_onnx(ae, X, method="score_samples")
    ops = {node.op_type for node in model.graph.node}
    assert "Sigmoid" not in ops  # no Log(Sigmoid(x)) left
    (actual,) = run(model, X)
    expected = ae.score_samples(X)
    assert np.all(np.isfinite(actual)) and np.all(expected < -10)
    assert_matches(actual, expected, np.float32)


@pytest.fixture(scope="module")
def outlier_data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(600, 3)) @ rng.normal(size=(3, 12))
    X += 0.05 * rng.normal(size=X.shape)
    X[:30] += 3 * rng.choice([-1, 1], size=(30, 12))
    return X


@pytest.mark.parametrize(
    "inner, dtype, score",
    [
        ("ae", np.float32, "combined"),
        ("ae", np.float64, "combined"),
        ("ae", np.float32, "reconstruction"),
        ("ae", np.float32, "density"),
        ("vae", np.float32, "combined"),
        # an isolation forest (skl2onnx's converter) beside the autoencoder's graph
        ("ae", np.float32, "ensemble"),
        ("ae", np.float64, "ensemble"),
        # The Gaussian ELBO adds log(2 pi): torch's exporter would round a Python float
        # constant to float32 even in a float64 graph (1e-8 off); skae's is a typed tensor.
        ("vae", np.float64, "estimator"),
    ],
)
def test_detector_matches_sklearn(outlier_data, inner, dtype, score):
    X = outlier_data.astype(dtype)
    estimator = AE(3, max_epochs=30) if inner == "ae" else VAE(3, max_epochs=30)
    # The outliers are off the data's subspace: the density score alone does not flag
    # them, so it gets a threshold that labels some rows as outliers.
    # The ensemble's "auto" threshold (on log p-values) flags little beyond the far tail.
    contamination = 0.05 if score in ("density", "ensemble") else "auto"
    detector = AEOutlierDetector(
        estimator, score_type=score, contamination=contamination, random_state=0
    ).fit(X)
    model = skae.to_onnx(detector, X[:2])
    onnx.checker.check_model(model, full_check=True)
    outputs = {o.name: o.type.tensor_type.elem_type for o in model.graph.output}
    float_type = onnx.TensorProto.FLOAT if dtype == np.float32 else onnx.TensorProto.DOUBLE
    assert outputs == {"label": onnx.TensorProto.INT64, "scores": float_type}
    label, scores = run(model, X)
    assert label.shape == scores.shape == (len(X), 1)
    assert label.dtype == np.int64
    assert set(np.unique(label)) <= {-1, 1}
    expected = detector.predict(X)
    assert np.mean(label[:, 0] == expected) >= 0.998
    assert np.mean(expected == -1) > 0.03  # the outliers are there to be labelled
    assert_matches(scores, detector.decision_function(X).astype(dtype), dtype)


def test_detector_with_extreme_bce_logits(data):
    detector = AEOutlierDetector(
        AE(3, loss="bce", output_activation="sigmoid", **TINY), random_state=0
    ).fit(data[0])
    with torch.no_grad():
        detector.estimator_.net_.module_.decoder[-1].bias[:8] -= 80.0
    X = np.vstack([data[1], np.ones((5, 64))]).astype(np.float32)
    label, scores = run(skae.to_onnx(detector, X), X)
    assert np.all(np.isfinite(scores))
    # Labels agree except on rows within float32 rounding of the threshold (the two
    # runtimes may round differently there).
    margin = np.abs(detector.decision_function(X))
    differ = label[:, 0] != detector.predict(X)
    assert not np.any(differ & (margin > 1e-4 * (1.0 + np.abs(scores[:, 0]))))
    assert_matches(scores, detector.decision_function(X).astype(np.float32), np.float32)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_pipeline_with_classifier(data, dtype):
    X, X_test, y = data
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("ae", AE(8, **TINY)),
            ("clf", LogisticRegression(max_iter=300)),
        ]
    ).fit(X.astype(dtype), y)
    X_test = X_test.astype(dtype)
    model = skae.to_onnx(pipe, X_test[:1])
    assert [o.name for o in model.graph.output] == ["label", "probabilities"]
    label, probabilities = run(model, X_test)
    # Labels agree except where the two top classes tie at float32 rounding.
    top2 = np.sort(pipe.predict_proba(X_test), axis=1)[:, -2:]
    differ = np.asarray(label).ravel() != pipe.predict(X_test)
    assert not np.any(differ & (top2[:, 1] - top2[:, 0] > 1e-4))
    assert_matches(probabilities, pipe.predict_proba(X_test), dtype)


def test_column_transformer(data):
    X, X_test, _ = data
    columns = ColumnTransformer(
        [
            ("ae", VAE(2, **TINY), list(range(32))),
            ("conv", ConvAE(2, input_shape=(1, 32), channels=(2,), **TINY), list(range(32, 64))),
        ]
    ).fit(X)
    X_test = X_test.astype(np.float32)
    (actual,) = run(skae.to_onnx(columns, X_test[:1]), X_test)
    assert_matches(actual, columns.transform(X_test), np.float32)


def test_feature_union_and_sklearn_api(data):
    X, X_test, _ = data
    union = Pipeline(
        [
            ("scale", MinMaxScaler()),
            ("union", FeatureUnion([("ae", SparseAE(4, **TINY)), ("pca", PCA(3))])),
        ]
    ).fit(X)
    skae.register_onnx_converters()
    model = skl2onnx.to_onnx(union, X_test[:1])  # skl2onnx's own entry point
    (actual,) = run(model, X_test)
    assert actual.shape == (len(X_test), 7)
    assert_matches(actual, union.transform(X_test), np.float64)


@pytest.mark.parametrize("name", ["AE", "SparseAE", "ConvAE", "VAE"])
def test_accelerated_estimators(data, name):
    pytest.importorskip("accelerate")
    from skae import distributed

    cls = getattr(distributed, f"Accelerated{name}")
    kwargs = {"input_shape": (1, 8, 8), "channels": (2,)} if name == "ConvAE" else {}
    est = cls(3, device="cpu", **TINY, **kwargs).fit(data[0])
    X = data[1].astype(np.float32)
    (actual,) = run(skae.to_onnx(est, X[:1]), X)
    assert_matches(actual, est.transform(X), np.float32)


def test_invalid_arguments(estimators, data):
    ae = estimators["AE-bce"]
    X = data[1]
    with pytest.raises(ValueError, match="method must be one of"):
        skae.to_onnx(ae, X, method="predict")
    pipe = Pipeline([("ae", ae)])
    with pytest.raises(ValueError, match="exported whole"):
        skae.to_onnx(pipe, X, method="inverse_transform")
    with pytest.raises(TypeError, match="float32 or float64"):
        skae.to_onnx(ae, X.astype(np.int64))
    with pytest.raises(ValueError, match="opset 18"):
        skae.to_onnx(ae, X, target_opset=15)
    with pytest.raises(ValueError, match="takes 3 input columns"):
        skae.to_onnx(ae, X, method="inverse_transform")  # codes expected, not rows


def test_detector_needs_a_skae_estimator(data):
    from sklearn.decomposition import KernelPCA

    detector = AEOutlierDetector(KernelPCA(2, fit_inverse_transform=True)).fit(data[0])
    with pytest.raises(TypeError, match="not a skae estimator"):
        skae.to_onnx(detector, data[1])


def test_missing_dependencies_give_the_install_hint(monkeypatch, estimators, data):
    monkeypatch.setitem(sys.modules, "skl2onnx", None)
    with pytest.raises(ImportError, match=r'pip install "skae\[onnx\]"'):
        skae.to_onnx(estimators["AE-bce"], data[1])
    with pytest.raises(ImportError, match="missing: skl2onnx"):
        skae.register_onnx_converters()


def test_core_package_does_not_import_onnx():
    # Only inside functions: no module of skae imports them at import time.
    import ast
    from pathlib import Path

    optional = {"onnx", "onnxruntime", "skl2onnx", "onnxscript"}
    for path in Path(skae.__file__).parent.glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not {name.split(".")[0] for name in names} & optional, path.name


def test_a_batch_size_frozen_by_the_code_is_reported():
    from skae._onnx import export_module

    class ReadsLen(torch.nn.Module):
        def forward(self, x):
            return x.sum(dim=1) + torch.zeros(len(x))  # len(): a Python int

    with pytest.raises(RuntimeError, match="fixed batch size"):
        export_module(ReadsLen(), 4, torch.float32)
