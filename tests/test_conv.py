"""Behaviour of ConvAE: shapes, input_shape validation, denoising."""

import numpy as np
import pytest

from skae import ConvAE


@pytest.mark.parametrize(
    "input_shape, channels",
    [
        ((1, 8, 8), (8, 16)),
        ((1, 28, 28), (4, 8, 8)),
        ((3, 7, 9), (4, 4)),
        ((2, 5, 1), (4, 4, 4)),
        ((1, 33), (4, 8)),
        ((3, 10), (4,)),
    ],
)
def test_shapes_round_trip(input_shape, channels):
    n_features = int(np.prod(input_shape))
    X = np.random.default_rng(0).random((20, n_features))
    est = ConvAE(n_components=5, input_shape=input_shape, channels=channels, max_epochs=2)
    est.set_params(random_state=0).fit(X)
    assert est.transform(X).shape == (20, 5)
    assert est.inverse_transform(est.transform(X)).shape == X.shape


def test_default_reads_rows_as_signals():
    X = np.random.default_rng(0).random((30, 17))
    est = ConvAE(n_components=3, max_epochs=2, random_state=0).fit(X)
    assert est.net_.module_.input_shape == (1, 17)
    assert est.inverse_transform(est.transform(X)).shape == (30, 17)


@pytest.mark.parametrize(
    "input_shape, match",
    [
        ((1, 8, 9), r"input_shape=\(1, 8, 9\) holds 72 values per sample, but X has 64 features"),
        ((64,), "input_shape must be"),
        ((1, 0, 64), "input_shape must be"),
    ],
)
def test_input_shape_errors(digits, input_shape, match):
    with pytest.raises(ValueError, match=match):
        ConvAE(input_shape=input_shape, max_epochs=1).fit(digits[0][:20])


def test_channels_errors(digits):
    with pytest.raises(ValueError, match="channels must be"):
        ConvAE(input_shape=(1, 8, 8), channels=(), max_epochs=1).fit(digits[0][:20])


def test_denoising_beats_noisy_input(digits):
    Xtr, Xte, _, _ = digits
    rng = np.random.default_rng(0)
    Xnoisy = np.clip(Xte + 0.3 * rng.standard_normal(Xte.shape), 0, 1)
    est = ConvAE(
        n_components=32,
        input_shape=(1, 8, 8),
        noise="gaussian",
        noise_level=0.3,
        output_activation="sigmoid",
        max_epochs=40,
        random_state=0,
    ).fit(Xtr)
    denoised = est.inverse_transform(est.transform(Xnoisy))
    assert np.mean((denoised - Xte) ** 2) < 0.75 * np.mean((Xnoisy - Xte) ** 2)
