"""Device, random-state and input helpers shared by skae's estimators.

Nothing here knows about the estimators: device strings are resolved and
checked (and a CUDA device falls back to the CPU when a model is loaded on a
machine without CUDA), seeds are drawn from ``random_state`` without
touching global RNG state, :class:`seeded` runs code inside a forked,
seeded torch RNG, and :func:`interpolation_inputs` checks the input of
``interpolate``. The JSON conversions of :func:`skae.save`'s document are
in :mod:`skae._state`.
"""

import re
import secrets
import threading
import warnings
from numbers import Integral

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


def interpolation_inputs(x_start, x_end, n_steps):
    """Check the input of ``interpolate``: ``(start, end, weights)``.

    ``start`` and ``end`` are the rows as arrays of shape (1, n_features) (a
    pandas Series becomes a one-row DataFrame, its index giving the feature
    names; a 2-D array or sparse matrix must have one row); ``weights`` are
    ``n_steps`` evenly spaced numbers from 0 to 1 (exactly), as a float64
    column. Bad input raises ``ValueError``.
    """
    if not isinstance(n_steps, Integral) or isinstance(n_steps, bool) or n_steps < 2:
        raise ValueError(f"n_steps must be an integer >= 2, got {n_steps!r}.")
    rows = []
    for x, name in [(x_start, "x_start"), (x_end, "x_end")]:
        if getattr(x, "ndim", None) == 1 and hasattr(x, "to_frame"):
            x = x.to_frame().T
        elif not hasattr(x, "shape") or len(x.shape) == 1:
            x = np.asarray(x)
            x = x.reshape(1, -1) if x.ndim == 1 else x
        if len(x.shape) != 2 or x.shape[0] != 1:
            raise ValueError(
                f"{name} must be one row, of shape (n_features,) or (1, n_features); "
                f"got an array of shape {tuple(x.shape)}."
            )
        rows.append(x)
    return rows[0], rows[1], np.linspace(0.0, 1.0, int(n_steps))[:, None]
