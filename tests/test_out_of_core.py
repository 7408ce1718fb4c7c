"""Out-of-core learning: partial_fit on chunks, fit on a memmap read lazily."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp

from skae import AE, VAE, ConvAE, SparseAE


@pytest.mark.parametrize("Est", [AE, SparseAE, ConvAE, VAE])
def test_partial_fit_chunks(Est, digits):
    Xtr, Xte, _, _ = digits
    kwargs = {"input_shape": (1, 8, 8)} if Est is ConvAE else {}
    est = Est(n_components=8, random_state=0, **kwargs)
    chunks = np.array_split(Xtr, 4)
    est.partial_fit(chunks[0])
    optimizer = est.net_.optimizer_
    first_score = est.score(Xte)
    for _ in range(5):
        for chunk in chunks:
            est.partial_fit(chunk)
    assert est.net_.optimizer_ is optimizer  # optimiser state is kept between calls
    assert est.n_iter_ == 21 and len(est.loss_curve_) == 21
    assert est.n_samples_seen_ == 5 * len(Xtr) + len(chunks[0])
    assert est.score(Xte) > first_score
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(Xtr[:, :10])


def test_partial_fit_is_reproducible_and_fit_resets(digits):
    Xtr = digits[0]
    a, b = AE(n_components=4, random_state=0), AE(n_components=4, random_state=0)
    for chunk in np.array_split(Xtr, 3):
        a.partial_fit(chunk)
        b.partial_fit(chunk)
    np.testing.assert_array_equal(a.transform(Xtr), b.transform(Xtr))
    a.set_params(max_epochs=2).fit(Xtr)
    assert a.n_iter_ == 2 and a.n_samples_seen_ == len(Xtr)


def test_partial_fit_sparse_chunks(digits):
    Xtr = digits[0]
    est = AE(n_components=4, random_state=0)
    for chunk in np.array_split(Xtr, 3):
        est.partial_fit(sp.csr_matrix(chunk))
    assert np.all(np.isfinite(est.transform(sp.csr_matrix(Xtr))))


def test_memmap_fit_matches_in_memory_layout(tmp_path, digits):
    Xtr = digits[0].astype(np.float32)
    np.save(tmp_path / "x.npy", Xtr)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    est = AE(n_components=4, max_epochs=3, early_stopping=True, n_iter_no_change=50)
    est.set_params(random_state=0).fit(mm)
    assert est.n_features_in_ == 64 and est.n_iter_ == 3
    assert len(est.validation_scores_) == 3
    assert np.all(np.isfinite(est.transform(mm)))
    bad = np.lib.format.open_memmap(tmp_path / "bad.npy", mode="w+", dtype=np.float32, shape=(9, 2))
    bad[4, 1] = np.nan
    bad.flush()
    with pytest.raises(ValueError, match="NaN"):
        AE(max_epochs=1).fit(np.load(tmp_path / "bad.npy", mmap_mode="r"))
    empty = np.lib.format.open_memmap(tmp_path / "e.npy", mode="w+", dtype=np.float32, shape=(0, 3))
    del empty
    with pytest.raises(ValueError, match="0 sample"):
        AE(max_epochs=1).fit(np.load(tmp_path / "e.npy", mmap_mode="r"))
    est.partial_fit(mm)  # a memmap chunk with the fitted width is accepted
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(np.load(tmp_path / "bad.npy", mmap_mode="r"))


_RSS_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np, torch
    torch.set_num_threads(1)
    from skae import AE

    def status(key):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) / 1024  # MiB

    X = np.load(sys.argv[1], mmap_mode="r")
    est = AE(n_components=2, hidden_layer_sizes=(8,), batch_size=1024, max_epochs=1,
             random_state=0)
    est.fit(X[:2048])  # warm up allocators and kernels on a small in-memory slice
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak-RSS counter (VmHWM)
    before = status("VmRSS")
    est.fit(X)
    print(json.dumps({"before": before, "peak": status("VmHWM"), "n_iter": est.n_iter_}))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_memmap_fit_peak_rss_stays_below_data_size(tmp_path):
    # 384 MiB of float32 on disk, written in blocks (never whole in memory here).
    n_rows, n_cols = 98_304, 1024
    path = tmp_path / "big.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_rows, n_cols))
    rng = np.random.default_rng(0)
    for start in range(0, n_rows, 8192):
        mm[start : start + 8192] = rng.random((8192, n_cols), dtype=np.float32)
    mm.flush()
    del mm
    data_mib = n_rows * n_cols * 4 / 2**20
    out = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, str(path)], capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    growth = result["peak"] - result["before"]
    print(f"memmap of {data_mib:.0f} MiB: peak RSS grew by {growth:.0f} MiB during fit")
    assert result["n_iter"] == 1
    assert growth < 0.3 * data_mib  # far below loading the array (>= 384 MiB)
