"""Readers for local data files. Nothing here downloads anything."""

import gzip
import os
from pathlib import Path

import numpy as np

__all__ = ["load_mnist"]

_FILES = {
    "images": ("t10k-images-idx3-ubyte", "train-images-idx3-ubyte"),
    "labels": ("t10k-labels-idx1-ubyte", "train-labels-idx1-ubyte"),
}


def _read_idx(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file.")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    values = np.frombuffer(data, dtype=np.uint8, offset=header)
    if values.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: expected {shape}, got {values.size} values.")
    return values.reshape(shape)


def _find(folder, stems):
    for stem in stems:
        for name in (stem + ".gz", stem):
            path = Path(folder) / name
            if path.exists():
                return path
    raise FileNotFoundError(
        f"No MNIST file {' or '.join(s + '[.gz]' for s in stems)} in {os.fspath(folder)!r}."
    )


def load_mnist(folder):
    """Load MNIST from its original IDX files in a local folder.

    Reads ``t10k-images-idx3-ubyte[.gz]`` and ``t10k-labels-idx1-ubyte[.gz]``
    (the test set), or the ``train-*`` files when the test files are absent.

    Parameters
    ----------
    folder : str or path-like
        Folder holding the IDX files (gzip-compressed or not).

    Returns
    -------
    X : ndarray of shape (n_samples, 784), dtype float32
        Pixels scaled to [0, 1], one flattened 28x28 image per row.
    y : ndarray of shape (n_samples,), dtype int64
        Digit labels.

    Examples
    --------
    >>> from skae.datasets import load_mnist
    >>> load_mnist("no/such/folder")
    Traceback (most recent call last):
    ...
    FileNotFoundError: No MNIST file ...
    """
    images = _read_idx(_find(folder, _FILES["images"]))
    labels = _read_idx(_find(folder, _FILES["labels"]))
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels in {folder!r}.")
    X = images.reshape(len(images), -1).astype(np.float32) / 255.0
    return X, labels.astype(np.int64)
