"""Test configuration: one torch thread, so the suite is fast and stable on 2 cores."""

import pytest
import torch
from _helpers import BASE, ESTIMATORS


def pytest_configure(config):
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits():
    """sklearn's bundled digits, pixels scaled to [0, 1], stratified 80/20 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    X = data.data / 16.0
    return train_test_split(X, data.target, test_size=0.2, stratify=data.target, random_state=0)


@pytest.fixture(scope="module")
def fitted():
    """Each of ``ESTIMATORS`` fitted on ``BASE`` (2 epochs)."""
    return {name: make().fit(BASE) for name, make in ESTIMATORS.items()}
