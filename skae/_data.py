"""Training data: in-memory tensors, and lazy sources read per chunk.

Pure numpy / scipy / torch; nothing here knows about scikit-learn or skorch.

- Dense arrays that fit in memory become one float32 tensor on the training
  device, moved there once per fit (:class:`TensorDataset`).
- A ``numpy.memmap`` is never loaded whole: :class:`MemmapSource` reads
  contiguous row blocks from its file with plain reads (no mapping), so the
  process's resident memory stays at a few chunks whatever the file size.
- A scipy sparse matrix is densified one chunk at a time
  (:class:`SparseSource`); both are served by :class:`LazyDataset`.

:func:`as_dataset` makes that choice for training data, once, and measures
the data's value range on the way; the caller's validation (scikit-learn's,
in skae's estimators) is passed in.

Both datasets have one interface, which skae's iterators and train split use
without knowing which one they hold:

- ``batches(batch_size, shuffle)`` yields float32 batches on the device,
  reshuffled on every call when ``shuffle`` (with torch's RNG, which skae
  seeds inside a forked RNG state);
- ``split(fraction)`` returns ``(train, valid)`` with a random ``fraction``
  of the rows (at least one) held out;
- ``folds(n_folds)`` yields ``(train, valid)`` for each fold of a random
  partition of the rows (cross-fitting: every row is validated once);
- ``shard(rank, world_size, generator)`` returns the rows one process of
  ``world_size`` trains on for one epoch: ``ceil(n / world_size)`` rows on
  every process, disjoint across processes up to the padding that evens
  their lengths.
"""

import math
import mmap

import numpy as np
import scipy.sparse as sp
import torch

#: Bytes of float32 rows read from a lazy source at a time (shuffled within,
#: chunk order shuffled): bounds the memory a lazy fit adds.
CHUNK_BYTES = 8 * 2**20


def n_holdout(fraction, n_samples):
    """Rows held out for validation: ``fraction`` of ``n_samples``, at least one."""
    return max(1, int(round(fraction * n_samples)))


def fold_ids(n_samples, n_folds):
    """Yield ``(train_ids, valid_ids)``: a random partition of the rows into ``n_folds`` folds.

    Each row is validated in exactly one fold; the permutation is drawn with
    torch's RNG (which skae seeds inside a forked RNG state). The ids are
    CPU tensors.
    """
    parts = torch.randperm(n_samples).tensor_split(n_folds)
    for i, valid in enumerate(parts):
        yield torch.cat([p for j, p in enumerate(parts) if j != i]), valid


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


