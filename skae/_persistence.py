"""Safe persistence: weights as safetensors, everything else as JSON.

:func:`save` writes one ``.safetensors`` file: the module's weights and the
optimiser's state (e.g. Adam's moments) as tensors, and in the file's
metadata a JSON document (the estimator's class and parameters, its fitted
attributes and training history, the optimiser's parameter groups, the
skae, torch and scikit-learn versions) plus a SHA-256 digest over the JSON
and every tensor. What :meth:`partial_fit` needs to continue is all there,
so a loaded model trains on exactly as the original would. :func:`load`
never unpickles and never imports anything named in the file: the class is
looked up in a fixed table of skae estimators. A truncated, tampered or
mismatched file is refused with a ``ValueError``.
"""

import hashlib
import json
import os

import sklearn
import torch

from skae._ae import AE
from skae._conv import ConvAE
from skae._sparse import SparseAE
from skae._vae import VAE
from skae._version import __version__

FORMAT = "skae"
#: 2: the optimiser's state is saved too (format 1 files still load).
FORMAT_VERSION = 2

#: The estimators a file may name: ``load`` looks its class up here, never imports.
ESTIMATORS = {cls.__name__: cls for cls in (AE, SparseAE, ConvAE, VAE)}


def _import_safetensors():
    try:
        import safetensors
        import safetensors.torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "skae.save and skae.load need the 'safetensors' package: "
            "pip install safetensors (or pip install 'skae[persist]')."
        ) from exc
    return safetensors


def _digest(document, tensors):
    h = hashlib.sha256(document.encode("utf-8"))
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save(estimator, path):
    """Save a fitted skae estimator to a safetensors file, without pickle.

    The file holds everything the estimator needs to predict and to train
    on: its parameters, fitted attributes and history, the module's weights
    and the optimiser's state, so :meth:`~skae.AE.partial_fit` continues
    after :func:`load` as it would on ``estimator``.

    Parameters
    ----------
    estimator : AE, SparseAE, ConvAE or VAE
        A fitted estimator.
    path : str or path-like
        Destination file (conventionally ``*.safetensors``).

    See Also
    --------
    load : Load an estimator saved with this function.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_digits
    >>> import skae
    >>> X = load_digits().data / 16
    >>> ae = skae.AE(n_components=4, max_epochs=2, random_state=0).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "ae.safetensors")
    >>> skae.save(ae, path)
    >>> bool((skae.load(path).transform(X) == ae.transform(X)).all())
    True
    """
    safetensors = _import_safetensors()
    # A class may name the skae estimator it is saved as (skae.distributed's
    # Accelerated* estimators are saved, and load, as the plain estimator).
    cls = getattr(type(estimator), "_saved_as", type(estimator))
    name = cls.__name__
    if ESTIMATORS.get(name) is not cls or not isinstance(estimator, cls):
        raise TypeError(f"skae.save saves skae's AE, SparseAE, ConvAE and VAE; got {name}.")
    state, tensors = estimator._get_fitted_state()
    document = json.dumps(
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "class": name,
            **state,
            "versions": {
                "skae": __version__,
                "torch": torch.__version__,
                "sklearn": sklearn.__version__,
            },
        },
        sort_keys=True,
    )
    metadata = {"skae": document, "sha256": _digest(document, tensors)}
    safetensors.torch.save_file(tensors, os.fspath(path), metadata=metadata)


def load(path):
    """Load an estimator saved with :func:`save`. Never unpickles.

    The file's digest is checked first; then the estimator is rebuilt from
    its class (one of skae's estimators, looked up by name) and parameters,
    and the weights are loaded into a freshly built module, on the CPU when
    CUDA is not available. A model saved with ``device="cuda"`` loads on a
    CPU-only machine with ``device="cpu"`` (and a warning), so it can be
    used and refitted there.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.

    Returns
    -------
    estimator : AE, SparseAE, ConvAE or VAE
        The fitted estimator.

    Raises
    ------
    ValueError
        If the file is not a skae file, is truncated or was modified, or
        its weights do not match its parameters.

    See Also
    --------
    save : Save a fitted estimator.

    Examples
    --------
    >>> import skae
    >>> skae.load("missing.safetensors")
    Traceback (most recent call last):
    ...
    FileNotFoundError: No such file: 'missing.safetensors'
    """
    safetensors = _import_safetensors()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such file: {path!r}")
    try:
        with safetensors.safe_open(path, framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types
        raise ValueError(
            f"{path!r} is not a readable skae file (safetensors format): {exc}"
        ) from None
    if "skae" not in metadata or "sha256" not in metadata:
        raise ValueError(f"{path!r} is a safetensors file but not one written by skae.save.")
    document = metadata["skae"]
    if _digest(document, tensors) != metadata["sha256"]:
        raise ValueError(
            f"{path!r} failed its integrity check (SHA-256 mismatch): it was modified or "
            "corrupted after it was saved."
        )
    try:
        doc = json.loads(document)
        if doc["format"] != FORMAT or doc["format_version"] > FORMAT_VERSION:
            raise ValueError(f"unsupported format {doc['format']!r} v{doc['format_version']}")
        cls = ESTIMATORS[doc["class"]]
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path!r} holds an invalid skae document: {exc!r}") from None
    try:
        return cls._from_fitted_state(doc, tensors)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path!r} holds an invalid skae document: {exc!r}") from None
    except ValueError as exc:
        raise ValueError(f"In {path!r}, {exc}") from None
