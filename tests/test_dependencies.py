"""Every third-party module that skae imports is a declared dependency.

Module-level imports of the package must be in ``[project].dependencies`` of
``pyproject.toml`` (a plain ``pip install skae`` must import every module);
imports inside functions (optional features, imported when used) must be in
the dependencies or in one of the extras.
"""

import ast
import functools
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "skae"


def _normalise(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(requirements):
    return {_normalise(re.match(r"[A-Za-z0-9_.-]+", r.strip()).group(0)) for r in requirements}


@pytest.fixture(scope="module")
def declared():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = set().union(*map(_requirement_names, project["optional-dependencies"].values()))
    return _requirement_names(project["dependencies"]), extras


def _imports(path):
    """``(top-level module, line, inside a function)`` for each absolute import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((a.name.split(".")[0], child.lineno, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0:
                found.append((child.module.split(".")[0], child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def _third_party_imports():
    for path in sorted(PACKAGE.rglob("*.py")):
        for module, line, lazy in _imports(path):
            if module != "skae" and module not in sys.stdlib_module_names:
                yield f"{path.relative_to(ROOT)}:{line}", module, lazy


@functools.cache
def _installed():
    return importlib.metadata.packages_distributions()


def _distributions(module, installed=True):
    """The distributions that provide ``module``, from the installed metadata.

    A lazily imported module need not be installed (its extra may not be): then
    its distribution is taken to bear the module's own name (e.g. matplotlib).
    """
    names = _installed().get(module)
    if not names and not installed:
        return {_normalise(module)}
    assert names, f"{module!r} is imported by skae but not installed here: cannot map it"
    return {_normalise(n) for n in names}


def test_module_level_imports_are_dependencies(declared):
    core, _ = declared
    missing = [
        f"{where}: import {module} ({', '.join(sorted(_distributions(module)))})"
        for where, module, lazy in _third_party_imports()
        if not lazy and not _distributions(module) & core
    ]
    assert not missing, "not in [project].dependencies:\n" + "\n".join(missing)


def test_lazy_imports_are_dependencies_or_extras(declared):
    core, extras = declared
    missing = [
        f"{where}: import {module}"
        for where, module, lazy in _third_party_imports()
        if lazy and not _distributions(module, installed=False) & (core | extras)
    ]
    assert not missing, "in no dependency nor extra of pyproject.toml:\n" + "\n".join(missing)


def test_the_scan_sees_the_package():
    modules = {module for _, module, _ in _third_party_imports()}
    assert {"numpy", "torch", "sklearn", "skorch", "scipy", "safetensors"} <= modules
