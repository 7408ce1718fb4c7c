"""Distributed training (Accelerate, 2 CPU processes) and Dask search / inference.

The multi-process test runs this file as a script under ``torchrun`` (gloo
backend, loopback only); see ``_worker`` at the bottom.
"""

import math
import os
import pickle
import socket
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone

import skae
from skae import AE
from skae._data import LazyDataset, SparseSource, TensorDataset
from skae._net import TensorBatchIterator
from skae.distributed import (
    AcceleratedAE,
    AcceleratedConvAE,
    AcceleratedSparseAE,
    AcceleratedVAE,
    dask_transform,
)

N_PROCESSES = 2


def _digits():
    from sklearn.datasets import load_digits

    return load_digits().data / 16.0


# -- sharding (no process group needed) -----------------------------------------


@pytest.mark.parametrize("n, world_size", [(10, 3), (7, 2), (2, 3), (12, 4)])
def test_sharded_batch_iterator_partitions_rows(n, world_size):
    dataset = TensorDataset(torch.arange(n, dtype=torch.float32)[:, None])
    iterators = [
        TensorBatchIterator(dataset, 2, True, shard=(r, world_size, 7)) for r in range(world_size)
    ]
    per = math.ceil(n / world_size)
    for epoch in range(2):
        shards = [torch.cat([b for b, _ in it]).flatten().long() for it in iterators]
        assert all(len(s) == per for s in shards)
        assert len({len(it) for it in iterators}) == 1  # same number of steps everywhere
        rows = torch.cat(shards)
        assert set(rows.tolist()) == set(range(n))  # every row, on some process
        assert len(rows) - len(set(rows.tolist())) == per * world_size - n  # padding only
        if epoch == 0:
            first = shards
    # A new shared permutation every epoch (identical seeds on every process):
    # the processes' sets of rows change.
    assert any(set(a.tolist()) != set(b.tolist()) for a, b in zip(first, shards))


def test_lazy_shard_contiguous_equal_lengths():
    X = sp.csr_matrix(np.arange(20, dtype=float).reshape(10, 2))
    dataset = LazyDataset(SparseSource(X), "cpu")
    shards = [dataset.shard(r, 4) for r in range(4)]
    assert [len(s) for s in shards] == [3, 3, 3, 3]
    ids = [s.index.tolist() for s in shards]
    assert ids[:3] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert ids[3] == [9, 9, 9]  # padded with its own last row
    assert_array_equal(shards[1].block(0, 3)[:, 0].numpy(), [6, 8, 10])


# -- estimators in one process -------------------------------------------------


@pytest.mark.parametrize(
    "cls, base",
    [
        (AcceleratedAE, skae.AE),
        (AcceleratedSparseAE, skae.SparseAE),
        (AcceleratedConvAE, skae.ConvAE),
        (AcceleratedVAE, skae.VAE),
    ],
)
def test_accelerated_params_match_base_and_clone(cls, base):
    est = cls(n_components=3, random_state=0)
    assert est.get_params() == base(n_components=3, random_state=0).get_params()
    assert clone(est).get_params() == est.get_params()


def test_accelerated_rejects_explicit_gpu_index():
    pytest.importorskip("accelerate")
    with pytest.raises(ValueError, match="device='auto'"):
        AcceleratedAE(device="cuda:1").fit(_digits()[:20])


def test_accelerated_without_accelerate_raises_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "accelerate", None)  # import accelerate -> ImportError
    with pytest.raises(ImportError, match=r"skae\[distributed\]"):
        AcceleratedAE(max_epochs=1).fit(_digits()[:20])


