"""skae 0.1.0, frozen: imported from the git history as the package ``skae_v010``.

The multi-data-set suite (``suite.py``) runs 0.1.0's defaults beside the
current ones in one process, interleaved. Rather than imitating 0.1.0 with
today's code (whose data normalisation and dead-unit penalty cannot be
switched off), it runs 0.1.0's own code: the ``skae`` folder of the commit
that landed 0.1.0 is extracted with ``git archive`` into
``benchmarks/results/v010/`` (git-ignored), its ``skae`` imports are renamed
``skae_v010``, and the suite passes 0.1.0's default values explicitly
(:data:`AE_DEFAULTS` and the others), so that later changes of defaults
cannot move the baseline.
"""

import importlib
import io
import re
import subprocess
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

#: The commit that landed skae 0.1.0.
COMMIT = "f197103f59f7f1348ebb7f2a91b8e5909d22d1a6"
PACKAGE = "skae_v010"
CACHE = HERE / "results" / "v010"

#: 0.1.0's defaults, as explicit parameters.
AE_DEFAULTS = {
    "hidden_layer_sizes": (256,),
    "activation": "relu",
    "batch_size": 64,
    "lr": 1e-3,
    "max_epochs": "auto",  # 0.1.0's rule: ~8,000 steps within 20 to 200 epochs
    "early_stopping": False,
    "n_iter_no_change": 10,
    "tol": 1e-4,
}
SPARSE_DEFAULTS = {
    **AE_DEFAULTS,
    "n_components": 2,
    "sparsity": "l1",
    "sparsity_weight": 1e-3,
}
CONV_DEFAULTS = {**AE_DEFAULTS, "hidden_layer_sizes": (), "channels": (16, 32), "kernel_size": 3}
VAE_DEFAULTS = {**AE_DEFAULTS, "beta": 1.0}

_IMPORT = re.compile(r"\b(from|import) skae(?=[.\s])")


def _extract(target):
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", COMMIT, "skae"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            if not member.isfile() or not member.name.endswith(".py"):
                continue
            text = tar.extractfile(member).read().decode("utf-8")
            path = target / Path(member.name).relative_to("skae")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(_IMPORT.sub(r"\1 " + PACKAGE, text), encoding="utf-8")


def load():
    """The ``skae_v010`` package (0.1.0's code), or ``None`` with a message if unavailable."""
    target = CACHE / PACKAGE
    if not (target / "__init__.py").exists():
        try:
            _extract(target)
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"  (skae 0.1.0 could not be extracted from git, commit {COMMIT[:7]}: {exc})")
            return None
    if str(CACHE) not in sys.path:
        sys.path.insert(0, str(CACHE))
    return importlib.import_module(PACKAGE)
