"""Batch inference on dask arrays (exported by :mod:`skae.distributed`).

dask is an optional dependency (``pip install "skae[distributed]"``),
imported only when :func:`dask_transform` runs.
"""

import numpy as np

from skae._utils import DISTRIBUTED_HINT

_DASK_METHODS = ("transform", "inverse_transform", "score_samples")


def dask_transform(estimator, X, *, method="transform"):
    """Apply a fitted estimator to a dask array, block of rows by block of rows.

    A lazy wrapper around :func:`dask.array.map_blocks`: each block of rows is
    passed to ``getattr(estimator, method)``, wherever the dask scheduler
    runs it (threads, processes, or the workers of a ``dask.distributed``
    cluster, to which the fitted estimator is shipped by pickling). Rows are
    independent, so the result equals ``getattr(estimator, method)(X)`` on
    the whole array, without ever holding it in memory.

    Parameters
    ----------
    estimator : fitted skae estimator
        Any fitted estimator with ``method`` (e.g. a fitted :class:`skae.AE`
        or a :class:`~sklearn.pipeline.Pipeline` ending in one, for
        ``transform``).
    X : dask.array.Array of shape (n_samples, n_features)
        The data. It may be chunked along rows in any way; column chunks are
        merged first (each block must hold whole rows).
    method : {"transform", "inverse_transform", "score_samples"}, default="transform"
        The method to apply.

    Returns
    -------
    result : dask.array.Array
        Lazy result of shape (n_samples, n_components) for ``transform``,
        (n_samples, ``n_features_in_``) for ``inverse_transform`` or
        (n_samples,) for ``score_samples``, with ``X``'s row chunks; call
        ``.compute()`` (or store it with ``.to_zarr()`` and the like).

    Examples
    --------
    >>> import pytest; _ = pytest.importorskip("dask.array")  # needs skae[distributed]
    >>> import dask.array as da
    >>> from sklearn.datasets import load_digits
    >>> from skae import AE
    >>> from skae.distributed import dask_transform
    >>> X = load_digits().data / 16
    >>> ae = AE(n_components=4, max_epochs=2, random_state=0).fit(X)
    >>> codes = dask_transform(ae, da.from_array(X, chunks=(500, 64)))
    >>> codes.chunks
    ((500, 500, 500, 297), (4,))
    >>> codes.compute().shape
    (1797, 4)
    """
    try:
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"dask_transform needs dask. {DISTRIBUTED_HINT}") from exc
    if method not in _DASK_METHODS:
        raise ValueError(f"method must be one of {_DASK_METHODS}, got {method!r}.")
    if not isinstance(X, da.Array):
        raise TypeError(f"X must be a dask array, got {type(X).__name__}.")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got {X.ndim} dimensions.")
    fn = getattr(estimator, method)
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    dtype = np.result_type(X.dtype, np.float32)  # skae computes in X's float dtype
    if method == "score_samples":
        return X.map_blocks(fn, drop_axis=1, dtype=dtype, meta=np.empty((0,), dtype))
    if method == "transform":
        n_out = len(estimator.get_feature_names_out())
    else:
        n_out = estimator.n_features_in_
    return X.map_blocks(fn, chunks=(X.chunks[0], (n_out,)), dtype=dtype)
