"""Distributed training and inference: Hugging Face Accelerate and Dask.

- :class:`AcceleratedAE`, :class:`AcceleratedSparseAE`, :class:`AcceleratedConvAE`
  and :class:`AcceleratedVAE` train with data parallelism (PyTorch DDP through
  Hugging Face Accelerate and skorch's ``AccelerateMixin``) when the script is
  started by ``accelerate launch`` or ``torchrun``: every process trains the same
  model on its own shard of the rows, gradients are averaged after each step,
  and all processes end with identical weights. Run in a single process they
  train exactly like :class:`skae.AE` and friends.
- :func:`dask_transform` encodes (or decodes, or scores) a dask array block by
  block with a fitted estimator.

The optional dependencies (``pip install "skae[distributed]"``: accelerate,
dask, distributed) are imported only when used, so this module imports without
them.
"""

from skae._accelerate import AcceleratedAE, AcceleratedConvAE, AcceleratedSparseAE, AcceleratedVAE
from skae._dask import dask_transform

__all__ = [
    "AcceleratedAE",
    "AcceleratedConvAE",
    "AcceleratedSparseAE",
    "AcceleratedVAE",
    "dask_transform",
]
