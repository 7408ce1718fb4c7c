"""Behaviour of AE and SparseAE (and the shared base, through them)."""

import pickle
import re

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC
from sklearn.utils._param_validation import InvalidParameterError

from skae import AE, VAE, ConvAE, SparseAE

ALL = [AE, SparseAE, ConvAE, VAE]


def heldout_mse(est, X):
    return float(np.mean((est.inverse_transform(est.transform(X)) - X) ** 2))


@pytest.fixture(scope="module")
def ae8(digits):
    Xtr, _, _, _ = digits
    return AE(n_components=8, random_state=0).fit(Xtr)


def test_default_ae_beats_pca_on_digits(digits, ae8):
    # Default training, no tuning: lower held-out error than PCA (0.0247).
    Xtr, Xte, _, _ = digits
    pca = PCA(8).fit(Xtr)
    pca_mse = float(np.mean((pca.inverse_transform(pca.transform(Xte)) - Xte) ** 2))
    assert pca_mse == pytest.approx(0.0247, abs=5e-4)
    assert heldout_mse(ae8, Xte) < pca_mse


def test_fitted_attributes(digits, ae8):
    Xtr, Xte, _, _ = digits
    assert ae8.n_features_in_ == 64
    assert ae8.n_iter_ == len(ae8.net_.history) == len(ae8.loss_curve_)
    assert np.all(np.isfinite(ae8.loss_curve_))
    assert ae8.loss_curve_[-1] < ae8.loss_curve_[0]
    # early_stopping="auto": 10% of the rows held out, the best epoch kept
    assert ae8.validation_scores_.shape == (ae8.n_iter_,)
    assert 0 <= ae8.best_epoch_ <= ae8.n_iter_
    # the "auto" training parameters, resolved
    assert ae8.batch_size_ == 64 and ae8.max_epochs_ == 100
    assert ae8.lr_ == pytest.approx(2e-3 * np.sqrt(2))
    assert list(ae8.get_feature_names_out()) == [f"ae{i}" for i in range(8)]
    np.testing.assert_allclose(ae8.score(Xte), ae8.score_samples(Xte).mean())
    assert ae8.score_samples(Xte).shape == (len(Xte),)
    assert np.all(ae8.score_samples(Xte) <= 0)


def test_bottleneck_is_linear_and_alive(digits):
    # MLPRegressor-as-AE puts ReLU on the code and kills units; ours is linear.
    Xtr, _, _, _ = digits
    Z = AE(n_components=2, max_epochs=30, random_state=0).fit_transform(Xtr)
    assert np.all(Z.std(axis=0) > 1e-3)
    assert (Z < 0).any()


def test_early_stopping_records_validation(digits):
    Xtr, _, _, _ = digits
    ae = AE(n_components=4, early_stopping=True, n_iter_no_change=3, max_epochs=300, random_state=0)
    ae.fit(Xtr)
    assert ae.n_iter_ < 300  # stopped on the plateau
    assert ae.validation_scores_.shape == (ae.n_iter_,)
    # the score of the epoch kept (chosen by the capped loss among those that beat PCA)
    assert ae.best_validation_score_ == pytest.approx(
        ae.validation_scores_[ae.best_epoch_ - 1], rel=1e-6
    )
    assert "valid_loss" in ae.net_.history[-1] and "valid_capped" in ae.net_.history[-1]


@pytest.mark.parametrize("Est", ALL)
def test_feature_names_prefix(Est, digits):
    Xtr = digits[0][:100]
    kwargs = {"input_shape": (1, 8, 8)} if Est is ConvAE else {}
    est = Est(n_components=3, max_epochs=1, random_state=0, **kwargs).fit(Xtr)
    prefix = Est.__name__.lower()
    assert list(est.get_feature_names_out()) == [f"{prefix}{i}" for i in range(3)]


def test_pandas_in_and_out(digits):
    pd = pytest.importorskip("pandas")
    Xtr = digits[0][:200]
    df = pd.DataFrame(Xtr, columns=[f"px{i}" for i in range(64)])
    ae = AE(n_components=3, max_epochs=2, random_state=0).set_output(transform="pandas")
    out = ae.fit_transform(df)
    assert list(out.columns) == ["ae0", "ae1", "ae2"]
    assert list(ae.feature_names_in_) == list(df.columns)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(digits, ae8, dtype):
    Xte = digits[1].astype(dtype)
    assert ae8.transform(Xte).dtype == dtype
    assert ae8.inverse_transform(ae8.transform(Xte)).dtype == dtype
    assert ae8.score_samples(Xte).dtype == dtype


def test_float64_inference_is_batch_invariant(digits, ae8):
    # Different batch shapes may run different BLAS kernels (summation orders), so
    # results agree to float64 rounding, far below float32's resolution (~1e-7).
    Xte = digits[1]
    full = ae8.transform(Xte)
    parts = np.vstack([ae8.transform(Xte[i : i + 7]) for i in range(0, len(Xte), 7)])
    np.testing.assert_allclose(parts, full, rtol=1e-12, atol=1e-12)