def test_core_imports_no_optional_dependency():
    code = (
        "import sys, skae, skae.distributed; "
        "print(sorted(m for m in ('accelerate', 'dask', 'distributed') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_accelerate_single_process_equals_plain_estimator(capsys):
    """Not launched: same weights as the plain estimator, silent with verbose=0."""
    pytest.importorskip("accelerate")
    X = _digits()
    params = dict(n_components=4, hidden_layer_sizes=(32,), max_epochs=3, random_state=0)
    plain = AE(**params).fit(X)
    accelerated = AcceleratedAE(**params, device="cpu").fit(X)
    assert capsys.readouterr().out == ""
    for (k, a), (k2, b) in zip(
        plain.net_.module_.state_dict().items(), accelerated.net_.module_.state_dict().items()
    ):
        assert k == k2
        assert torch.equal(a, b), k
    assert_array_equal(plain.loss_curve_, accelerated.loss_curve_)
    restored = pickle.loads(pickle.dumps(accelerated))
    assert restored.net_.accelerator is None
    assert_array_equal(restored.transform(X), accelerated.transform(X))


# -- two processes (torchrun, gloo on CPU, loopback) ----------------------------


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    pytest.importorskip("accelerate")
    out = tmp_path_factory.mktemp("accelerate")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "GLOO_SOCKET_IFNAME": "lo",
        "MASTER_ADDR": "127.0.0.1",
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={N_PROCESSES}",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        __file__,
        str(out),
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(N_PROCESSES)]
    return out, ranks, result.stdout


def test_accelerate_two_processes_identical_weights(two_process_run):
    _, ranks, _ = two_process_run
    for name in ("ae", "vae", "partial_fit"):
        states = [r[name]["state"] for r in ranks]
        assert states[0].keys() == states[1].keys()
        for key in states[0]:
            assert torch.equal(states[0][key], states[1][key]), (name, key)
        # Losses averaged over the processes: the same history everywhere.
        assert_array_equal(ranks[0][name]["loss_curve"], ranks[1][name]["loss_curve"])
    # random_state=None: the validation split was still drawn identically.
    assert_array_equal(ranks[0]["vae"]["validation_scores"], ranks[1]["vae"]["validation_scores"])
    ae_curve = ranks[0]["ae"]["loss_curve"]
    assert ae_curve[-1] < ae_curve[0]


def test_accelerate_two_processes_shard_rows(two_process_run):
    _, ranks, _ = two_process_run
    n = len(_digits())
    for r in ranks:
        # Each process trained on its own half of the rows every epoch, not on all of them.
        assert r["ae"]["rows_per_epoch"] == [math.ceil(n / N_PROCESSES)] * len(
            r["ae"]["loss_curve"]
        )


def test_accelerate_two_processes_verbose(two_process_run):
    _, _, stdout = two_process_run
    # verbose=0 fits print nothing; the one verbose=1 fit prints its tables once (rank 0):
    # its final net's, and one per cross-fitting fold on a small table.
    folds = stdout.count("Cross-fitting: fold")
    assert stdout.count("train_loss") == 1 + folds, stdout
    assert stdout.count("Cross-fitting: fold 1 of") == (1 if folds else 0), stdout


def test_accelerate_two_processes_saved_model_loads(two_process_run):
    out, _, _ = two_process_run
    X = _digits()
    expected = np.load(out / "codes.npy")
    with open(out / "ae.pkl", "rb") as f:
        model = pickle.load(f)
    assert isinstance(model, AcceleratedAE)
    # The codes were computed in another process: equal up to float64 rounding.
    assert_allclose(model.transform(X), expected, rtol=1e-12, atol=1e-12)
    if hasattr(skae, "load"):  # saved as the plain estimator: no accelerate needed to use it
        loaded = skae.load(out / "ae.safetensors")
        assert type(loaded) is AE
        assert_allclose(loaded.transform(X), expected, rtol=1e-12, atol=1e-12)


