"""Safe persistence (skae.save / skae.load), pickling and loading on another device."""

import os
import pickle
import subprocess
import sys

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


# -- lossless: training continues after loading -------------------------------------


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_partial_fit_after_load_continues_like_the_original(name, digits, tmp_path):
    X = digits[0][:300]
    est = ESTIMATORS[name]().fit(X)
    skae.save(est, tmp_path / "m.safetensors")
    loaded = skae.load(tmp_path / "m.safetensors")
    for chunk in (X[:150], X[150:]):
        est.partial_fit(chunk)
        loaded.partial_fit(chunk)
    assert loaded.n_iter_ == est.n_iter_ == 4
    np.testing.assert_allclose(loaded.loss_curve_, est.loss_curve_, rtol=1e-6)
    original = est.net_.module_.state_dict()
    for key, value in loaded.net_.module_.state_dict().items():
        np.testing.assert_allclose(value.numpy(), original[key].numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(loaded.transform(X), est.transform(X), rtol=1e-6, atol=1e-6)


def test_save_stores_the_optimizer_state_as_tensors(tmp_path):
    from safetensors import safe_open

    # Trained without selection, so that the optimiser has moments (a default
    # AE on these 30 random rows keeps PCA's solution, untrained).
    est = ESTIMATORS["AE"](early_stopping=False).fit(BASE)
    path = tmp_path / "m.safetensors"
    skae.save(est, path)
    with safe_open(path, framework="pt") as f:
        names = list(f.keys())
    moments = [n for n in names if n.startswith("optimizer/state/")]
    assert {n.rsplit("/", 1)[1] for n in moments} == {"step", "exp_avg", "exp_avg_sq"}
    loaded = skae.load(path).net_.optimizer_.state_dict()
    original = est.net_.optimizer_.state_dict()
    assert loaded["param_groups"] == original["param_groups"]  # betas stay a tuple
    for i, state in original["state"].items():
        for key, value in state.items():
            assert torch.equal(loaded["state"][i][key], value), (i, key)


def test_load_reads_format_1_files_without_optimizer_state(fitted, tmp_path):
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from skae._persistence import _digest

    path = tmp_path / "m.safetensors"
    skae.save(fitted["AE"], path)
    with safe_open(path, framework="pt") as f:
        document = json.loads(f.metadata()["skae"])
    tensors = {k: v for k, v in load_file(path).items() if not k.startswith("optimizer/")}
    del document["optimizer"]
    document["format_version"] = 1
    document = json.dumps(document, sort_keys=True)
    save_file(tensors, path, metadata={"skae": document, "sha256": _digest(document, tensors)})
    loaded = skae.load(path)
    np.testing.assert_array_equal(loaded.transform(BASE), fitted["AE"].transform(BASE))
    assert loaded.net_.optimizer_.state_dict()["state"] == {}  # a fresh optimiser
    loaded.partial_fit(BASE)


# -- one copy of the weights ------------------------------------------------------


def _param_bytes(est):
    return sum(p.numel() * p.element_size() for p in est.net_.module_.parameters())


def _modules_of(net):
    return [name for name, value in vars(net).items() if isinstance(value, torch.nn.Module)]


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_fitted_model_holds_one_copy_of_its_weights(fitted, name):
    est = fitted[name]
    assert dict(est.net_.callbacks_)["guard"].best_state_ is None  # snapshot released
    restored = pickle.loads(pickle.dumps(est))
    # skorch pickles module_ apart from the other attributes: any other module
    # instance (e.g. in net_.module) would come back as a second copy.
    assert _modules_of(est.net_) == _modules_of(restored.net_) == ["module_"]
    # The pickle holds the weights, Adam's two moments, the history and a little more.
    history = len(pickle.dumps(est.net_.history))
    assert len(pickle.dumps(est)) <= 3 * _param_bytes(est) + history + 32 * 1024


def test_early_stopping_keeps_one_copy_of_the_weights():
    est = AE(n_components=2, max_epochs=4, early_stopping=True, random_state=0).fit(BASE)
    callbacks = dict(est.net_.callbacks_)
    assert callbacks["early_stopping"].best_model_weights_ is None
    assert callbacks["guard"].best_state_ is None


def test_pickle_is_at_most_3_3_times_the_parameters(digits):
    est = AE(n_components=8, max_epochs=10, random_state=0).fit(digits[0])
    ratio = len(pickle.dumps(est)) / _param_bytes(est)
    assert ratio <= 3.3, f"the pickle is {ratio:.2f}x the parameter bytes"


_LOAD_ON_CPU_SCRIPT = """
import pickle, sys, warnings
import numpy as np, torch
import skae
assert not torch.cuda.is_available()
folder = sys.argv[1]
X = np.load(folder + "/X.npy")
for name in ("ae", "vae"):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with open(folder + "/" + name + ".pkl", "rb") as f:
            est = pickle.load(f)
        loaded = skae.load(folder + "/" + name + ".safetensors")
    assert any("CUDA is not available" in str(w.message) for w in caught), name
    for model in (est, loaded):
        assert model.device == "cpu"
        assert next(model.net_.module_.parameters()).device.type == "cpu"
        np.testing.assert_allclose(
            model.transform(X), np.load(folder + "/" + name + ".npy"), rtol=1e-4, atol=1e-5
        )
        model.partial_fit(X)
        model.fit(X)
print("ok")
"""


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA to train the model")
def test_model_trained_on_cuda_loads_on_cpu_only_machine(tmp_path):
    # Trained and pickled on a GPU; unpickled in a process that sees no GPU.
    from skae import VAE

    np.save(tmp_path / "X.npy", BASE)
    models = {
        "ae": AE(n_components=2, max_epochs=3, early_stopping=True, device="cuda"),
        "vae": VAE(n_components=2, max_epochs=3, device="cuda"),
    }
    for name, est in models.items():
        est.set_params(random_state=0).fit(BASE)
        with open(tmp_path / f"{name}.pkl", "wb") as f:
            pickle.dump(est, f)
        skae.save(est, tmp_path / f"{name}.safetensors")
        np.save(tmp_path / f"{name}.npy", est.transform(BASE))
    out = subprocess.run(
        [sys.executable, "-c", _LOAD_ON_CPU_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "ok"
