"""The package's layering, checked on its source (each module's docstring says more).

- pure torch layers (``_modules``, ``_losses``, ``_data``) know nothing of
  scikit-learn or skorch; ``_net`` (the one skorch builder) knows nothing of
  scikit-learn;
- ``_base.py`` holds only the estimator base: one class, and constants;
- ``_persistence.py`` keeps file I/O and the checksum: it imports nothing of
  the package inside functions (no hidden circular import) and calls no
  private method of the estimators but the two state hooks.
"""

import ast
from pathlib import Path

import pytest

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
        ("_net.py", {"sklearn"}),
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
