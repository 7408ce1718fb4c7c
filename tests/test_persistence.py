"""Safe persistence (skae.save / skae.load), pickling and loading on another device."""

import pickle

import joblib
import numpy as np
import pytest
import torch
from _helpers import BASE, ESTIMATORS

import skae
from skae import AE


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
