"""The package's layering, checked on its source (each module's docstring says more).

- pure torch layers (``_modules``, ``_losses``, ``_data``) know nothing of
  scikit-learn or skorch; ``_net`` (the one skorch builder) and
  ``_callbacks`` (skae's skorch callbacks, which live there and nowhere
  else) know nothing of scikit-learn;
- ``_base.py`` holds only the estimator base: one class, and constants; the
  ``"auto"`` training plan lives in ``_plan.py``, and the docs render its
  numbers (nothing in ``_docs.py`` retypes them); the choice of dataset
  class is ``_data.as_dataset``'s;
- ``_state.py`` (the saved state's JSON document) knows nothing of
  scikit-learn;
- ``_persistence.py`` keeps file I/O and the checksum: it imports nothing of
  the package inside functions (no hidden circular import) and calls no
  private method of the estimators but the two state hooks.
"""

import ast
import re
from pathlib import Path

import pytest

import skae
from skae import _plan
from skae._docs import EPOCHS_EXAMPLE, EXAMPLE_ROWS, format_number
from skae._net import module_cost

PACKAGE = Path(__file__).resolve().parents[1] / "skae"


def _tree(name):
    return ast.parse((PACKAGE / name).read_text())


def _imported_roots(tree):
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize(
    "module, forbidden",
    [
        ("_modules.py", {"sklearn", "skorch"}),
        ("_losses.py", {"sklearn", "skorch"}),
        ("_data.py", {"sklearn", "skorch"}),
        ("_plan.py", {"sklearn", "skorch", "torch"}),
        ("_net.py", {"sklearn"}),
        ("_checks.py", {"sklearn", "skorch"}),
        ("_callbacks.py", {"sklearn"}),
        ("_state.py", {"sklearn"}),
    ],
)
def test_lower_layers_do_not_import_upper_ones(module, forbidden):
    assert not _imported_roots(_tree(module)) & forbidden


def test_base_holds_only_the_estimator_base():
    tree = _tree("_base.py")
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert classes == ["BaseAutoencoder"]
    assert functions == []
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            assert all(n.lstrip("_").isupper() for n in names), names  # constants only
    # The training plan is _plan.py's: no AUTO_* constant is defined or used here.
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    names |= {
        a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names
    }
    assert not {n for n in names if n.startswith("AUTO_")}
    # The choice of dataset class is _data.as_dataset's.
    assert not names & {"TensorDataset", "LazyDataset", "MemmapSource", "SparseSource"}
    assert not {"scipy"} & _imported_roots(tree)


def _callback_classes(name):
    """Classes of a module that subclass a skorch callback (or one of the module's own)."""
    tree = _tree(name)
    bases = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("skorch.callbacks")
        for alias in node.names
    }
    found = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names = {b.id if isinstance(b, ast.Name) else b.attr for b in node.bases}
            if names & (bases | found):
                found.add(node.name)
    return found


def test_callbacks_live_in_their_module():
    assert _callback_classes("_callbacks.py") == {
        "TrainingGuard",
        "LRSchedule",
        "BestWeights",
        "LossTable",
    }
    for path in sorted(PACKAGE.glob("*.py")):
        if path.name != "_callbacks.py":
            assert not _callback_classes(path.name), path.name


@pytest.mark.parametrize(("module", "most"), [("_base.py", 700), ("_net.py", 350)])
def test_crowded_modules_stay_small(module, most):
    """Issue 24's sizes: the base and the net builder hold their own code only."""
    assert len((PACKAGE / module).read_text().splitlines()) <= most


def test_persistence_is_file_io_only():
    tree = _tree("_persistence.py")
    for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
        lazy = _imported_roots(ast.Module(body=function.body, type_ignores=[]))
        assert lazy <= {"safetensors"}, (function.name, lazy)
    private_calls = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr.startswith("_")
    }
    assert private_calls <= {"_get_fitted_state", "_from_fitted_state"}


def _plain_text(doc):
    return " ".join(doc.split())


