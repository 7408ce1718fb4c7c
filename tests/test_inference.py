"""Inference internals: the cached float64 module and the detector's scoring module."""

import copy
import io
import pickle

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.decomposition import KernelPCA

import skae
import skae._inference
from skae import AE, VAE, AEOutlierDetector


@pytest.fixture
def X(digits):
    return digits[0][:300]


def expected_codes(estimator, X):
    """What transform must return in float64: a fresh float64 copy of the module."""
    module = copy.deepcopy(estimator.net_.module_).double().eval()
    with torch.no_grad():
        return module.encode(torch.from_numpy(X)).numpy()


def count_deepcopies(monkeypatch):
    """Deep copies of modules (torch deep-copies each buffer's storage with copy.deepcopy too)."""
    calls = []
    original = skae._inference.copy.deepcopy

    def counting(x, *args, **kwargs):
        if isinstance(x, torch.nn.Module):
            calls.append(type(x).__name__)
        return original(x, *args, **kwargs)

    monkeypatch.setattr(skae._inference.copy, "deepcopy", counting)
    return calls


def test_float64_module_is_copied_once(X, monkeypatch):
    ae = AE(n_components=3, hidden_layer_sizes=(16,), max_epochs=2, random_state=0).fit(X)
    calls = count_deepcopies(monkeypatch)
    first = ae.transform(X[:10])
    for _ in range(3):
        ae.transform(X[:1])
        ae.inverse_transform(first)
        ae.score_samples(X[:10])
    ae.transform(X.astype(np.float32))  # float32 runs the trained module itself
    assert len(calls) == 1
    assert_allclose(ae.transform(X), expected_codes(ae, X), rtol=1e-12, atol=1e-12)


def test_cache_is_dropped_by_refit_partial_fit_and_new_weights(X):
    ae = AE(n_components=3, hidden_layer_sizes=(16,), max_epochs=2, random_state=0)
    ae.fit(X)
    before = ae.transform(X)
    ae.partial_fit(X)
    after = ae.transform(X)
    assert not np.allclose(before, after)
    assert_allclose(after, expected_codes(ae, X), rtol=1e-12, atol=1e-12)
    ae.set_params(random_state=1).fit(X)
    assert_allclose(ae.transform(X), expected_codes(ae, X), rtol=1e-12, atol=1e-12)
    # Weights set in place, outside skae: the version counters move.
    other = AE(n_components=3, hidden_layer_sizes=(16,), max_epochs=2, random_state=5).fit(X)
    ae.net_.module_.load_state_dict(other.net_.module_.state_dict())
    assert_allclose(ae.transform(X), other.transform(X), rtol=1e-12, atol=1e-12)


def test_cache_is_not_pickled_nor_saved(X, tmp_path):
    ae = AE(n_components=3, hidden_layer_sizes=(16,), max_epochs=2, random_state=0).fit(X)
    size = len(pickle.dumps(ae))
    codes = ae.transform(X)  # builds the float64 copy
    assert torch.float64 in ae._inference_cache._copies
    assert "_inference_cache" not in ae.__getstate__()
    assert len(pickle.dumps(ae)) == size
    restored = pickle.loads(pickle.dumps(ae))
    assert "_inference_cache" not in vars(restored)
    np.testing.assert_array_equal(restored.transform(X), codes)
    np.testing.assert_array_equal(copy.deepcopy(ae).transform(X), codes)
    pytest.importorskip("safetensors")
    skae.save(ae, tmp_path / "ae.safetensors")
    loaded = skae.load(tmp_path / "ae.safetensors")
    np.testing.assert_array_equal(loaded.transform(X), codes)


def test_inference_leaves_the_estimator_dict_unchanged(X):
    ae = AE(n_components=3, hidden_layer_sizes=(16,), max_epochs=2, random_state=0).fit(X)
    before = ae.__dict__.copy()
    ae.transform(X)
    ae.transform(X.astype(np.float32))
    assert ae.__dict__ == before


@pytest.mark.parametrize("score", ["combined", "estimator"])
@pytest.mark.parametrize("inner", ["ae", "vae"])
def test_detector_scoring_module(X, inner, score):
    estimator = (
        AE(n_components=3, hidden_layer_sizes=(16,), max_epochs=3)
        if inner == "ae"
        else VAE(n_components=2, hidden_layer_sizes=(16,), max_epochs=3)
    )
    detector = AEOutlierDetector(estimator, score_type=score, random_state=0).fit(X)
    module = detector._scoring_module()
    assert isinstance(module, torch.nn.Module)
    with torch.inference_mode():
        scores32 = module(torch.tensor(X, dtype=torch.float32)).numpy()
        module64 = copy.deepcopy(module).double()
        scores64 = module64(torch.from_numpy(X)).numpy()
    assert scores32.shape == (len(X),)
    np.testing.assert_array_equal(detector.score_samples(X.astype(np.float32)), scores32)
    assert_allclose(detector.score_samples(X), scores64, rtol=1e-12, atol=1e-12)
    if score == "estimator":
        assert_allclose(detector.score_samples(X), detector.estimator_.score_samples(X), rtol=1e-12)
        # A deep copy copies the module, not the estimator it scores with.
        assert module64.fn.__self__ is detector.estimator_
    else:  # the distance score holds the inner estimator's module
        assert module.module is detector.estimator_.net_.module_
    buffer = io.BytesIO()
    pickle.dump(detector, buffer)
    restored = pickle.loads(buffer.getvalue())
    np.testing.assert_array_equal(restored.score_samples(X), detector.score_samples(X))


@pytest.mark.parametrize("score", ["combined", "estimator"])
def test_detector_cache_follows_a_refitted_inner_estimator(X, score):
    inner = AE(n_components=3, init="random", max_epochs=2)
    detector = AEOutlierDetector(inner, score_type=score, random_state=0).fit(X)
    before = detector.score_samples(X)
    detector.estimator_.set_params(random_state=1).fit(X)  # a new module, outside the detector
    after = detector.score_samples(X)
    assert not np.allclose(before, after)
    assert detector._inference_cache.module.module is detector.estimator_.net_.module_
    if score == "estimator":
        assert_allclose(after, detector.estimator_.score_samples(X), rtol=1e-12, atol=1e-12)


def test_detector_scoring_module_needs_a_skae_estimator(X):
    inner = KernelPCA(n_components=3, fit_inverse_transform=True)
    detector = AEOutlierDetector(inner).fit(X)
    with pytest.raises(TypeError, match="KernelPCA is not a skae estimator"):
        detector._scoring_module()
    assert detector.score_samples(X).shape == (len(X),)
