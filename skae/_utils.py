"""Device, random-state and JSON helpers shared by skae's estimators.

Nothing here knows about the estimators: device strings are resolved and
checked, seeds are drawn from ``random_state`` without touching global RNG
state, :class:`seeded` runs code inside a forked, seeded torch RNG, and
parameter and attribute values are converted to and from JSON (for
:func:`skae.save`).
"""

import re
import secrets
import threading
import warnings

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import InvalidParameterError

#: How to install the optional dependencies of :mod:`skae.distributed`.
DISTRIBUTED_HINT = 'Install the optional dependencies with: pip install "skae[distributed]".'

_DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


def resolve_device(device):
    """Map the ``device`` parameter to a torch device string."""
    if not _DEVICE_PATTERN.match(device):
        raise InvalidParameterError(
            f"The 'device' parameter must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'. "
            f"Got {device!r} instead."
        )
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available.")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device='mps' was requested but MPS is not available.")
    return device


def device_for_loading(device, origin, stacklevel=3):
    """``"cpu"`` (with a warning) for a CUDA ``device`` on a machine without CUDA.

    A model fitted on a GPU must load, run and refit on a CPU-only machine.
    ``stacklevel`` is the warning's, counted from this function.
    """
    if isinstance(device, str) and device.startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(
            f"{origin} with device={device!r} but CUDA is not available; it is loaded with "
            "device='cpu' so that it can be used and refitted.",
            UserWarning,
            stacklevel=stacklevel,
        )
        return "cpu"
    return device


def make_seed(random_state):
    """A 63-bit seed from ``random_state``, never touching global RNG state.

    ``None`` draws fresh entropy from the OS (not from numpy's global
    generator), so fitting leaves ``np.random``'s state unchanged.
    """
    if random_state is None:
        return secrets.randbits(63)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


#: Serialises skae's use of torch's process-wide RNG: fits running in threads of
#: one process (joblib's threading backend, multi-threaded Dask workers) would
#: otherwise reseed each other's generator and lose reproducibility.
_RNG_LOCK = threading.RLock()


class seeded:
    """Context manager: fork torch's RNG on ``device`` and seed it.

    Holds a process-wide lock while inside, so concurrent fits in threads
    stay reproducible (they run one after the other).
    """

    def __init__(self, seed, device):
        self.seed = seed
        self.device = torch.device(device)

    def __enter__(self):
        _RNG_LOCK.acquire()
        try:
            cuda = self.device.type == "cuda"
            index = self.device.index
            if cuda and index is None:  # "cuda": the current device (a DDP process's own GPU)
                index = torch.cuda.current_device()
            self._fork = torch.random.fork_rng(devices=[index] if cuda else [])
            self._fork.__enter__()
            torch.default_generator.manual_seed(self.seed)
            if cuda:
                with torch.cuda.device(index):
                    torch.cuda.manual_seed(self.seed)
        except BaseException:
            _RNG_LOCK.release()
            raise
        return self

    def __exit__(self, *exc):
        try:
            return self._fork.__exit__(*exc)
        finally:
            _RNG_LOCK.release()


def to_json(value):
    """``value`` as JSON data: arrays and tuples as lists, numpy scalars as Python's.

    A ``RandomState`` or ``Generator`` (not portable, and used up by the fit)
    becomes ``None``.
    """
    if isinstance(value, (np.random.RandomState, np.random.Generator)):
        return None
    if isinstance(value, (np.ndarray, tuple, list)):
        return [to_json(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def param_from_json(value):
    """Undo :func:`to_json` for a parameter: lists become tuples (skae's sequences)."""
    return tuple(value) if isinstance(value, list) else value


def attribute_from_json(value):
    """Undo :func:`to_json` for a fitted attribute: lists become arrays.

    Lists of strings (feature names) become object arrays, as scikit-learn
    stores them.
    """
    if not isinstance(value, list):
        return value
    if any(isinstance(v, str) for v in value):
        return np.asarray(value, dtype=object)
    return np.asarray(value)


def cpu_copy(tensor):
    """A detached, contiguous copy of ``tensor`` on the CPU."""
    return tensor.detach().cpu().contiguous().clone()


def optimizer_to_json(optimizer, prefix):
    """An optimiser's state as ``(document, tensors)``: JSON data and named CPU tensors.

    Tensors of the per-parameter state (e.g. Adam's moments and step) are
    named ``f"{prefix}{param_index}/{name}"``; the parameter groups and any
    other state go into the JSON document.
    """
    saved = optimizer.state_dict()
    state, tensors = {}, {}
    for index, values in saved["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}{index}/{key}"] = cpu_copy(value)
            else:
                state.setdefault(str(index), {})[key] = to_json(value)
    return {"param_groups": to_json(saved["param_groups"]), "state": state}, tensors


def optimizer_from_json(optimizer, document, tensors, prefix):
    """Load a state from :func:`optimizer_to_json` into a fresh ``optimizer``.

    JSON turned tuples (e.g. Adam's ``betas``) into lists; the fresh
    optimiser's own groups tell which values are tuples. ``tensors`` may hold
    other tensors: only names starting with ``prefix`` are read.
    """
    fresh = optimizer.state_dict()["param_groups"]
    groups = [
        {k: tuple(v) if isinstance(f.get(k), tuple) else v for k, v in group.items()}
        for group, f in zip(document["param_groups"], fresh)
    ]
    state = {int(i): dict(values) for i, values in document["state"].items()}
    for name, tensor in tensors.items():
        if name.startswith(prefix):
            index, key = name[len(prefix) :].split("/", 1)
            state.setdefault(int(index), {})[key] = tensor
    optimizer.load_state_dict({"state": state, "param_groups": groups})