class TensorDataset(torch.utils.data.Dataset):
    """All rows of ``X`` as one tensor (already on the training device).

    Shuffling permutes the whole tensor once per call of :meth:`batches` and
    then slices contiguous views: no per-row ``__getitem__``, no collate, no
    worker processes.
    """

    def __init__(self, X):
        self.X = X

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], self.X[i]

    def batches(self, batch_size, shuffle=False):
        """Yield consecutive ``batch_size``-row slices, after a shuffle if asked."""
        X = self.X
        if shuffle:
            X = X[torch.randperm(len(X), device=X.device)]
        for start in range(0, len(X), batch_size):
            yield X[start : start + batch_size]

    def split(self, fraction):
        """``(train, valid)``: a random ``fraction`` of the rows is held out."""
        n_valid = n_holdout(fraction, len(self))
        X = self.X[torch.randperm(len(self), device=self.X.device)]
        return TensorDataset(X[n_valid:]), TensorDataset(X[:n_valid])

    def folds(self, n_folds):
        """Yield ``(train, valid)`` for each of ``n_folds`` random folds (see :func:`fold_ids`)."""
        for train, valid in fold_ids(len(self), n_folds):
            yield (
                TensorDataset(self.X[train.to(self.X.device)]),
                TensorDataset(self.X[valid.to(self.X.device)]),
            )

    def shard(self, rank, world_size, generator=None):
        """This process's rows: every ``world_size``-th row of a shared permutation.

        ``generator`` (seeded identically on every process) draws the
        permutation, so every process draws the same one; ``None`` keeps the
        rows in order. It is padded by wrapping around to a multiple of
        ``world_size``, as ``torch.utils.data.DistributedSampler`` does, so the
        shards are disjoint up to the padding, cover all rows and have the
        same length on every process.
        """
        n = len(self)
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        total = math.ceil(n / world_size) * world_size
        while len(order) < total:  # wrap around (more than once only when n < world_size)
            order = torch.cat([order, order[: total - len(order)]])
        return TensorDataset(self.X[order[rank:total:world_size].to(self.X.device)])


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
        """Rows ``index[start:stop]`` as a float32 tensor on the device.

        Consecutive ids are read as one span; the rows of a subset (e.g. a
        validation split, scattered over the source) are picked from spans
        of at most one chunk, so memory stays bounded by the rows returned
        plus one chunk.
        """
        ids = self.index[start:stop]
        first, last = int(ids[0]), int(ids[-1]) + 1
        if last - first == len(ids):
            rows = self.source.read(first, last)
        else:
            step = chunk_rows(self.source.shape[1])
            parts = []
            for lo in range(first, last, step):
                hi = min(last, lo + step)
                wanted = ids[(ids >= lo) & (ids < hi)]
                if len(wanted):
                    parts.append(self.source.read(lo, hi)[wanted - lo])
            rows = np.concatenate(parts)
        return torch.as_tensor(np.asarray(rows, dtype=np.float32), device=self.device)

    def subset(self, positions):
        return LazyDataset(self.source, self.device, self.index[np.sort(positions)])

    def batches(self, batch_size, shuffle=False):
        """Yield batches read one chunk of rows at a time.

        Shuffling permutes the order of the chunks and the rows within each
        chunk, so that reads stay contiguous.
        """
        n = len(self)
        chunk = chunk_rows(self.source.shape[1], at_least=batch_size)
        starts = torch.arange(0, n, chunk)
        if shuffle:
            starts = starts[torch.randperm(len(starts))]
        for start in starts.tolist():
            block = self.block(start, min(n, start + chunk))
            if shuffle:
                block = block[torch.randperm(len(block), device=block.device)]
            for i in range(0, len(block), batch_size):
                yield block[i : i + batch_size]

    def split(self, fraction):
        """``(train, valid)``: a random ``fraction`` of the rows is held out."""
        n_valid = n_holdout(fraction, len(self))
        perm = torch.randperm(len(self)).numpy()
        return self.subset(perm[n_valid:]), self.subset(perm[:n_valid])

    def folds(self, n_folds):
        """Yield ``(train, valid)`` for each of ``n_folds`` random folds (see :func:`fold_ids`)."""
        for train, valid in fold_ids(len(self), n_folds):
            yield self.subset(train.numpy()), self.subset(valid.numpy())

    def shard(self, rank, world_size, generator=None):
        """This process's rows: a contiguous block of ``ceil(n / world_size)`` rows.

        Rows stay contiguous so that chunked reads stay contiguous (so
        ``generator`` is not used); :meth:`batches` shuffles them within the
        shard. A shard shorter than the others repeats its own rows as
        padding (rows of other shards when ``n < world_size``), so that all
        processes run the same number of steps.
        """
        n = len(self)
        per = math.ceil(n / world_size)
        start = min(n, rank * per)
        positions = np.arange(start, min(n, start + per))
        positions = np.resize(positions, per) if len(positions) else np.arange(n - per, n)
        return self.subset(positions)


def as_dataset(X, device, validate, check_finite):
    """``X`` as a training dataset on ``device``, with the range of its values.

    Dense arrays become one float32 tensor on the device
    (:class:`TensorDataset`). A ``numpy.memmap`` (see
    :meth:`MemmapSource.supports`) is validated and read chunk by chunk from
    its file, never loaded whole; sparse matrices are densified chunk by
    chunk (both :class:`LazyDataset`).

    Parameters
    ----------
    X : array-like, sparse matrix or numpy.memmap
        The training data, as given to ``fit``.
    device : str
        The training device.
    validate : callable
        ``validate(X)`` checks ``X`` (shape, dtype, values) and returns it as
        a 2-d float array or CSR matrix. A memmap's first row only is passed
        (its values are checked chunk by chunk with ``check_finite``).
    check_finite : callable
        ``check_finite(block)`` raises if a block of a memmap's rows holds
        NaN or infinite values.

    Returns
    -------
    dataset : TensorDataset or LazyDataset
        The training rows.
    low, high : float
        The smallest and largest values of ``X`` (a sparse matrix's implicit
        zeros included).
    """
    if MemmapSource.supports(X):
        validate(X[:1])
        source = MemmapSource(X)
        low, high = np.inf, -np.inf
        for block in iter_chunks(source):
            check_finite(block)
            low, high = min(low, float(block.min())), max(high, float(block.max()))
        return LazyDataset(source, device), float(low), float(high)
    X = validate(X)
    if sp.issparse(X):
        implicit_zeros = X.nnz < X.shape[0] * X.shape[1]
        low = min(X.data.min(initial=0.0), 0.0) if implicit_zeros else X.data.min()
        high = max(X.data.max(initial=0.0), 0.0) if implicit_zeros else X.data.max()
        return LazyDataset(SparseSource(X), device), float(low), float(high)
    low, high = float(X.min()), float(X.max())
    return TensorDataset(torch.tensor(X, dtype=torch.float32, device=device)), low, high