@pytest.mark.parametrize(
    "cls",
    [skae.AE, skae.SparseAE, skae.VAE, skae.ConvAE],
    ids=lambda cls: cls.__name__,
)
def test_docs_render_the_plan(cls):
    """The documented "auto" rules are _plan.py's numbers, for the class's kind."""
    kind = cls._plan_kind
    doc = _plain_text(cls.__doc__)
    budget = format_number(_plan.AUTO_BUDGET[kind])
    low, high = _plan.AUTO_EPOCHS
    assert f"budget of about {budget} multiply-adds" in doc
    assert f"min({high}, max({low}, round({budget} / (n_train * cost))))" in doc
    for other, value in _plan.AUTO_BUDGET.items():
        if value != _plan.AUTO_BUDGET[kind]:
            assert format_number(value) not in doc, other
    assert f"first {_plan.WARMUP_FRACTION:.0%} of the steps" in doc
    steps, (b_low, b_high) = _plan.AUTO_STEPS_PER_EPOCH, _plan.AUTO_BATCH
    assert f"about {steps} steps per epoch" in doc
    assert f"min(largest, max({b_low}, 2 ** round(log2(n_train / {steps}))))" in doc
    work = format_number(_plan.AUTO_BATCH_WORK)
    assert f"min({b_high}, max({_plan.AUTO_BATCH_WIDE}, 2 ** round(log2({work} / cost))))" in doc
    assert f"rate * sqrt(batch_size / {b_low})" in doc
    assert f"{format_number(_plan.AUTO_LR['adam'])} for Adam" in doc
    assert f"{format_number(_plan.AUTO_LR['sgd'])} for SGD" in doc
    assert f"at least {_plan.AUTO_MIN_VALID} rows" in doc
    # The worked example is what the plan gives for that model and those rows.
    model, cost = EPOCHS_EXAMPLE[kind]
    example = eval(model, vars(skae))  # noqa: S307 (a constant of the package's docs)
    assert module_cost(*example._module(784)) == cost
    epochs = example._plan(EXAMPLE_ROWS, cost)["max_epochs"]
    assert f"e.g. {epochs} epochs for ``{model}`` on {EXAMPLE_ROWS} MNIST images" in doc


def test_detector_docs_render_the_plan():
    doc = _plain_text(skae.AEOutlierDetector.__doc__)
    cap, steps, batch = _plan.AUTO_EPOCHS[1], _plan.DETECTOR_STEPS, _plan.DETECTOR_BATCH
    assert f"``max_epochs = min({cap}, ceil({steps} / ceil(n_samples / {batch})))``" in doc
    code = f"``n_features // {_plan.DETECTOR_CODE_RATIO}`` units"
    assert f"{code} clipped to 1..{_plan.DETECTOR_MAX_CODE}" in doc
    assert f"``hidden_layer_sizes={_plan.DETECTOR_HIDDEN!r}``" in doc
    assert f"learning rate {format_number(_plan.DETECTOR_LR)}" in doc
    capped, one_pass = re.search(r"up to ([\d,]+) rows, one pass from ([\d,]+) rows", doc).groups()
    capped, one_pass = int(capped.replace(",", "")), int(one_pass.replace(",", ""))

    def epochs(n_samples):
        return _plan.detector_plan(n_samples, 8)["max_epochs"]

    assert epochs(capped) == cap and epochs(capped + 1) < cap
    assert epochs(one_pass) == 1 and epochs(one_pass - 1) > 1


def test_docs_retype_no_plan_number():
    """The entries' texts hold placeholders for the plan's numbers, never the numbers."""
    from skae._docs import PARAMETERS

    texts = list(PARAMETERS.values())
    for cls in (skae.AE, skae.SparseAE, skae.VAE, skae.ConvAE, skae.AEOutlierDetector):
        texts += [t for k in cls.__mro__ for t in vars(k).get("_parameter_docs", {}).values()]
    for text in texts:
        assert not re.findall(r"\d(?:\.\d+)?e[+-]?\d+", text), text  # e.g. a budget (8e10)
        assert not re.findall(r"[\d,.]+ multiply-adds", text), text
    source = (PACKAGE / "_docs.py").read_text()
    for budget in _plan.AUTO_BUDGET.values():
        assert format_number(budget) not in source and f"{budget:g}" not in source


def test_changelog_has_a_dated_section_for_the_version():
    changelog = (PACKAGE.parent / "CHANGELOG.md").read_text(encoding="utf-8")
    version = re.escape(skae.__version__)
    assert re.search(rf"^## \[{version}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.MULTILINE)