def test_reproducible_and_global_rng_untouched(digits):
    Xtr = digits[0][:300]
    torch_state = torch.random.get_rng_state()
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002
    threads = torch.get_num_threads()
    a = AE(n_components=4, max_epochs=3, noise="gaussian", random_state=7).fit(Xtr)
    b = AE(n_components=4, max_epochs=3, noise="gaussian", random_state=7).fit(Xtr)
    np.testing.assert_array_equal(a.transform(Xtr), b.transform(Xtr))
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002
    assert torch.get_num_threads() == threads
    c = AE(n_components=4, max_epochs=3, noise="gaussian", random_state=8).fit(Xtr)
    assert not np.array_equal(a.transform(Xtr), c.transform(Xtr))


@pytest.mark.parametrize("Est", ALL)
def test_clone_and_pickle_round_trip(Est, digits):
    Xtr = digits[0][:200]
    kwargs = {"input_shape": (1, 8, 8)} if Est is ConvAE else {}
    est = Est(n_components=3, max_epochs=2, random_state=0, **kwargs).fit(Xtr)
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(est.transform(Xtr), restored.transform(Xtr))
    np.testing.assert_array_equal(est.score_samples(Xtr), restored.score_samples(Xtr))
    refit = clone(est).fit(Xtr)
    np.testing.assert_array_equal(est.transform(Xtr), refit.transform(Xtr))


def test_sparse_ae_in_svc_pipeline(digits):
    Xtr, Xte, ytr, yte = digits
    pipe = Pipeline([("ae", SparseAE(n_components=16, random_state=0)), ("clf", SVC())])
    assert pipe.fit(Xtr, ytr).score(Xte, yte) >= 0.9


def test_grid_search_in_pipeline(digits):
    Xtr, _, ytr, _ = digits
    pipe = Pipeline([("ae", SparseAE(max_epochs=5, random_state=0)), ("clf", SVC())])
    search = GridSearchCV(pipe, {"ae__n_components": [2, 16]}, cv=2).fit(Xtr, ytr)
    assert search.best_params_ == {"ae__n_components": 16}


def test_grid_search_default_scoring(digits):
    # score() is the negative reconstruction error: a wider bottleneck wins.
    Xtr = digits[0]
    search = GridSearchCV(AE(max_epochs=10, random_state=0), {"n_components": [2, 16]}, cv=2)
    search.fit(Xtr)
    assert search.best_params_ == {"n_components": 16}


def _activity(est, X):
    Z = est.transform(X)
    return float(np.mean(Z > 1e-3 * Z.max()))


@pytest.mark.parametrize("sparsity", ["l1", "kl"])
def test_codes_get_sparser_with_weight(digits, sparsity):
    Xtr = digits[0]
    common = dict(n_components=32, sparsity=sparsity, max_epochs=30, random_state=0)
    if sparsity == "l1":
        weak = SparseAE(sparsity_weight=0.0, **common).fit(Xtr)
        strong = SparseAE(sparsity_weight=1.0, **common).fit(Xtr)
        assert _activity(strong, Xtr) < 0.7 * _activity(weak, Xtr)
    else:
        weak = SparseAE(sparsity_weight=0.0, **common).fit(Xtr)
        strong = SparseAE(sparsity_weight=1.0, sparsity_target=0.05, **common).fit(Xtr)
        # the mean activation of the sigmoid units moves towards the target
        assert strong.transform(Xtr).mean() < 0.75 * weak.transform(Xtr).mean()
    assert "train_sparsity" in strong.net_.history[-1]
    assert "train_reconstruction" in strong.net_.history[-1]


def test_overcomplete_sparse_ae(digits):
    Xtr = digits[0]
    est = SparseAE(n_components=128, max_epochs=5, random_state=0).fit(Xtr)
    Z = est.transform(Xtr)
    assert Z.shape == (len(Xtr), 128)
    assert np.all(np.isfinite(Z))
    # Also more code units than features on tiny data
    tiny = SparseAE(n_components=10, max_epochs=2, random_state=0).fit(Xtr[:, :3])
    assert tiny.transform(Xtr[:, :3]).shape == (len(Xtr), 10)


@pytest.mark.parametrize("noise", ["gaussian", "mask"])
def test_denoising_helps_on_noisy_digits(digits, noise):
    Xtr, Xte, _, _ = digits
    rng = np.random.default_rng(0)
    if noise == "gaussian":
        Xnoisy = Xte + 0.3 * rng.standard_normal(Xte.shape)
    else:
        Xnoisy = Xte * (rng.random(Xte.shape) >= 0.3)
    common = dict(n_components=16, max_epochs=60, random_state=0)
    plain = AE(**common).fit(Xtr)
    denoise = AE(noise=noise, noise_level=0.3, **common).fit(Xtr)

    def err(est):
        return np.mean((est.inverse_transform(est.transform(Xnoisy)) - Xte) ** 2)

    assert err(denoise) < err(plain)