#: Above this many features the covariance matrix is not formed: the
#: principal axes come from a randomised SVD of a sample of rows.
MAX_COVARIANCE_FEATURES = 4096

#: Rows of the random sample kept by :func:`summarize` (for quantiles, and
#: for the principal axes of very wide data): at most SAMPLE_ROWS, and at most
#: SAMPLE_BYTES of float32 (but at least 1,000 rows).
SAMPLE_ROWS = 10_000
SAMPLE_BYTES = 8 * 2**20


class DataSummary:
    """What an autoencoder's initialisation needs to know of its training data.

    Attributes
    ----------
    mean, var : float64 tensors of shape (n_features,)
        Per-feature mean and (population) variance, over all rows.
    cov : float64 tensor of shape (n_features, n_features) or None
        Covariance matrix (``None`` above ``MAX_COVARIANCE_FEATURES``).
    sample : float32 tensor
        Up to ``SAMPLE_ROWS`` rows drawn at random (torch's RNG).
    """

    def __init__(self, mean, var, cov, sample):
        self.mean, self.var, self.cov, self.sample = mean, var, cov, sample

    def principal_axes(self, n_components):
        """``(axes, variances)``: the top principal directions, as columns, and their variances.

        From the covariance's eigendecomposition when it was formed, else a
        randomised SVD of the sample (``torch.svd_lowrank``).
        """
        if self.cov is not None:
            values, vectors = torch.linalg.eigh(self.cov)
            order = torch.argsort(values, descending=True)[:n_components]
            return vectors[:, order], values[order].clamp(min=0.0)
        centred = self.sample.to(torch.float64) - self.mean
        q = min(n_components, *centred.shape)
        _, s, v = torch.svd_lowrank(centred, q=q, niter=4)
        return v, s.square() / max(1, len(centred) - 1)


def summarize(dataset):
    """A :class:`DataSummary` of a dataset's rows, read in chunks (exact moments).

    The moments are accumulated in float64 around the first chunk's mean (a
    shifted, numerically stable one-pass form), one chunk of
    :data:`CHUNK_BYTES` at a time, so the memory used stays bounded whatever
    the number of rows.
    """
    n = len(dataset)
    n_features = dataset[0][0].shape[-1] if n else 1
    chunk = chunk_rows(n_features)
    rows = min(SAMPLE_ROWS, max(1000, SAMPLE_BYTES // (4 * n_features)))
    sample_ids = torch.randperm(n)[:rows].sort().values
    wide = None
    shift = total = second = None
    count, picked, start = 0, [], 0
    # float64 work in sub-blocks of about 1 MiB: large temporary buffers, freed and
    # allocated again chunk after chunk, fragment the heap and inflate memory.
    step = max(1, 2**20 // (8 * n_features))
    for block in dataset.batches(chunk, shuffle=False):
        ids = sample_ids[(sample_ids >= start) & (sample_ids < start + len(block))] - start
        picked.append(block[ids].to("cpu", torch.float32))
        start += len(block)
        for i in range(0, len(block), step):
            rows = block[i : i + step].to("cpu", torch.float64)
            if shift is None:
                shift = rows.mean(dim=0)
                wide = rows.shape[1] > MAX_COVARIANCE_FEATURES
                total = torch.zeros_like(shift)
                d = len(shift)
                second = torch.zeros(d if wide else (d, d), dtype=rows.dtype)
            rows -= shift
            total += rows.sum(dim=0)
            if wide:
                second += rows.square().sum(dim=0)
            else:
                second.addmm_(rows.T, rows)
            count += len(rows)
    mean_shift = total / count
    mean = shift + mean_shift
    if wide:
        var = second / count - mean_shift.square()
        cov = None
    else:
        cov = second / count - torch.outer(mean_shift, mean_shift)
        cov = 0.5 * (cov + cov.T)
        var = cov.diagonal().clone()
    return DataSummary(mean, var.clamp(min=0.0), cov, torch.cat(picked))
