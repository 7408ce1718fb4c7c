"""Row sources for training: in-memory tensors, and lazy sources read per chunk.

Pure numpy / scipy / torch; nothing here knows about scikit-learn's estimators.

- Dense arrays that fit in memory become one float32 tensor on the training
  device, moved there once per fit (:class:`skae._net.TensorDataset`).
- A ``numpy.memmap`` is never loaded whole: :class:`MemmapSource` reads
  contiguous row blocks from its file with plain reads (no mapping), so the
  process's resident memory stays at a few chunks whatever the file size.
- A scipy sparse matrix is densified one chunk at a time
  (:class:`SparseSource`).
"""

import mmap

import numpy as np
import torch

#: Bytes of float32 rows read from a lazy source at a time (shuffled within,
#: chunk order shuffled): bounds the memory a lazy fit adds.
CHUNK_BYTES = 8 * 2**20


def chunk_rows(n_features, at_least=1):
    """Rows per chunk for ``n_features`` float32 columns."""
    return max(at_least, CHUNK_BYTES // (4 * max(1, n_features)))


class MemmapSource:
    """Read rows of a C-ordered ``numpy.memmap`` from its file, chunk by chunk."""

    def __init__(self, X):
        self.filename = X.filename
        self.offset = X.offset
        self.dtype = X.dtype
        self.shape = X.shape

    @staticmethod
    def supports(X):
        """Whether ``X`` is a whole, C-ordered memmap whose file we can read."""
        return (
            isinstance(X, np.memmap)
            and isinstance(X.base, mmap.mmap)  # the memmap itself, not a view of one
            and X.ndim == 2
            and X.filename is not None
            and X.flags.c_contiguous
        )

    def __len__(self):
        return self.shape[0]

    def read(self, start, stop):
        """Rows ``start:stop`` as a new ndarray (not a view of the mapping)."""
        row = self.shape[1] * self.dtype.itemsize
        count = (stop - start) * self.shape[1]
        with open(self.filename, "rb") as f:
            f.seek(self.offset + start * row)
            block = np.fromfile(f, dtype=self.dtype, count=count)
        return block.reshape(stop - start, self.shape[1])


class SparseSource:
    """Densify rows of a scipy sparse matrix (CSR internally), chunk by chunk."""

    def __init__(self, X):
        self.X = X.tocsr()
        self.shape = X.shape

    def __len__(self):
        return self.shape[0]

    def read(self, start, stop):
        return self.X[start:stop].toarray()


def iter_chunks(source):
    """Yield blocks of consecutive rows of ``source``, in order."""
    step = chunk_rows(source.shape[1])
    for start in range(0, len(source), step):
        yield source.read(start, min(len(source), start + step))


class LazyDataset(torch.utils.data.Dataset):
    """Rows ``index`` of a lazy ``source``, served as float32 tensors on ``device``.

    ``index`` is a sorted array of row ids (all rows when None), so a random
    validation split stays a cheap view; a block of consecutive ids is read
    as one contiguous span of the source.
    """

    def __init__(self, source, device, index=None):
        self.source = source
        self.device = device
        self.index = np.arange(len(source)) if index is None else np.sort(np.asarray(index))

    def __len__(self):
        return len(self.index)

    def __getitem__(self, i):
        row = self.block(i, i + 1)[0]
        return row, row

    def block(self, start, stop):
        """Rows ``index[start:stop]`` as a float32 tensor on the device."""
        ids = self.index[start:stop]
        rows = self.source.read(int(ids[0]), int(ids[-1]) + 1)
        if len(rows) != len(ids):  # a subset (validation split): pick its rows
            rows = rows[ids - ids[0]]
        return torch.as_tensor(np.asarray(rows, dtype=np.float32), device=self.device)

    def subset(self, positions):
        return LazyDataset(self.source, self.device, self.index[np.sort(positions)])