# -- Dask ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_client():
    pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    # Two single-threaded worker processes: skae seeds torch's (process-wide)
    # RNG during fit, so concurrent fits must not share a process.
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def test_distributed_grid_search_dask(dask_client):
    from joblib import parallel_backend
    from sklearn.model_selection import GridSearchCV

    X = _digits()[:600]
    grid = {"n_components": [2, 8], "hidden_layer_sizes": [(16,), (64,)]}
    est = AE(max_epochs=3, random_state=0, device="cpu")
    local = GridSearchCV(est, grid, cv=2, n_jobs=1).fit(X)
    with parallel_backend("dask"):
        remote = GridSearchCV(est, grid, cv=2).fit(X)
    assert remote.best_params_ == local.best_params_
    assert_allclose(remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"])
    assert set(dask_client.run(os.getpid).values()).isdisjoint({os.getpid()})


@pytest.fixture(scope="module")
def fitted_ae():
    return AE(n_components=3, hidden_layer_sizes=(16,), max_epochs=2, random_state=0).fit(_digits())


@pytest.mark.parametrize("method", ["transform", "inverse_transform", "score_samples"])
def test_distributed_dask_transform(fitted_ae, method):
    da = pytest.importorskip("dask.array")
    X = _digits()
    if method == "inverse_transform":
        X = fitted_ae.transform(X)
    expected = getattr(fitted_ae, method)(X)
    # Row chunks of uneven size, and column chunks that must be merged.
    Xd = da.from_array(X, chunks=(400, max(1, X.shape[1] // 2)))
    result = dask_transform(fitted_ae, Xd, method=method)
    assert result.shape == expected.shape
    assert result.chunks[0] == Xd.chunks[0]
    computed = result.compute(scheduler="threads")
    assert computed.dtype == expected.dtype
    # Blocks of other shapes may run other BLAS kernels: equal up to float64 rounding.
    assert_allclose(computed, expected, rtol=1e-12, atol=1e-12)


def test_distributed_dask_transform_on_cluster(dask_client, fitted_ae):
    da = pytest.importorskip("dask.array")
    X = _digits().astype(np.float32)
    codes = dask_transform(fitted_ae, da.from_array(X, chunks=(500, -1)))
    # Other processes, other block shapes: equal up to float32 rounding.
    assert_allclose(
        dask_client.compute(codes).result(), fitted_ae.transform(X), rtol=1e-5, atol=1e-6
    )


def test_distributed_dask_transform_errors(fitted_ae):
    da = pytest.importorskip("dask.array")
    with pytest.raises(TypeError, match="dask array"):
        dask_transform(fitted_ae, _digits())
    with pytest.raises(ValueError, match="method"):
        dask_transform(fitted_ae, da.zeros((4, 64)), method="predict")
    with pytest.raises(ValueError, match="2-D"):
        dask_transform(fitted_ae, da.zeros(4))


# -- the torchrun worker -----------------------------------------------------------


def _worker(out):
    """Run by each process under torchrun: fit, then save what the tests compare."""
    from pathlib import Path

    torch.set_num_threads(1)
    out = Path(out)
    X = _digits()
    common = dict(hidden_layer_sizes=(32,), batch_size=64, device="cpu", verbose=0)
    ae = AcceleratedAE(
        n_components=4, max_epochs=4, random_state=0, early_stopping=False, **common
    ).fit(X)
    vae = AcceleratedVAE(
        n_components=2,
        loss="bce",
        output_activation="sigmoid",
        max_epochs=4,
        early_stopping=True,
        n_iter_no_change=2,
        random_state=None,  # seeds differ per process; splits and shards must not
        **common,
    ).fit(X)
    AcceleratedAE(n_components=2, max_epochs=1, random_state=0, **{**common, "verbose": 1}).fit(
        X[:200]
    )
    incremental = AcceleratedAE(n_components=2, random_state=0, **common)
    for start in (0, 900):  # wrapped for DDP again on the second call
        incremental.partial_fit(X[start : start + 900])
    rank = torch.distributed.get_rank()
    record = {
        "ae": {
            "state": ae.net_.module_.state_dict(),
            "loss_curve": ae.loss_curve_,
            "rows_per_epoch": [
                sum(b["train_batch_size"] for b in epoch["batches"] if "train_batch_size" in b)
                for epoch in ae.net_.history
            ],
        },
        "vae": {
            "state": vae.net_.module_.state_dict(),
            "loss_curve": vae.loss_curve_,
            "validation_scores": vae.validation_scores_,
        },
        "partial_fit": {
            "state": incremental.net_.module_.state_dict(),
            "loss_curve": incremental.loss_curve_,
        },
    }
    torch.save(record, out / f"rank{rank}.pt")
    if rank == 0:  # save from one process only
        with open(out / "ae.pkl", "wb") as f:
            pickle.dump(ae, f)
        if hasattr(skae, "save"):
            skae.save(ae, out / "ae.safetensors")
        np.save(out / "codes.npy", ae.transform(X))
    torch.distributed.barrier()


if __name__ == "__main__":
    _worker(sys.argv[1])
