"""Device and random-state helpers shared by skae's estimators.

Nothing here knows about the estimators: device strings are resolved and
checked (and a CUDA device falls back to the CPU when a model is loaded on a
machine without CUDA), seeds are drawn from ``random_state`` without
touching global RNG state, and :class:`seeded` runs code inside a forked,
seeded torch RNG. The JSON conversions of :func:`skae.save`'s document are
in :mod:`skae._state`.
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
