"""Validate public docstrings with numpydoc, the way scikit-learn does.

Every public class, method and function exported by skae (``__all__`` of
``skae`` and of its public submodules) is checked with
:func:`numpydoc.validate.validate`. A few error codes are ignored, as in
scikit-learn's ``sklearn/tests/test_docstrings.py``:

* everywhere: ``GL01``/``GL02`` (docstring text starts/ends on the line of
  the opening/closing quotes: a style choice), ``RT02`` (the first line of a
  Returns entry names the value as well as its type: scikit-learn's style);
* for methods and functions: ``ES01`` (extended summary) and ``SA01`` (See
  Also section), which class docstrings carry instead;
* for methods inherited unchanged from scikit-learn (``get_params``,
  ``set_params``, ``set_output``, ``fit_transform``, ``get_metadata_routing``,
  ...): also ``EX01`` (no Examples section); skae's own methods must have one.

Also checks that every documented default equals the signature's, and
that each estimator's HTML representation (used by Jupyter) works.
"""

import ast
import importlib
import inspect
import math
import pkgutil
import re

import pytest

import skae

numpydoc_validation = pytest.importorskip("numpydoc.validate")

IGNORED_EVERYWHERE = {"GL01", "GL02", "RT02"}
IGNORED_FOR_MEMBERS = {"ES01", "SA01"}
IGNORED_FOR_SKLEARN_METHODS = {"EX01"}


def public_modules():
    """``skae`` and its public submodules that declare an ``__all__``."""
    modules = [skae]
    for info in pkgutil.iter_modules(skae.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"skae.{info.name}")
        if hasattr(module, "__all__"):
            modules.append(module)
    return modules


def public_objects():
    """``(import_path, obj)`` for every public class and function."""
    seen = {}
    for module in public_modules():
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                seen.setdefault(obj, f"{module.__name__}.{name}")
    return sorted((path, obj) for obj, path in seen.items())


PUBLIC_OBJECTS = public_objects()
PUBLIC_CLASSES = [(path, obj) for path, obj in PUBLIC_OBJECTS if inspect.isclass(obj)]
PUBLIC_FUNCTIONS = [(path, obj) for path, obj in PUBLIC_OBJECTS if inspect.isfunction(obj)]


def defining_class(klass, name):
    """The class in ``klass``'s MRO whose body defines attribute ``name``."""
    return next(base for base in klass.__mro__ if name in vars(base))


def public_methods():
    """``(import_path, klass, name)`` for every public method and property."""
    for path, klass in PUBLIC_CLASSES:
        for name in sorted(dir(klass)):
            if name.startswith("_"):
                continue
            attr = getattr(klass, name)
            if callable(attr) or isinstance(attr, property):
                yield f"{path}.{name}", klass, name


PUBLIC_METHODS = list(public_methods())


def from_sklearn(klass, name):
    """Whether ``klass.name`` is inherited unchanged from outside skae."""
    return not defining_class(klass, name).__module__.startswith("skae")


def validation_errors(import_path, ignored):
    result = numpydoc_validation.validate(import_path)
    return [
        f"{code}: {message}"
        for code, message in result["errors"]
        if code not in IGNORED_EVERYWHERE | ignored
    ]


def test_public_api_is_collected():
    names = {path for path, _ in PUBLIC_OBJECTS}
    expected = {"skae.AE", "skae.SparseAE", "skae.ConvAE", "skae.VAE"}
    assert expected <= names
    assert "skae.datasets.load_mnist" in names
    assert {"skae.AE.fit", "skae.AE.transform", "skae.VAE.sample"} <= {
        path for path, _, _ in PUBLIC_METHODS
    }


@pytest.mark.parametrize("import_path", [path for path, _ in PUBLIC_CLASSES])
def test_class_docstring(import_path):
    errors = validation_errors(import_path, ignored=set())
    assert not errors, f"{import_path}:\n" + "\n".join(errors)


@pytest.mark.parametrize("import_path", [path for path, _ in PUBLIC_FUNCTIONS])
def test_function_docstring(import_path):
    errors = validation_errors(import_path, ignored=IGNORED_FOR_MEMBERS)
    assert not errors, f"{import_path}:\n" + "\n".join(errors)


@pytest.mark.parametrize(
    "import_path, klass, name",
    PUBLIC_METHODS,
    ids=[path for path, _, _ in PUBLIC_METHODS],
)
def test_method_docstring(import_path, klass, name):
    ignored = set(IGNORED_FOR_MEMBERS)
    if from_sklearn(klass, name):
        ignored |= IGNORED_FOR_SKLEARN_METHODS
    errors = validation_errors(import_path, ignored=ignored)
    assert not errors, f"{import_path}:\n" + "\n".join(errors)


def _own_callables():
    """``(import_path, callable)``: public classes, functions and skae-defined methods."""
    yield from PUBLIC_OBJECTS
    for import_path, klass, name in PUBLIC_METHODS:
        attr = getattr(klass, name)
        if callable(attr) and not from_sklearn(klass, name):
            yield import_path, attr


def documented_defaults(obj):
    """``{parameter: (type line, documented default or None)}`` from obj's docstring."""
    from numpydoc.docscrape import NumpyDocString

    entries = {}
    for param in NumpyDocString(inspect.getdoc(obj) or "")["Parameters"]:
        match = re.search(r"default=(.+)$", param.type)
        entries[param.name] = (param.type, match.group(1).strip() if match else None)
    return entries


@pytest.mark.parametrize(
    "import_path, obj", list(_own_callables()), ids=[p for p, _ in _own_callables()]
)
def test_documented_defaults_match_signature(import_path, obj):
    signature = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj)
    documented = documented_defaults(obj)
    errors = []
    for name, param in signature.parameters.items():
        if name in ("self", "cls") or name not in documented:
            continue  # undocumented parameters are numpydoc's check (PR01)
        type_line, text = documented[name]
        if param.default is param.empty:
            if text is not None:
                errors.append(f"{name}: documents default={text} but has no default")
        elif type_line.strip() == "Ignored":
            continue  # scikit-learn's convention for ``y=None``
        elif text is None:
            errors.append(f"{name}: default {param.default!r} is not documented")
        else:
            if text == "np.nan":  # scikit-learn's spelling of an imputer's missing_values
                if not (isinstance(param.default, float) and math.isnan(param.default)):
                    errors.append(f"{name}: documented default=np.nan, signature {param.default!r}")
                continue
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                errors.append(f"{name}: documented default={text} is not a Python literal")
                continue
            same = type(value) is type(param.default) and value == param.default
            if not same:
                errors.append(f"{name}: documented default={text}, signature {param.default!r}")
    assert not errors, f"{import_path}:\n" + "\n".join(errors)


def test_defaults_are_checked_on_every_estimator():
    checked = {path for path, _ in _own_callables()}
    for name in ("AE", "SparseAE", "ConvAE", "VAE", "AEOutlierDetector", "AEImputer"):
        assert f"skae.{name}" in checked
    if "skae.distributed.AcceleratedAE" in {path for path, _ in PUBLIC_OBJECTS}:
        for name in ("AE", "SparseAE", "ConvAE", "VAE"):
            assert f"skae.distributed.Accelerated{name}" in checked
    assert "skae.VAE.sample" in checked


@pytest.mark.parametrize("import_path, klass", PUBLIC_CLASSES, ids=[p for p, _ in PUBLIC_CLASSES])
def test_html_repr(import_path, klass):
    if not hasattr(klass, "get_params"):
        pytest.skip(f"{import_path} is not an estimator")
    html = klass()._repr_html_()
    assert isinstance(html, str)
    assert klass.__name__ in html