def test_bce_loss(digits):
    Xtr, Xte, _, _ = digits
    est = AE(n_components=8, loss="bce", output_activation="sigmoid", max_epochs=10)
    est.set_params(random_state=0).fit(Xtr)
    rec = est.inverse_transform(est.transform(Xte))
    assert rec.min() >= 0 and rec.max() <= 1
    with pytest.raises(ValueError, match=r"needs data in \[0, 1\]"):
        clone(est).fit(Xtr * 2)
    with pytest.raises(ValueError, match="output_activation='sigmoid'"):
        AE(loss="bce").fit(Xtr)


@pytest.mark.parametrize(
    "params",
    [
        {"n_components": 0},
        {"activation": "swish"},
        {"loss": "mae"},
        {"noise": "salt"},
        {"lr": -1.0},
        {"optimizer": "lbfgs"},
        {"validation_fraction": 1.5},
        {"device": "gpu"},
        {"hidden_layer_sizes": 0},
    ],
)
def test_invalid_parameters(digits, params):
    with pytest.raises(InvalidParameterError):
        AE(**params).fit(digits[0][:50])


@pytest.mark.parametrize(
    "params, match",
    [
        ({"hidden_layer_sizes": (32, 0)}, "hidden_layer_sizes must be positive integers"),
        ({"noise": "mask", "noise_level": 1.0}, "must be < 1"),
    ],
)
def test_invalid_parameter_values(digits, params, match):
    with pytest.raises(ValueError, match=match):
        AE(max_epochs=1, **params).fit(digits[0][:50])


def test_device_selection():
    from skae._utils import resolve_device

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda:0")
    with pytest.raises(InvalidParameterError):
        resolve_device("tpu")


def test_wrong_width_errors(digits, ae8):
    Xte = digits[1]
    msg = re.escape("X has 10 features, but AE is expecting 64 features")
    with pytest.raises(ValueError, match=msg):
        ae8.transform(Xte[:, :10])
    with pytest.raises(ValueError, match="is expecting 8 features"):
        ae8.inverse_transform(np.zeros((2, 5)))


def test_verbose(digits, capsys):
    Xtr = digits[0][:100]
    AE(max_epochs=2, verbose=0, random_state=0).fit(Xtr)
    assert capsys.readouterr().out == ""
    AE(max_epochs=2, verbose=1, random_state=0).fit(Xtr)
    out = capsys.readouterr().out
    assert "train_loss" in out and "dur" in out
    assert "\x1b[" not in out  # captured output is not a terminal: no colour codes


def _header(out):
    return out.splitlines()[0].split()


def test_verbose_columns_loss_first_then_terms(digits, capsys):
    Xtr = digits[0][:200]
    VAE(max_epochs=2, early_stopping=True, verbose=1, random_state=0).fit(Xtr)
    assert _header(capsys.readouterr().out) == [
        "epoch",
        "train_loss",
        "valid_loss",
        "train_reconstruction",
        "train_kl",
        "valid_reconstruction",
        "valid_kl",
        "dur",
    ]
    SparseAE(n_components=4, max_epochs=1, early_stopping=False, verbose=1, random_state=0).fit(Xtr)
    header = _header(capsys.readouterr().out)
    assert header == ["epoch", "train_loss", "train_reconstruction", "train_sparsity", "dur"]


class _Terminal:
    """A stand-in for a terminal's standard output."""

    def __init__(self):
        self.text = []

    def write(self, text):
        self.text.append(text)

    def flush(self):
        pass

    def isatty(self):
        return True


def test_verbose_colours_only_on_a_terminal(digits, monkeypatch):
    Xtr = digits[0][:100]
    terminal = _Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    monkeypatch.delenv("NO_COLOR", raising=False)
    AE(max_epochs=2, verbose=1, random_state=0).fit(Xtr)
    assert "\x1b[" in "".join(terminal.text)  # the best loss is coloured, as in skorch
    terminal.text.clear()
    monkeypatch.setenv("NO_COLOR", "1")
    AE(max_epochs=2, verbose=1, random_state=0).fit(Xtr)
    assert "\x1b[" not in "".join(terminal.text)


def test_divergence_in_first_epoch_raises(digits):
    est = AE(n_components=4, lr=1e4, optimizer="sgd", max_epochs=20, random_state=0)
    with pytest.raises(ValueError, match="diverged in the first epoch"):
        est.fit(digits[0] * 1e3)


def test_divergence_later_restores_last_finite_weights(digits, monkeypatch):
    import skae._losses as losses

    calls = {"n": 0}
    real = losses.mean_reconstruction_error
    batches_per_epoch = int(np.ceil(len(digits[0]) / 64))

    def poisoned(out, x, kind):
        calls["n"] += 1
        err = real(out, x, kind)
        return err * float("nan") if calls["n"] > 3 * batches_per_epoch else err

    monkeypatch.setattr(losses, "mean_reconstruction_error", poisoned)
    est = AE(n_components=4, max_epochs=10, random_state=0)
    with pytest.warns(RuntimeWarning, match="diverged at epoch 4.*restored the weights of epoch 3"):
        est.fit(digits[0])
    assert est.n_iter_ == 3
    assert np.all(np.isfinite(est.loss_curve_))
    assert np.all(np.isfinite(est.transform(digits[1])))
