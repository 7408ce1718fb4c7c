"""Inference in torch: running a module on arrays, and an estimator's functions as modules.

- :func:`run_inference` applies ``fn(module, batch)`` to an array in batches;
  :class:`InferenceCache` holds a module in each dtype used at inference (a
  float64 copy of the float32 trained module is built once, not per call),
  and :func:`current_cache` keeps an estimator's cache current with its
  trained module.
- :class:`Encoder`, :class:`Decoder` and :class:`Scorer` wrap a fitted
  estimator's own inference functions (``module.encode``, ``module.decode``
  and the estimator's per-batch ``_score_samples(module, batch)``) as
  ``nn.Module``s that map one batch tensor to one tensor. The outlier
  detector scores with them, and :func:`skae.to_onnx` exports them, so any
  change to an architecture or a score reaches ONNX by itself.

Nothing here imports scikit-learn estimators or ONNX.
"""

import copy

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

#: Bytes of input plus output (as float64) per forward pass at inference: bounds
#: memory for large ``X`` while most calls run as a single batch.
INFERENCE_BYTES = 64 * 2**20


class InferenceCache:
    """A torch module in each inference dtype: the module itself, or a copy built once.

    float64 inference needs a float64 copy of the (float32) trained module;
    building it costs far more than a small forward pass, so it is built on
    first use and kept. Copies are dropped when the module's weights change
    in place (``partial_fit``, ``load_state_dict``): the version counters of
    its parameters and buffers are compared on each call, which costs about
    a microsecond. Estimators hold one in ``_inference_cache``: it is created
    after training, replaced with the module, and never pickled.

    Parameters
    ----------
    module : torch.nn.Module
        The trained module (put in eval mode when used).
    source : torch.nn.Module or None
        The trained module that ``module`` computes with, when ``module``
        wraps it (e.g. a detector's scoring module); None for ``module``
        itself. :func:`current_cache` rebuilds a cache whose source is not
        the estimator's module.
    """

    def __init__(self, module, source=None):
        self.module = module
        self.source = module if source is None else source
        self._tensors = [*module.parameters(), *module.buffers()]
        self._versions = self._current_versions()
        first = self._tensors[0] if self._tensors else None
        self.dtype = first.dtype if first is not None else torch.float32
        self.device = first.device if first is not None else torch.device("cpu")
        self._copies = {}

    def _current_versions(self):
        return [t._version for t in self._tensors]

    def get(self, dtype):
        """The module in ``dtype``, in eval mode, on its own device."""
        module = self.module
        if module.training:
            module.eval()
        if dtype == self.dtype:
            return module
        versions = self._current_versions()
        if versions != self._versions:
            self._copies = {}
            self._versions = versions
        copied = self._copies.get(dtype)
        if copied is None:
            copied = copy.deepcopy(module).to(dtype).eval()
            self._copies[dtype] = copied
        return copied

    def run(self, fn, X, n_out):
        """:func:`run_inference` of ``fn`` on ``X`` with the module in ``X``'s dtype."""
        module = self.get(torch.float64 if X.dtype == np.float64 else torch.float32)
        return run_inference(module, fn, X, n_out, self.device)


def current_cache(owner, source, build=None):
    """``owner``'s :class:`InferenceCache` for the trained module ``source``.

    The cache lives in ``owner._inference_cache``. It is (re)built when it
    is missing or None (e.g. after unpickling: it is never pickled, or is
    rebuilt on first use) or when it serves another module (the estimator
    was refitted, or loaded). ``build()`` returns the module to cache, one
    that computes with ``source`` (e.g. a scoring module wrapping it);
    without it, ``source`` itself is cached.
    """
    cache = owner.__dict__.get("_inference_cache")
    if cache is None or getattr(cache, "source", None) is not source:
        module = source if build is None else build()
        cache = owner._inference_cache = InferenceCache(module, source=source)
    return cache


def run_inference(module, fn, X, n_out, device=None):
    """Apply ``fn(module, batch)`` to ``X`` (dense or sparse) in batches, in inference mode.

    ``module`` must already be in ``X``'s dtype; ``device`` is the module's
    (found from its parameters when None). On the CPU a C-contiguous,
    writeable ``X`` is handed to torch without a copy, and when ``X`` is a
    single batch the result is returned without a copy.
    """
    if device is None:
        param = next(iter(module.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
    dtype = torch.float64 if X.dtype == np.float64 else torch.float32
    cpu = device.type == "cpu"
    zero_copy = cpu and not sp.issparse(X) and X.flags.writeable
    step = max(1024, INFERENCE_BYTES // (8 * (X.shape[1] + n_out)))
    out = None if X.shape[0] <= step else np.empty((X.shape[0], n_out), dtype=X.dtype)
    with torch.inference_mode():
        for start in range(0, X.shape[0], step):
            rows = X[start : start + step]
            if sp.issparse(rows):
                rows = rows.toarray()
            if zero_copy and rows.flags.c_contiguous:
                batch = torch.from_numpy(rows)  # same dtype as the module: no copy
            else:
                batch = torch.tensor(rows, dtype=dtype, device=device)
            result = fn(module, batch).reshape(len(batch), -1)
            if out is None:  # a single batch: hand over the result without a copy
                return result.numpy() if cpu else result.cpu().numpy()
            out[start : start + step] = result.cpu()
    return out


def forward(module, batch):
    """``module(batch)``."""
    return module(batch)


def encode(module, batch):
    """``module.encode(batch)``: what ``transform`` computes."""
    return module.encode(batch)


def decode(module, batch):
    """``module.decode(batch)``: what ``inverse_transform`` computes."""
    return module.decode(batch)


class _Wrapper(nn.Module):
    """``fn(module, x)`` as a module; deep copies share ``fn`` and copy ``module``."""

    def __init__(self, module, fn):
        super().__init__()
        self.module = module
        self.fn = fn  # a function or a bound method of a (fitted) estimator

    def forward(self, x):
        return self.fn(self.module, x)

    def __deepcopy__(self, memo):
        # A bound method would deep-copy its whole estimator (net, history,
        # optimiser); ``fn`` only reads the estimator's parameters, so share it.
        return type(self)(copy.deepcopy(self.module, memo), self.fn)


class Encoder(_Wrapper):
    """``transform``'s function as a module: ``x -> module.encode(x)``."""

    def __init__(self, module):
        super().__init__(module, encode)

    def __deepcopy__(self, memo):
        return type(self)(copy.deepcopy(self.module, memo))


class Decoder(_Wrapper):
    """``inverse_transform``'s function as a module: ``z -> module.decode(z)``."""

    def __init__(self, module):
        super().__init__(module, decode)

    def __deepcopy__(self, memo):
        return type(self)(copy.deepcopy(self.module, memo))


class Scorer(_Wrapper):
    """``score_samples``' function as a module: ``x -> score_fn(module, x)``, shape (n,).

    Parameters
    ----------
    module : torch.nn.Module
        The fitted estimator's module.
    score_fn : callable
        The estimator's per-batch score, ``estimator._score_samples``.
    """

    def forward(self, x):
        return self.fn(self.module, x).reshape(-1)


def scorer(estimator):
    """A fitted skae estimator's ``score_samples`` as a :class:`Scorer` on its module."""
    return Scorer(estimator.net_.module_, estimator._score_samples)
